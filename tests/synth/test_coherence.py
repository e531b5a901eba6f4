"""Clinical coherence: conditions drive labs and drugs, values fit their ranges, personas exist."""

from __future__ import annotations

from collections import Counter
from datetime import date

from tests.synth.helpers import patient_of, references

T2DM, HTN, HLD, ASTHMA, CKD3 = "44054006", "59621000", "55822004", "195967001", "433144002"
METFORMIN, LISINOPRIL, ATORVASTATIN_20, ATORVASTATIN_80, ALBUTEROL = "860975", "314076", "617310", "259255", "745679"


def code(concept: dict, system: str | None = None) -> set[str]:
    return {c["code"] for c in concept.get("coding", []) if system is None or c["system"] == system}


def patients_with(by_type, snomed: str) -> list[str]:
    """Patients with a confirmed Condition coded snomed."""
    return sorted({patient_of(c) for c in by_type["Condition"] if snomed in code(c["code"])
                   and code(c["verificationStatus"]) == {"confirmed"}})


def drugs_of(by_type, index, pid: str) -> set[str]:
    out = set()
    for request in by_type["MedicationRequest"]:
        if patient_of(request) != pid:
            continue
        concept = request.get("medicationCodeableConcept") or index[
            tuple(request["medicationReference"]["reference"].split("/"))]["code"]
        out |= code(concept)
    return out


def observation_codes(by_type, pid: str) -> Counter:
    return Counter(c for o in by_type["Observation"] if patient_of(o) == pid for c in code(o["code"]))


def test_diabetics_have_hba1c_and_metformin(by_type, index):
    diabetics = patients_with(by_type, T2DM)
    assert len(diabetics) >= 3
    for pid in diabetics:
        assert observation_codes(by_type, pid)["4548-4"] >= 2, pid
        assert METFORMIN in drugs_of(by_type, index, pid), pid


def test_conditions_drive_treatment_and_monitoring(by_type, index):
    for pid in patients_with(by_type, HTN):
        assert LISINOPRIL in drugs_of(by_type, index, pid), pid
    for pid in patients_with(by_type, HLD):
        assert drugs_of(by_type, index, pid) & {ATORVASTATIN_20, ATORVASTATIN_80}, pid
        assert observation_codes(by_type, pid)["18262-6"] >= 1, pid
    for pid in patients_with(by_type, ASTHMA):
        assert ALBUTEROL in drugs_of(by_type, index, pid), pid
    for pid in patients_with(by_type, CKD3):
        labs = observation_codes(by_type, pid)
        assert labs["2160-0"] >= 2 and labs["98979-8"] >= 2, pid
        egfrs = [o["valueQuantity"]["value"] for o in by_type["Observation"]
                 if patient_of(o) == pid and "98979-8" in code(o["code"])]
        assert max(egfrs) < 60, pid


def test_lab_interpretation_matches_reference_range(by_type):
    labs = [o for o in by_type["Observation"] if "laboratory" in code(o["category"][0])]
    assert len(labs) > 500
    flags = Counter()
    for obs in labs:
        value = obs["valueQuantity"]["value"]
        (reference,) = obs["referenceRange"]
        low, high = reference.get("low", {}).get("value"), reference.get("high", {}).get("value")
        expected = "H" if high is not None and value > high else "L" if low is not None and value < low else "N"
        (flag,) = code(obs["interpretation"][0])
        assert flag == expected, obs["id"]
        assert obs["valueQuantity"]["unit"] == reference.get("low", reference.get("high"))["unit"]
        flags[flag] += 1
    assert flags["H"] and flags["L"] and flags["N"] > flags["H"]


def test_diagnostic_reports_group_their_patients_results(by_type, index):
    for report in by_type["DiagnosticReport"]:
        assert code(report["category"][0]) == {"LAB"} and report["status"] == "final"
        for ref in report["result"]:
            obs = index[tuple(ref["reference"].split("/"))]
            assert patient_of(obs) == patient_of(report)
            assert obs["effectiveDateTime"] == report["effectiveDateTime"]


def test_blood_pressure_panels_have_both_components(by_type):
    panels = [o for o in by_type["Observation"] if "85354-9" in code(o["code"])]
    assert len(panels) > 100
    for obs in panels:
        assert "valueQuantity" not in obs
        systolic, diastolic = (c["valueQuantity"]["value"] for c in obs["component"])
        assert [code(c["code"]) for c in obs["component"]] == [{"8480-6"}, {"8462-4"}]
        assert all(c["valueQuantity"]["code"] == "mm[Hg]" for c in obs["component"])
        assert 35 < diastolic < systolic < 230


def test_vitals_fit_age(dataset, by_type, index):
    births = {p["id"]: date.fromisoformat(p["birthDate"]) for p in by_type["Patient"]}
    for obs in by_type["Observation"]:
        if "8867-4" not in code(obs["code"]):
            continue
        age_days = (date.fromisoformat(obs["effectiveDateTime"][:10]) - births[patient_of(obs)]).days
        rate = obs["valueQuantity"]["value"]
        assert (100 <= rate <= 180) if age_days < 30 else (40 <= rate <= 150), obs["id"]


def test_designed_personas(dataset, by_type):
    today = date.fromisoformat(dataset.anchor)
    patients = {p["id"]: p for p in by_type["Patient"]}
    ages = {pid: (today - date.fromisoformat(p["birthDate"])).days / 365.25 for pid, p in patients.items()}
    first = sorted(patients)[0]
    assert 18 <= ages[first] < 80 and "deceasedDateTime" not in patients[first]
    assert sum(1 for r in dataset.resources if patient_of(r) == first) > 200
    assert any(a < 1 for a in ages.values())
    assert any(a >= 80 and "deceasedDateTime" not in patients[p] for p, a in ages.items())
    assert any("deceasedDateTime" in p for p in patients.values())
    assert max(Counter(patient_of(o) for o in by_type["Observation"]).values()) >= 300
    referencing = Counter()
    for resource in dataset.resources:
        for ref in {r for r in references(resource) if r.startswith("Patient/")}:
            referencing[ref.split("/")[1]] += 1
    assert min(referencing[pid] for pid in patients) <= 3
    languages = {c for p in patients.values() for comm in p["communication"] for c in code(comm["language"])}
    assert {"en", "es"} <= languages
    assert any({"official", "maiden"} <= {n["use"] for n in p["name"]} for p in patients.values())
    assert any(p["gender"] == "other" for p in patients.values())
    flags = {pid: set() for pid in patients}
    for obs in by_type["Observation"]:
        for concept in obs.get("interpretation", []):
            flags[patient_of(obs)] |= code(concept)
    assert any(f == {"N"} for f in flags.values())   # a patient whose every lab is normal


def test_newborn_has_newborn_measurements(dataset, by_type):
    today = date.fromisoformat(dataset.anchor)
    (baby,) = [p for p in by_type["Patient"] if (today - date.fromisoformat(p["birthDate"])).days < 60]
    codes = observation_codes(by_type, baby["id"])
    assert codes["9843-4"] and codes["29463-7"] and not codes["85354-9"]
    weights = [o["valueQuantity"]["value"] for o in by_type["Observation"]
               if patient_of(o) == baby["id"] and "29463-7" in code(o["code"])]
    assert 2.5 < min(weights) and max(weights) < 5.0
    assert any(r["patient"]["reference"] == f"Patient/{baby['id']}" for r in by_type["RelatedPerson"])


def test_no_known_allergies_and_not_done_immunization(by_type):
    assert any("716186003" in code(a["code"]) for a in by_type["AllergyIntolerance"])
    assert any(i["status"] == "not-done" and i.get("statusReason") for i in by_type["Immunization"])


def test_entered_in_error_condition_has_no_status_or_treatment(by_type, index):
    wrong = [c for c in by_type["Condition"] if code(c["verificationStatus"]) == {"entered-in-error"}]
    assert wrong
    for condition in wrong:
        assert "clinicalStatus" not in condition
        pid = patient_of(condition)
        assert METFORMIN not in drugs_of(by_type, index, pid)


def test_documents_are_readable_notes(by_type):
    import base64
    for doc in by_type["DocumentReference"]:
        attachment = doc["content"][0]["attachment"]
        text = base64.b64decode(attachment["data"]).decode("utf-8")
        assert attachment["contentType"] == "text/plain" and "Patient:" in text
        assert doc["context"]["encounter"]


def test_patient_demographics(by_type):
    us_core = "http://hl7.org/fhir/us/core/StructureDefinition/"
    for patient in by_type["Patient"]:
        urls = [e["url"] for e in patient["extension"]]
        assert urls[:3] == [us_core + "us-core-race", us_core + "us-core-ethnicity", us_core + "us-core-birthsex"]
        (mrn,) = [i for i in patient["identifier"] if i.get("use") == "usual"]
        assert mrn["system"] == "http://hospital.example.org/mrn" and code(mrn["type"]) == {"MR"}
        assert patient["communication"][0]["language"]["coding"][0]["system"] == "urn:ietf:bcp:47"
        assert patient["managingOrganization"]["reference"] == "Organization/org-hospital"
    assert any(i["system"] == "http://hl7.org/fhir/sid/us-ssn" for p in by_type["Patient"] for i in p["identifier"])


def test_every_record_but_the_minimal_one_has_a_note_and_a_care_history(dataset, by_type):
    documented = {patient_of(d) for d in by_type["DocumentReference"]}
    seen = {patient_of(e) for e in by_type["Encounter"]}
    for entry in dataset.catalogue:
        assert entry["id"] in seen
        sparse = sum(entry["counts"].values()) <= 3
        assert (entry["id"] in documented) != sparse, entry["id"]
