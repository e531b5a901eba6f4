"""mockehr.fhir.search (pure): parsing into criteria, and running against a TypeIndex built with extract."""

from __future__ import annotations

import pytest

from mockehr.fhir import search
from mockehr.fhir.extract import extract, reference_keys, reference_target, split_typed_path
from mockehr.fhir.outcome import FHIRError
from mockehr.store.index import TypeIndex
from tests.fhir.conftest import OBSERVATIONS, PATIENTS

GROUP_OBS = {"resourceType": "Observation", "id": "obs-g", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
             "subject": {"reference": "Group/grp-1"}}


def index_of(resources: list[dict]) -> TypeIndex:
    index = TypeIndex()
    for resource in resources:
        index.add(resource["id"], *extract(resource))
    return index


@pytest.fixture(scope="module")
def patients() -> TypeIndex:
    return index_of(PATIENTS)


@pytest.fixture(scope="module")
def observations() -> TypeIndex:
    return index_of(OBSERVATIONS + [GROUP_OBS])


def run(rtype: str, index: TypeIndex, *pairs: tuple[str, str], **kwargs) -> list[str]:
    return search.run(search.parse(rtype, list(pairs), **kwargs), index)


def bad(rtype: str, *pairs: tuple[str, str], strict: bool = False) -> FHIRError:
    with pytest.raises(FHIRError) as caught:
        search.parse(rtype, list(pairs), strict=strict)
    assert caught.value.status == 400
    assert caught.value.code == "invalid"
    return caught.value


# -- parse -----------------------------------------------------------------------------

def test_parse_builds_typed_criteria():
    request = search.parse("Observation", [("patient", "pat-1,Patient/pat-2"), ("date", "ge2023-01"),
                                           ("value-quantity", "gt5.4|http://unitsofmeasure.org|mmol/L"),
                                           ("code:text", "Blöod"), ("name-of-nothing", "x")])
    patient, date, quantity, text = request.criteria
    assert patient == search.Criterion("patient", "reference", None, ("Patient/pat-1", "Patient/pat-2"))
    assert date.ptype == "date" and date.values[0][0] == "ge"
    assert quantity.values[0][0] == "gt" and quantity.values[0][2:] == ("http://unitsofmeasure.org", "mmol/L")
    assert quantity.values[0][1][0] == pytest.approx(5.4)
    assert text.values == ("blood",)  # normalized once, at parse time
    assert request.ignored == ["unknown search parameter 'name-of-nothing' for Observation; it was ignored"]


def test_parse_result_parameters():
    request = search.parse("Patient", [("_count", "7"), ("_offset", "14"), ("_sort", "-birthdate,family"),
                                       ("_sort", "_id"), ("_summary", "data"), ("_elements", " gender , ,name"),
                                       ("_total", "none"), ("_include", "Patient:organization:Organization"),
                                       ("_revinclude:iterate", "Provenance:target"), ("_format", "json"),
                                       ("_pretty", "true")], default_count=20)
    assert (request.count, request.offset) == (7, 14)
    assert request.sort == [("birthdate", True), ("family", False), ("_id", False)]
    assert request.summary == "data" and request.total == "none"
    assert request.elements == ["gender", "name"]
    assert request.include == [search.Include("Patient", "organization", "Organization", False)]
    assert request.revinclude == [search.Include("Provenance", "target", None, True)]
    assert request.criteria == [] and request.ignored == []


def test_parse_defaults_and_caps():
    assert search.parse("Patient", [], default_count=20).count == 20
    capped = search.parse("Patient", [("_count", "5000")], max_count=100)
    assert capped.count == 100
    assert capped.ignored == ["_count=5000 is above this server's page limit; pages hold 100"]


def test_empty_values_are_ignored():
    assert search.parse("Patient", [("name", ""), ("gender", "")]).criteria == []
    assert search.parse("Patient", [("gender", ",")]).criteria[0].values == ()


@pytest.mark.parametrize("raw, expected", [
    ("a,b", ["a", "b"]), (r"a\,b,c", ["a,b", "c"]), ("a,,b,", ["a", "b"]), (r"a\\b", ["a\\b"]), ("", []),
    (r"a\|b", ["a|b"]),
])
def test_split_or(raw, expected):
    assert search._split_or(raw) == expected


@pytest.mark.parametrize("param, modifier, text, key", [
    ("patient", None, "123", "Patient/123"),
    ("subject", None, "123", "123"),
    ("subject", "Patient", "123", "Patient/123"),
    ("subject", None, "Group/9", "Group/9"),
    ("subject", None, "http://example.org/fhir/Patient/7", "Patient/7"),
    ("subject", None, "http://example.org/fhir/Patient/7/_history/2", "Patient/7"),
    ("subject", None, "urn:uuid:1234", "urn:uuid:1234"),
])
def test_reference_key(param, modifier, text, key):
    assert search._reference_key(param, modifier, text) == key


@pytest.mark.parametrize("pairs, message", [
    ([("name:below", "x")], "modifier ':below' is not supported on string parameter 'name'"),
    ([("gender:exact", "x")], "modifier ':exact' is not supported on token parameter 'gender'"),
    ([("birthdate:missing", "yes")], "birthdate:missing must be true or false, got 'yes'"),
    ([("birthdate", "1980-02-30")], "invalid value for 'birthdate': '1980-02-30' is not a real calendar date"),
    ([("_count", "x")], "_count must be a whole number, got 'x'"),
    ([("_count", "+5")], "_count must be a whole number"),
    ([("_offset", "-2")], "_offset must be at least 0, got -2"),
    ([("_sort", "-nope")], "cannot sort by 'nope': not a search parameter of Patient"),
    ([("_summary", "true")], "_summary=true is not supported"),
    ([("_summary", "nope")], "_summary must be one of count, data, text, false"),
    ([("_total", "nope")], "_total must be none, estimate or accurate"),
    ([("_include", "Patient:gender")], "'gender' is not one on Patient"),
    ([("_include", "Observation:subject")], "_include=Observation:subject names Observation"),
])
def test_parse_errors(pairs, message):
    assert message in bad("Patient", *pairs).diagnostics


def test_strict_handling_refuses_what_lenient_reports():
    pairs = [("shoe-size", "42"), ("general-practitioner.name", "x"), ("_include", "Nope:x")]
    lenient = search.parse("Patient", pairs)
    assert lenient.ignored == [
        "unknown search parameter 'shoe-size' for Patient; it was ignored",
        "chained parameter 'general-practitioner.name' is not supported; it was ignored",
        "_include=Nope:x is not supported; it was ignored",
    ]
    for pair in pairs:
        error = bad("Patient", pair, strict=True)
        assert error.diagnostics.endswith("(Prefer: handling=strict)")


def test_include_iterate_may_start_elsewhere():
    request = search.parse("Observation", [("_include:iterate", "Encounter:service-provider")])
    assert request.include == [search.Include("Encounter", "service-provider", None, True)]


# -- run ---------------------------------------------------------------------------------

def test_run_tokens_references_and_strings(patients, observations):
    assert run("Patient", patients, ("gender", "female")) == ["pat-1", "pat-3"]
    assert run("Patient", patients, ("gender", "female"), ("name", "zoe")) == ["pat-1"]
    assert run("Patient", patients, ("identifier", "nothing")) == []
    assert run("Observation", observations, ("subject", "Group/grp-1")) == ["obs-g"]
    assert run("Observation", observations, ("code", "8867-4")) == ["obs-1", "obs-g"]
    assert run("Observation", observations, ("code", "8867-4"), ("patient", "pat-1")) == ["obs-1"]


def test_run_patient_parameter_only_matches_patients(observations):
    assert run("Observation", observations, ("patient", "grp-1")) == []
    assert run("Observation", observations, ("patient:Group", "grp-1")) == []
    assert run("Observation", observations, ("subject", "grp-1")) == ["obs-g"]
    assert run("Observation", observations, ("patient:missing", "true")) == ["obs-g"]


def test_run_not_and_missing(patients, observations):
    assert run("Patient", patients, ("gender:not", "female,male")) == ["pat-5"]
    assert run("Patient", patients, ("birthdate:missing", "true")) == ["pat-5"]
    assert run("Observation", observations, ("encounter:missing", "false")) == ["obs-1", "obs-2"]
    assert run("Observation", observations, ("status:not", "final")) == ["obs-3", "obs-4"]


def test_run_sorts_with_missing_values_last(patients):
    assert run("Patient", patients, ("_sort", "birthdate")) == ["pat-2", "pat-1", "pat-4", "pat-3", "pat-5"]
    assert run("Patient", patients, ("_sort", "-birthdate")) == ["pat-3", "pat-4", "pat-1", "pat-2", "pat-5"]
    # tokens sort by their smallest key: pat-1's SSN '999-11-0001' sorts before every 'MRN...'
    assert run("Patient", patients, ("_sort", "-identifier")) == ["pat-3", "pat-2", "pat-4", "pat-1", "pat-5"]
    assert run("Patient", patients, ("_sort", "gender"), ("_sort", "-_id")) == [
        "pat-3", "pat-1", "pat-4", "pat-2", "pat-5"]


def test_run_sort_by_quantity(observations):
    assert run("Observation", observations, ("_sort", "value-quantity")) == [
        "obs-3", "obs-4", "obs-1", "obs-6", "obs-2", "obs-5", "obs-g"]


def test_index_remove_and_readd_keeps_lookups_exact():
    index = index_of(PATIENTS)
    index.remove("pat-1")
    assert run("Patient", index, ("identifier", "MRN001")) == ["pat-4"]
    assert "MRN001" in index.by_key["identifier"]  # pat-4 still holds the bucket
    index.remove("pat-4")
    assert "MRN001" not in index.by_key["identifier"]  # empty buckets are dropped
    index.remove("pat-4")  # twice is harmless
    index.add("pat-1", *extract(PATIENTS[0]))
    assert run("Patient", index, ("identifier", "MRN001")) == ["pat-1"]
    assert run("Patient", index) == ["pat-1", "pat-2", "pat-3", "pat-5"]


# -- extract -------------------------------------------------------------------------------

def test_extract_shapes():
    keys, values = extract(PATIENTS[0])
    assert keys["identifier"] == ["MRN001", "http://hospital.example/mrn|MRN001", "http://hospital.example/mrn|",
                                  "999-11-0001", "http://hl7.org/fhir/sid/us-ssn|999-11-0001",
                                  "http://hl7.org/fhir/sid/us-ssn|"]
    assert keys["gender"] == ["female", "|female"]
    assert keys["active"] == ["true", "|true"]
    assert keys["general-practitioner"] == ["Practitioner/prac-1", "prac-1"]
    assert values["name"] == ["Müller", "Zoë", "Anne"]
    assert values["family"] == ["Müller"]
    assert values["address"] == ["1 Main St", "Boston", "MA", "02101"]
    assert len(values["birthdate"]) == 1


def test_extract_typed_reference_paths():
    keys, _ = extract(GROUP_OBS)
    assert keys["subject"] == ["Group/grp-1", "grp-1"]
    assert "patient" not in keys
    keys, _ = extract(OBSERVATIONS[0])
    assert keys["patient"] == ["Patient/pat-1", "pat-1"] == keys["subject"]
    provenance = {"resourceType": "Provenance", "id": "p", "target": [{"reference": "Patient/pat-1"},
                                                                       {"reference": "Observation/obs-1"}]}
    keys, _ = extract(provenance)
    assert keys["patient"] == ["Patient/pat-1", "pat-1"]
    assert keys["target"] == ["Patient/pat-1", "pat-1", "Observation/obs-1", "obs-1"]


def test_reference_helpers():
    assert split_typed_path("subject.where(resolve() is Patient)") == ("subject", "Patient")
    assert split_typed_path("subject") == ("subject", None)
    assert reference_target("Patient/1") == ("Patient", "1")
    assert reference_target("https://x.org/fhir/Patient/1/_history/3") == ("Patient", "1")
    assert reference_target("patient/1") is None
    assert reference_keys({"reference": "#contained"}) == []
    assert reference_keys({"display": "no reference"}) == []
    assert reference_keys({"reference": "urn:uuid:1"}) == ["urn:uuid:1"]
    assert reference_keys({"reference": "urn:uuid:1"}, only="Patient") == []
    assert reference_keys({"reference": "Group/1"}, only="Patient") == []


def test_extract_never_raises_on_odd_but_storable_shapes():
    odd = {"resourceType": "Observation", "id": "odd", "effectivePeriod": {"start": "not a date"},
           "valueQuantity": {"value": True}, "code": {"coding": [{"display": "only a display"}]},
           "subject": {"reference": ""}, "category": [{"text": "Free text"}]}
    keys, values = extract(odd)
    assert values["date"] == []  # an unparsable stored date never matches
    assert values["value-quantity"] == []
    assert values["category:text"] == ["free text"]
    assert "subject" not in keys


def test_sort_by_token_uses_the_code_not_system_keys():
    def obs(rid: str, system: str, code: str) -> dict:
        return {"resourceType": "Observation", "id": rid, "status": "final",
                "code": {"coding": [{"system": system, "code": code}]}}

    index = index_of([obs("a", "http://z.example", "2"), obs("b", "http://a.example", "3"),
                      obs("c", "http://m.example", "1")])
    assert run("Observation", index, ("_sort", "code")) == ["c", "a", "b"]
    assert run("Observation", index, ("_sort", "-code")) == ["b", "a", "c"]


def test_condition_asserted_date_reads_the_us_core_extension():
    url = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"

    def condition(rid: str, asserted: str | None) -> dict:
        resource = {"resourceType": "Condition", "id": rid, "subject": {"reference": "Patient/p"}}
        if asserted:
            resource["extension"] = [{"url": "http://example.org/other", "valueDateTime": "1999-01-01"},
                                     {"url": url, "valueDateTime": asserted}]
        return resource

    index = index_of([condition("a", "2024-03-01"), condition("b", "2025-07-04"), condition("c", None)])
    assert run("Condition", index, ("asserted-date", "ge2025")) == ["b"]
    assert run("Condition", index, ("asserted-date", "lt2025")) == ["a"]
    assert run("Condition", index, ("asserted-date:missing", "true")) == ["c"]
