"""Search over real HTTP: every parameter type, modifier and prefix, against exact ids."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import LOINC, MRN, UCUM, US_CORE_LAB, US_CORE_PATIENT, diagnostics, ids


def found(api, path: str, params) -> list[str]:
    """Matching ids, sorted (the default order is by id anyway)."""
    return sorted(ids(api.search(path, params)))


# -- token -----------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ({"code": "8867-4"}, ["obs-1"]),
    ({"code": f"{LOINC}|2339-0"}, ["obs-3", "obs-6"]),
    ({"code": "http://snomed.info/sct|2339-0"}, []),
    ({"code": "|2339-0"}, []),  # |code means "no system", and these codes have one
    ({"code": f"{LOINC}|"}, ["obs-1", "obs-2", "obs-3", "obs-4", "obs-5", "obs-6"]),
    ({"code": "8867-4,29463-7"}, ["obs-1", "obs-4"]),
    ({"category": "laboratory"}, ["obs-3", "obs-6"]),
    ({"category:not": "vital-signs"}, ["obs-3", "obs-5", "obs-6"]),
    ({"category:not": "vital-signs,laboratory"}, ["obs-5"]),
    ({"code:text": "tobacco"}, ["obs-5"]),
    ({"code:text": "PRESSURE"}, ["obs-2"]),  # a word start inside the display
    ({"code:text": "ssure"}, []),
    ({"category:text": "social"}, ["obs-5"]),
    ({"component-code": "8480-6"}, ["obs-2"]),
    ({"value-concept": "http://snomed.info/sct|266919005"}, ["obs-5"]),
    ({"status": "final"}, ["obs-1", "obs-2", "obs-5", "obs-6"]),
    ({"status": "final,amended"}, ["obs-1", "obs-2", "obs-4", "obs-5", "obs-6"]),
    ({"value-quantity:missing": "true"}, ["obs-2", "obs-5"]),
    ({"code:missing": "false"}, ["obs-1", "obs-2", "obs-3", "obs-4", "obs-5", "obs-6"]),
])
def test_observation_token(api, query, expected):
    assert found(api, "Observation", query) == expected


@pytest.mark.parametrize("query, expected", [
    ({"identifier": "MRN001"}, ["pat-1", "pat-4"]),
    ({"identifier": f"{MRN}|MRN001"}, ["pat-1"]),
    ({"identifier": f"{MRN}|"}, ["pat-1", "pat-2", "pat-3"]),
    ({"identifier": "mrn001"}, []),  # tokens are case-sensitive
    ({"gender": "female"}, ["pat-1", "pat-3"]),
    ({"gender": "|female"}, ["pat-1", "pat-3"]),  # a plain code has no system
    ({"gender": "male,unknown"}, ["pat-2", "pat-4", "pat-5"]),
    ({"gender:not": "female"}, ["pat-2", "pat-4", "pat-5"]),
    ({"active": "true"}, ["pat-1", "pat-4"]),
    ({"active": "false"}, ["pat-2"]),
    ({"active:missing": "true"}, ["pat-3", "pat-5"]),
    ({"active:missing": "false"}, ["pat-1", "pat-2", "pat-4"]),
    ({"telecom": "555-0101"}, ["pat-1"]),
    ({"email": "email|zoe@example.org"}, ["pat-1"]),
    ({"_id": "pat-2"}, ["pat-2"]),
    ({"_id": "pat-2,pat-4,nope"}, ["pat-2", "pat-4"]),
])
def test_patient_token(api, query, expected):
    assert found(api, "Patient", query) == expected


def test_condition_and_encounter_tokens(api):
    assert found(api, "Condition", {"category": "problem-list-item"}) == ["cond-1"]
    assert found(api, "Condition", {"clinical-status": "resolved"}) == ["cond-2"]
    assert found(api, "Condition", {"code": "http://snomed.info/sct|38341003"}) == ["cond-1"]
    assert found(api, "Encounter", {"class": "IMP"}) == ["enc-2"]
    assert found(api, "Practitioner", {"identifier": "http://hl7.org/fhir/sid/us-npi|1234567893"}) == ["prac-1"]


# -- string ------------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ({"name": "zoe"}, ["pat-1"]),  # accent- and case-insensitive
    ({"name": "ZOË"}, ["pat-1"]),
    ({"name": "mull"}, ["pat-1"]),
    ({"name": "smi"}, ["pat-2", "pat-3"]),  # starts-with by default
    ({"family": "smith"}, ["pat-2", "pat-3"]),
    ({"family": "mith"}, []),
    ({"family:exact": "Smith"}, ["pat-2"]),
    ({"family:exact": "smith"}, []),
    ({"family:exact": "Müller"}, ["pat-1"]),
    ({"family:exact": "Muller"}, []),
    ({"family:contains": "ITH"}, ["pat-2", "pat-3"]),
    ({"family:contains": "arc"}, ["pat-4"]),
    ({"given": "jose"}, ["pat-4"]),
    ({"given": "anne"}, ["pat-1"]),  # any given name, not just the first
    ({"name": "zoe,jos"}, ["pat-1", "pat-4"]),
    ({"address-city": "boston"}, ["pat-1", "pat-4"]),
    ({"address": "cambridge"}, ["pat-2"]),
    ({"address-postalcode": "021"}, ["pat-1"]),
    ({"name:missing": "false"}, ["pat-1", "pat-2", "pat-3", "pat-4", "pat-5"]),
    ({"address:missing": "true"}, ["pat-3", "pat-5"]),
])
def test_patient_string(api, query, expected):
    assert found(api, "Patient", query) == expected


def test_string_on_other_types(api):
    assert found(api, "Practitioner", {"name": "dr"}) == ["prac-1"]  # prefix is a name part too
    assert found(api, "Organization", {"name": "general hosp"}) == ["org-1"]
    assert found(api, "Organization", {"name": "hospital"}) == []
    assert found(api, "Organization", {"name:contains": "hospital"}) == ["org-1"]


# -- reference ---------------------------------------------------------------------

def test_reference_forms(api):
    pat1 = ["obs-1", "obs-2", "obs-5"]
    assert found(api, "Observation", {"patient": "pat-1"}) == pat1
    assert found(api, "Observation", {"patient": "Patient/pat-1"}) == pat1
    assert found(api, "Observation", {"subject": "Patient/pat-1"}) == pat1
    assert found(api, "Observation", {"subject": "pat-1"}) == pat1
    assert found(api, "Observation", {"subject:Patient": "pat-1"}) == pat1
    assert found(api, "Observation", {"subject": f"{api.base}/Patient/pat-1"}) == pat1
    assert found(api, "Observation", {"subject:Group": "pat-1"}) == []
    assert found(api, "Observation", {"subject": "Group/pat-1"}) == []
    assert found(api, "Observation", {"patient": "pat-1,pat-3"}) == pat1 + ["obs-6"]
    assert found(api, "Observation", {"patient": "pat-2"}) == ["obs-3", "obs-4"]
    assert found(api, "Observation", {"encounter": "enc-1"}) == ["obs-1", "obs-2"]
    assert found(api, "Observation", {"encounter:missing": "true"}) == ["obs-3", "obs-4", "obs-5", "obs-6"]
    assert found(api, "Observation", {"performer": "Practitioner/prac-1"}) == ["obs-1"]


def test_reference_on_other_types(api):
    assert found(api, "Encounter", {"practitioner": "prac-1"}) == ["enc-1"]
    assert found(api, "Encounter", {"service-provider": "Organization/org-1"}) == ["enc-1"]
    assert found(api, "MedicationRequest", {"medication": "med-1"}) == ["mr-1"]
    assert found(api, "MedicationRequest", {"requester": "Practitioner/prac-1"}) == ["mr-1"]
    assert found(api, "Provenance", {"target": "Observation/obs-1"}) == ["prov-1"]
    assert found(api, "Patient", {"general-practitioner": "prac-1"}) == ["pat-1"]
    assert found(api, "Patient", {"organization": "Organization/org-1"}) == ["pat-1"]


def test_combined_criteria_and(api):
    assert found(api, "Observation", {"patient": "pat-1", "category": "vital-signs"}) == ["obs-1", "obs-2"]
    assert found(api, "Observation", [("patient", "pat-1"), ("patient", "pat-2")]) == []
    assert found(api, "Patient", {"gender": "male", "address-city": "boston"}) == ["pat-4"]
    assert found(api, "Patient", [("birthdate", "ge1980"), ("birthdate", "lt1981")]) == ["pat-1", "pat-4"]
    assert found(api, "Patient", [("name", "smith"), ("name", "jane")]) == ["pat-3"]


# -- date --------------------------------------------------------------------------
# obs-1 2023-01-15T10:30:00Z, obs-2 2023-02-20T08:00:00+02:00 (06:00Z), obs-3 2022-12-31,
# obs-4 period 2023-03-01T00:00Z..2023-03-05T00:00Z, obs-5 no date, obs-6 2023.

@pytest.mark.parametrize("value, expected", [
    ("2023", ["obs-1", "obs-2", "obs-4", "obs-6"]),
    ("2023-01", ["obs-1"]),
    ("2023-01-15", ["obs-1"]),
    ("eq2022-12-31", ["obs-3"]),
    ("2023-01-15T10:30Z", ["obs-1"]),  # minute precision
    ("2023-01-15T10:30:00Z", ["obs-1"]),
    ("2023-01-15T12:30:00+02:00", ["obs-1"]),  # the same instant in another zone
    ("2023-01-15T10:30:01Z", []),
    ("2023-02-20T08:00:00+02:00", ["obs-2"]),
    ("2023-02-20T06:00:00Z", ["obs-2"]),
    ("2023-02-20T08:00:00Z", []),
    ("ne2023", ["obs-3"]),  # a resource without the value never matches
    ("gt2023-01-31", ["obs-2", "obs-4", "obs-6"]),  # obs-6 (the year 2023) reaches beyond
    ("lt2023-01-15", ["obs-3", "obs-6"]),
    ("ge2023-02-20", ["obs-2", "obs-4", "obs-6"]),
    ("ge2023-02-20T07:00:00+02:00", ["obs-2", "obs-4", "obs-6"]),
    ("le2022-12-31", ["obs-3"]),
    ("le2023-01-15", ["obs-1", "obs-3", "obs-6"]),
    ("sa2023-01-15", ["obs-2", "obs-4"]),
    ("eb2023-02-01", ["obs-1", "obs-3"]),
    ("eb2023", ["obs-3"]),
    ("sa2022", ["obs-1", "obs-2", "obs-4", "obs-6"]),
    ("2023-03-02", []),  # inside obs-4's period, but eq needs the period inside the day
    ("2023-03", ["obs-4"]),
    ("2022,2023-01", ["obs-1", "obs-3"]),
])
def test_observation_date(api, value, expected):
    assert found(api, "Observation", {"date": value}) == expected


def test_date_periods_and_birthdates(api):
    assert found(api, "Encounter", {"date": "2023-01-15"}) == ["enc-1"]
    assert found(api, "Encounter", {"date": "2022-06-02"}) == []
    assert found(api, "Encounter", {"date": "2022-06"}) == ["enc-2"]
    assert found(api, "Encounter", {"date": "ge2022-06-02"}) == ["enc-1", "enc-2"]
    assert found(api, "Encounter", {"date": "lt2022-06-02"}) == ["enc-2"]
    assert found(api, "Patient", {"birthdate": "1980"}) == ["pat-1", "pat-4"]
    assert found(api, "Patient", {"birthdate": "1980-05"}) == ["pat-1"]
    assert found(api, "Patient", {"birthdate": "1980-05-17"}) == ["pat-1"]
    assert found(api, "Patient", {"birthdate": "lt1980"}) == ["pat-2"]
    assert found(api, "Patient", {"birthdate": "ge2000"}) == ["pat-3"]
    assert found(api, "Patient", {"birthdate:missing": "true"}) == ["pat-5"]
    assert found(api, "Condition", {"onset-date": "2019"}) == ["cond-1"]
    assert found(api, "Condition", {"onset-date": "2019-06-15"}) == []  # month value, day query
    assert found(api, "MedicationRequest", {"authoredon": "ge2023-01-15"}) == ["mr-1"]


def test_last_updated(api):
    assert found(api, "Patient", {"_lastUpdated": "2024-01-03"}) == ["pat-2"]
    assert found(api, "Patient", {"_lastUpdated": "gt2024-01-03"}) == ["pat-3", "pat-4", "pat-5"]
    assert found(api, "Patient", {"_lastUpdated": "le2024-01-02T00:00:00Z"}) == ["pat-1"]


# -- quantity ------------------------------------------------------------------------
# obs-1 72 /min, obs-3 5.4 mmol/L, obs-4 70.5 kg, obs-6 100 mg/dL; obs-2 components 120/80 mm[Hg].

@pytest.mark.parametrize("value, expected", [
    ("72", ["obs-1"]),
    ("gt70", ["obs-1", "obs-4", "obs-6"]),
    ("ge72", ["obs-1", "obs-6"]),
    ("lt72", ["obs-3", "obs-4"]),
    ("le5.4", ["obs-3"]),
    ("ne72", ["obs-3", "obs-4", "obs-6"]),
    ("5.4", ["obs-3"]),
    ("5", ["obs-3"]),  # precision: 5 means [4.5, 5.5)
    ("5.0", []),  # 5.0 means [4.95, 5.05)
    ("5.40", ["obs-3"]),
    ("70", []),  # [69.5, 70.5): 70.5 is outside
    ("71", ["obs-4"]),
    ("70.5", ["obs-4"]),
    ("1e2", ["obs-6"]),
    ("gt70|http://unitsofmeasure.org|kg", ["obs-4"]),
    (f"gt1|{UCUM}|mmol/L", ["obs-3"]),
    ("gt1||mmol/L", ["obs-3"]),  # code only
    ("gt1|http://example.org/units|kg", []),
    ("72,5.4", ["obs-1", "obs-3"]),
])
def test_value_quantity(api, value, expected):
    assert found(api, "Observation", {"value-quantity": value}) == expected


def test_component_value_quantity(api):
    assert found(api, "Observation", {"component-value-quantity": "gt100"}) == ["obs-2"]
    assert found(api, "Observation", {"component-value-quantity": "80||mm[Hg]"}) == ["obs-2"]
    assert found(api, "Observation", {"component-value-quantity": "lt50"}) == []


# -- uri ---------------------------------------------------------------------------

def test_profile(api):
    assert found(api, "Observation", {"_profile": US_CORE_LAB}) == ["obs-3", "obs-6"]
    assert found(api, "Patient", {"_profile": US_CORE_PATIENT}) == ["pat-1"]
    assert found(api, "Patient", {"_profile": US_CORE_PATIENT[:-3]}) == []  # uri is exact
    assert found(api, "Patient", {"_profile:missing": "true"}) == ["pat-2", "pat-3", "pat-4", "pat-5"]


# -- POST _search ------------------------------------------------------------------

def test_post_search_with_a_form_body(api):
    response = api.post("Patient/_search", data={"name": "zoe"})
    assert response.status_code == 200
    assert ids(response.json()) == ["pat-1"]
    response = api.post("Observation/_search", params={"patient": "pat-1"}, data={"category": "vital-signs"})
    assert ids(response.json()) == ["obs-1", "obs-2"]
    assert api.post("Foo/_search", data={}).status_code == 404


def test_empty_search_returns_everything_by_id(api):
    bundle = api.search("Patient", {})
    assert bundle["total"] == 5
    assert ids(bundle) == ["pat-1", "pat-2", "pat-3", "pat-4", "pat-5"]
    assert bundle["entry"][0]["fullUrl"] == f"{api.base}/Patient/pat-1"
    assert found(api, "Patient", {"name": ""}) == ids(bundle)  # empty values are ignored


# -- what the server does not understand ----------------------------------------------

def test_unknown_parameter_is_ignored_and_reported(api):
    bundle = api.search("Patient", {"gender": "female", "shoe-size": "42"})
    assert ids(bundle) == ["pat-1", "pat-3"]
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1
    issue = outcome[0]["resource"]["issue"][0]
    assert issue["severity"] == "warning"
    assert "unknown search parameter 'shoe-size' for Patient" in issue["diagnostics"]
    assert "fullUrl" not in outcome[0]
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "gender=female" in self_link


def test_unknown_parameter_under_strict_handling_is_400(api):
    response = api.get("Patient", params={"shoe-size": "42"}, headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    assert "unknown search parameter 'shoe-size'" in diagnostics(response.json())
    lenient = api.get("Patient", params={"shoe-size": "42"}, headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200


def test_chained_parameters_are_reported_not_silently_dropped(api):
    bundle = api.search("Observation", {"subject.name": "zoe"})
    assert "chained parameter 'subject.name' is not supported" in diagnostics(
        ids_outcome(bundle))
    strict = api.get("Observation", params={"subject.name": "zoe"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


def ids_outcome(bundle: dict) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome")


@pytest.mark.parametrize("path, params, message", [
    ("Patient", {"name:below": "x"}, "modifier ':below' is not supported on string parameter 'name'"),
    ("Patient", {"birthdate:exact": "1980"}, "modifier ':exact' is not supported on date parameter 'birthdate'"),
    ("Patient", {"gender:contains": "f"}, "modifier ':contains' is not supported on token parameter 'gender'"),
    ("Observation", {"subject:Foo": "x"}, "modifier ':Foo' is not supported on reference parameter 'subject'"),
    ("Observation", {"subject:identifier": "x"}, "modifier ':identifier' is not supported"),
    ("Patient", {"birthdate": "yesterday"}, "invalid value for 'birthdate'"),
    ("Patient", {"birthdate": "2023-02-30"}, "'2023-02-30' is not a real calendar date"),
    ("Patient", {"birthdate": "2023-13"}, "is not a real calendar date"),
    ("Patient", {"birthdate": "xx2023"}, "invalid value for 'birthdate'"),
    ("Observation", {"value-quantity": "gtseventy"}, "'gtseventy' is not a number"),
    ("Observation", {"value-quantity": "|kg"}, "invalid value for 'value-quantity'"),
    ("Patient", {"active:missing": "maybe"}, "active:missing must be true or false, got 'maybe'"),
    ("Patient", {"_count": "ten"}, "_count must be a whole number, got 'ten'"),
    ("Patient", {"_count": "-1"}, "_count must be at least 0"),
    ("Patient", {"_count": "1_0"}, "_count must be a whole number, got '1_0'"),
    ("Patient", {"_count": "²"}, "_count must be a whole number, got '²'"),
    ("Observation", {"value-quantity": "1e999"}, "'1e999' is out of range"),
    ("Observation", {"value-quantity": "nan"}, "'nan' is not a number"),
    ("Patient", {"_offset": "x"}, "_offset must be a whole number"),
    ("Patient", {"_sort": "shoe-size"}, "cannot sort by 'shoe-size': not a search parameter of Patient"),
    ("Patient", {"_summary": "bogus"}, "_summary must be one of count, data, text, false; got 'bogus'"),
    ("Patient", {"_total": "exact"}, "_total must be none, estimate or accurate; got 'exact'"),
    ("Observation", {"_include": "Observation:code"}, "'code' is not one on Observation"),
    ("Observation", {"_include": "Patient:general-practitioner"}, "names Patient, but this search is for Observation"),
])
def test_bad_values_are_400_with_a_helpful_message(api, path, params, message):
    response = api.get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["issue"][0]["severity"] == "error"
    assert body["issue"][0]["code"] == "invalid"
    assert message in diagnostics(body)


def test_search_on_unknown_type_is_404(api):
    response = api.get("Foo", params={"name": "x"})
    assert response.status_code == 404
    assert diagnostics(response.json()) == "unknown resource type 'Foo'"
