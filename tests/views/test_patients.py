"""Patient browser summaries: one readable line per resource (pure)."""

from __future__ import annotations

from datetime import date

from mockehr.views.patient_summary import concept, group_record, matches, observation_value, patient_row, summary

LOINC = "http://loinc.org"


def obs(rid: str, when: str, **value) -> dict:
    return {"resourceType": "Observation", "id": rid, "status": "final", "effectiveDateTime": when,
            "code": {"coding": [{"system": LOINC, "code": "x", "display": "Heart rate"}]}, **value}


def test_patient_rows_and_search():
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-02-29",
               "name": [{"use": "usual", "given": ["Bea"]},
                        {"use": "official", "family": "Ñúñez", "given": ["Ana"]}],
               "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "123"},
                              {"type": {"coding": [{"code": "SS"}]}, "value": "999"}]}
    row = patient_row(patient, date(2024, 3, 1))
    assert row == {"id": "p1", "name": "Ana Ñúñez", "gender": "female", "birthDate": "1980-02-29", "age": "44",
                   "mrn": "123", "deceased": False}
    assert matches(row, "nunez ana") and matches(row, "1980") and matches(row, "123") and matches(row, "P1")
    assert not matches(row, "nunez bob") and not matches(row, "", "male") and matches(row, "", "female")
    dead = patient_row({**patient, "deceasedDateTime": "2000-01-01"}, date(2024, 1, 1))
    assert dead["deceased"] and dead["age"] == "19"


def test_observation_values():
    assert observation_value(obs("a", "2024", valueQuantity={"value": 72, "unit": "/min"})) == "72 /min"
    assert observation_value(obs("a", "2024", valueQuantity={"value": 5.40, "code": "mmol/L"})) == "5.4 mmol/L"
    assert observation_value(obs("a", "2024", valueCodeableConcept={"text": "Positive"})) == "Positive"
    assert observation_value(obs("a", "2024", valueString="good")) == "good"
    bp = {"component": [{"code": {"text": "sys"}, "valueQuantity": {"value": 131, "unit": "mmHg", "code": "mm[Hg]"}},
                        {"code": {"text": "dia"}, "valueQuantity": {"value": 86, "unit": "mmHg", "code": "mm[Hg]"}}]}
    assert observation_value(obs("a", "2024", **bp)) == "131/86 mmHg"
    mixed = {"component": [{"code": {"text": "a"}, "valueQuantity": {"value": 1, "unit": "x"}},
                           {"code": {"text": "b"}, "valueQuantity": {"value": 2, "unit": "y"}}]}
    assert observation_value(obs("a", "2024", **mixed)) == "a 1 x; b 2 y"


def test_summaries_of_common_types():
    condition = {"resourceType": "Condition", "id": "c", "code": {"text": "Type 2 diabetes"},
                 "clinicalStatus": {"coding": [{"code": "active", "display": "Active"}]}, "onsetDateTime": "2019-03-04"}
    assert summary(condition) == {"text": "Type 2 diabetes", "date": "2019-03-04", "sort": "2019-03-04", "value": "",
                                  "status": "Active"}
    med = {"resourceType": "MedicationRequest", "id": "m", "status": "active", "authoredOn": "2023-01-02T10:00:00Z",
           "medicationCodeableConcept": {"coding": [{"display": "Metformin 500 MG"}]},
           "dosageInstruction": [{"text": "1 tablet twice daily"}]}
    assert summary(med)["text"] == "Metformin 500 MG" and summary(med)["value"] == "1 tablet twice daily"
    assert summary(med)["date"] == "2023-01-02 10:00"
    allergy = {"resourceType": "AllergyIntolerance", "id": "a", "code": {"text": "Penicillin"}, "criticality": "high",
               "reaction": [{"manifestation": [{"coding": [{"display": "Hives"}]}]}]}
    assert summary(allergy)["value"] == "Hives, criticality high"
    encounter = {"resourceType": "Encounter", "id": "e", "status": "finished", "period": {"start": "2024-05-01"},
                 "type": [{"text": "Office visit"}], "reasonCode": [{"text": "Check-up"}]}
    assert (summary(encounter)["text"], summary(encounter)["value"]) == ("Office visit", "Check-up")
    unknown = {"resourceType": "Basic", "id": "b"}
    assert summary(unknown) == {"text": "Basic", "date": "", "sort": "", "value": "", "status": ""}
    assert concept({"reference": "Medication/1"}) == "Medication/1" and concept(None) == ""


def test_group_record_orders_types_clinically_and_rows_newest_first():
    record = [obs("o1", "2020-01-01"), obs("o2", "2024-01-01"),
              {"resourceType": "Zeta", "id": "z"}, {"resourceType": "Condition", "id": "c", "code": {"text": "x"}},
              {"resourceType": "Alpha", "id": "a"}]
    groups = group_record(record)
    assert [(g["type"], g["count"]) for g in groups] == [("Condition", 1), ("Observation", 2), ("Alpha", 1),
                                                          ("Zeta", 1)]
    assert [r["id"] for r in groups[1]["rows"]] == ["o2", "o1"]
