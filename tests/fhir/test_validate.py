"""mockehr.fhir.validate: valid resources pass, each kind of error is named, garbage never raises."""

from __future__ import annotations

import copy
import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mockehr.fhir.validate import (
    MAX_ISSUES,
    Issue,
    resource_types,
    validate_resource,
    validate_resource_type,
)

ROOT = Path(__file__).resolve().parents[2]

PATIENT = {
    "resourceType": "Patient",
    "id": "pat-1",
    "meta": {
        "versionId": "1",
        "lastUpdated": "2024-01-31T08:30:00.123Z",
        "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],
    },
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jane Doe</div>'},
    "extension": [
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [
                {"url": "ombCategory",
                 "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3", "display": "White"}},
                {"url": "text", "valueString": "White"},
            ],
        },
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"},
    ],
    "identifier": [{
        "use": "usual",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
        "system": "urn:oid:1.2.36.146.595.217.0.1",
        "value": "12345",
        "period": {"start": "2001-05-06"},
        "assigner": {"display": "Acme Healthcare"},
    }],
    "active": True,
    "name": [{
        "use": "official",
        "family": "Doe",
        "given": ["Jane", "Q"],
        "_given": [None, {"extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "MID"}]}],
    }],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work", "rank": 1}],
    "gender": "female",
    "birthDate": "1974-12-25",
    "_birthDate": {"extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
        "valueDateTime": "1974-12-25T14:35:45-05:00",
    }]},
    "deceasedBoolean": False,
    "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille",
                 "state": "Vic", "postalCode": "3999", "country": "AU"}],
    "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
    "multipleBirthInteger": 1,
    "contact": [{
        "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
        "name": {"family": "Doe", "given": ["John"]},
        "gender": "male",
    }],
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-AU"}]}, "preferred": True}],
    "managingOrganization": {"reference": "Organization/1", "display": "Acme"},
    "generalPractitioner": [{"reference": "#gp"}],
    "contained": [{"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Careful", "prefix": ["Dr"]}]}],
}

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VITALS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}

BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "id": "bp-1",
    "status": "final",
    "category": [VITALS],
    "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}], "text": "BP"},
    "subject": {"reference": "Patient/pat-1"},
    "encounter": {"reference": "Encounter/enc.1/_history/2"},
    "effectiveDateTime": "2024-01-31T08:30:00+01:00",
    "issued": "2024-01-31T09:00:00Z",
    "performer": [{"reference": "https://example.org/fhir/Practitioner/7"}],
    "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                    "code": "N"}]}],
    "bodySite": {"coding": [{"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}]},
    "component": [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": {"value": 107, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": {"value": 60.5, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
         "referenceRange": [{"low": {"value": 40, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
                             "high": {"value": 90, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}]},
    ],
}

HEART_RATE = {
    "resourceType": "Observation",
    "status": "final",
    "category": [VITALS],
    "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]},
    "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
    "effectivePeriod": {"start": "2024-01-31", "end": "2024-02"},
    "valueQuantity": {"value": 44, "unit": "beats/minute", "system": UCUM, "code": "/min"},
    "note": [{"authorString": "Nurse", "time": "2024-01-31T08:30:00Z", "text": "Resting, *supine*."}],
}

CONDITION = {
    "resourceType": "Condition",
    "id": "cond-1",
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                   "code": "active"}]},
    "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                       "code": "confirmed"}]},
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                              "code": "problem-list-item"}]}],
    "severity": {"coding": [{"system": "http://snomed.info/sct", "code": "24484000", "display": "Severe"}]},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006",
                         "display": "Diabetes mellitus type 2"}]},
    "subject": {"reference": "Patient/pat-1"},
    "onsetAge": {"value": 52, "unit": "years", "system": UCUM, "code": "a"},
    "recordedDate": "2023-11-02",
    "evidence": [{"detail": [{"reference": "Observation/bp-1"}]}],
}

MEDICATION_REQUEST = {
    "resourceType": "MedicationRequest",
    "id": "medrx-1",
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                              "code": "860975", "display": "metformin 500 MG"}]},
    "subject": {"reference": "Patient/pat-1", "display": "Jane Doe"},
    "authoredOn": "2024-01-31T10:00:00Z",
    "requester": {"reference": "Practitioner/7"},
    "reasonReference": [{"reference": "Condition/cond-1"}],
    "dosageInstruction": [{
        "sequence": 1,
        "text": "500 mg twice a day with meals",
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "when": ["C"]}},
        "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral"}]},
        "doseAndRate": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                                              "code": "ordered"}]},
                         "doseQuantity": {"value": 500, "unit": "mg", "system": UCUM, "code": "mg"}}],
        "asNeededBoolean": False,
    }],
    "dispenseRequest": {
        "validityPeriod": {"start": "2024-01-31", "end": "2024-07-31"},
        "numberOfRepeatsAllowed": 0,
        "quantity": {"value": 60, "unit": "tablet"},
        "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"},
    },
    "substitution": {"allowedBoolean": True},
}

BUNDLE = {
    "resourceType": "Bundle",
    "type": "transaction",
    "meta": {"tag": [{"system": "urn:ietf:rfc:3986", "code": "mockehr-test"}]},
    "entry": [
        {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
         "resource": {k: v for k, v in PATIENT.items() if k != "id"},
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=12345"}},
        {"fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
         "resource": HEART_RATE,
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": CONDITION, "request": {"method": "PUT", "url": "Condition/cond-1"}},
    ],
}

VALID = {"patient": PATIENT, "blood_pressure": BLOOD_PRESSURE, "heart_rate": HEART_RATE,
         "condition": CONDITION, "medication_request": MEDICATION_REQUEST, "bundle": BUNDLE}


@pytest.mark.parametrize("name", VALID)
def test_valid_resources_pass(name):
    assert validate_resource(copy.deepcopy(VALID[name])) == []


@pytest.mark.parametrize("name", VALID)
def test_valid_examples_are_valid_for_fhir_resources_too(name):
    """Keeps the examples honest: an independent validator accepts them."""
    get_fhir_model_class = pytest.importorskip("fhir.resources.R4B").get_fhir_model_class
    resource = VALID[name]
    get_fhir_model_class(resource["resourceType"]).model_validate(copy.deepcopy(resource))


def _mutated(base: dict, path: tuple, value=None, delete: bool = False) -> dict:
    """Copy of `base` with the element at `path` (keys / indexes) replaced or deleted."""
    resource = copy.deepcopy(base)
    node = resource
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return resource


DROP = object()
ERROR_CASES = [
    # (base, path, new value or DROP, code, expression, message)
    (PATIENT, ("birthDate",), "1990-13-01", "value", "Patient.birthDate",
     "Patient.birthDate: '1990-13-01' is not a valid FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"),
    (PATIENT, ("birthDate",), "2023-02-29", "value", "Patient.birthDate", None),
    (PATIENT, ("gendr",), "male", "structure", "Patient.gendr",
     "Patient.gendr: unknown element (did you mean 'gender'?)"),
    (PATIENT, ("foo",), 1, "structure", "Patient.foo", "Patient.foo: unknown element"),
    (PATIENT, ("deceased",), True, "structure", "Patient.deceased",
     "Patient.deceased: unknown element (a choice element needs its type: "
     "one of deceasedBoolean, deceasedDateTime)"),
    (PATIENT, ("_gender",), {"foo": 1}, "structure", "Patient.gender.foo", None),
    (PATIENT, ("_address",), {"extension": []}, "structure", "Patient._address",
     "Patient._address: unknown element ('_' siblings are only allowed for primitive elements; "
     "address is not one)"),
    (PATIENT, ("gender",), ["female"], "structure", "Patient.gender",
     "Patient.gender: expected a single value, not an array"),
    (PATIENT, ("name",), {"family": "Doe"}, "structure", "Patient.name",
     "Patient.name: expected an array, got object"),
    (PATIENT, ("name",), [], "value", "Patient.name",
     "Patient.name: empty array; elements must have a value or children"),
    (PATIENT, ("name",), None, "structure", "Patient.name",
     "Patient.name: null is not allowed; omit the element instead"),
    (PATIENT, ("maritalStatus",), {}, "value", "Patient.maritalStatus",
     "Patient.maritalStatus: empty object; elements must have a value or children"),
    (PATIENT, ("gender",), "", "value", "Patient.gender",
     "Patient.gender: empty string; elements must have a value or children"),
    (PATIENT, ("gender",), None, "structure", "Patient.gender",
     "Patient.gender: null is not allowed; omit the element instead"),
    (PATIENT, ("gender",), " female", "value", "Patient.gender",
     "Patient.gender: ' female' is not a valid FHIR code (no leading, trailing or repeated whitespace)"),
    (PATIENT, ("active",), "true", "value", "Patient.active",
     "Patient.active: expected JSON true or false (boolean), got string 'true'"),
    (PATIENT, ("multipleBirthInteger",), 2**31, "value", "Patient.multipleBirthInteger",
     "Patient.multipleBirthInteger: 2147483648 is not a valid FHIR integer (must be <= 2147483647)"),
    (PATIENT, ("multipleBirthInteger",), 1.0, "value", "Patient.multipleBirthInteger", None),
    (PATIENT, ("deceasedDateTime",), "2020-01-01", "structure", "Patient.deceased",
     "Patient.deceased[x]: only one of deceasedBoolean and deceasedDateTime may be present"),
    (PATIENT, ("telecom", 0, "rank"), 0, "value", "Patient.telecom[0].rank",
     "Patient.telecom[0].rank: 0 is not a valid FHIR positiveInt (must be >= 1)"),
    (PATIENT, ("id",), "pat_1", "value", "Patient.id",
     "Patient.id: 'pat_1' is not a valid FHIR id (1-64 characters: A-Z a-z 0-9 - .)"),
    (PATIENT, ("id",), "x" * 65, "value", "Patient.id", None),
    (PATIENT, ("meta", "lastUpdated"), "2024-01-31", "value", "Patient.meta.lastUpdated", None),
    (PATIENT, ("meta", "lastUpdated"), "2024-01-31T08:30:00", "value", "Patient.meta.lastUpdated", None),
    (PATIENT, ("extension", 1), {"url": "http://x", "valueOid": "urn:oid:1.02"}, "value",
     "Patient.extension[1].valueOid", None),
    (PATIENT, ("extension", 1), {"url": "http://x", "valueUuid": "urn:uuid:ABC"}, "value",
     "Patient.extension[1].valueUuid", None),
    (PATIENT, ("text", "div"), "Jane Doe", "value", "Patient.text.div",
     "Patient.text.div: 'Jane Doe' is not valid narrative xhtml (it must be a <div> element)"),
    (PATIENT, ("text", "status"), DROP, "required", "Patient.text.status", "Patient.text.status is required"),
    (PATIENT, ("extension", 1, "url"), DROP, "required", "Patient.extension[1].url",
     "Patient.extension[1].url is required"),
    (PATIENT, ("extension", 1, "valueCode"), DROP, "invariant", "Patient.extension[1]",
     "Patient.extension[1]: an extension must have a value[x] or nested extensions"),
    (PATIENT, ("extension", 0, "valueString"), "x", "invariant", "Patient.extension[0]",
     "Patient.extension[0]: an extension must have either a value[x] or nested extensions, not both"),
    (PATIENT, ("name", 0, "_given"), [None], "structure", "Patient.name[0].given",
     "Patient.name[0].given: _given must have as many items as given, using null as a placeholder"),
    (PATIENT, ("name", 0, "given", 0), None, "structure", "Patient.name[0].given[0]",
     "Patient.name[0].given[0]: null is not allowed; omit the element instead"),
    (PATIENT, ("generalPractitioner", 0, "reference"), "#nope", "invariant", "Patient.generalPractitioner[0].reference",
     "Patient.generalPractitioner[0].reference: '#nope' does not match the id of any contained resource"),
    (PATIENT, ("contained", 0, "contained"), [{"resourceType": "Basic", "code": {"text": "x"}}],
     "invariant", "Patient.contained[0].contained", None),
    (PATIENT, ("contained", 0, "resourceType"), "Doctor", "invalid", "Patient.contained[0].resourceType",
     "Patient.contained[0].resourceType: unknown resource type 'Doctor'"),
    (PATIENT, ("managingOrganization", "reference"), "organization/1", "value",
     "Patient.managingOrganization.reference",
     "Patient.managingOrganization.reference: 'organization/1' names an unknown resource type "
     "'organization' (did you mean 'Organization'?)"),
    (PATIENT, ("managingOrganization", "reference"), "Organization 1", "value",
     "Patient.managingOrganization.reference",
     "Patient.managingOrganization.reference: 'Organization 1' is not a valid reference "
     "(expected Type/id, an absolute URL, #contained-id or urn:uuid:...)"),
    (PATIENT, ("managingOrganization", "reference"), "urn:uuid:NOT-A-UUID", "value",
     "Patient.managingOrganization.reference", None),
    (BLOOD_PRESSURE, ("status",), DROP, "required", "Observation.status", "Observation.status is required"),
    (BLOOD_PRESSURE, ("code", "coding", 0, "system"), "http://loinc.org ", "value", "Observation.code.coding[0].system",
     "Observation.code.coding[0].system: 'http://loinc.org ' is not a valid FHIR uri "
     "(must not be empty or contain whitespace)"),
    (BLOOD_PRESSURE, ("component", 1, "valueQuantity", "value"), "60.5", "value",
     "Observation.component[1].valueQuantity.value",
     "Observation.component[1].valueQuantity.value: expected a JSON number (decimal), got string '60.5'"),
    (BLOOD_PRESSURE, ("component", 0, "code"), DROP, "required", "Observation.component[0].code",
     "Observation.component[0].code is required"),
    (BLOOD_PRESSURE, ("effectiveDateTime",), "2024-01-31T08:30", "value", "Observation.effectiveDateTime", None),
    (HEART_RATE, ("effectivePeriod", "start"), "31/01/2024", "value", "Observation.effectivePeriod.start", None),
    (MEDICATION_REQUEST, ("medicationCodeableConcept",), DROP, "required", "MedicationRequest.medication",
     "MedicationRequest.medication[x] is required (one of medicationCodeableConcept, medicationReference)"),
    (MEDICATION_REQUEST, ("dispenseRequest", "numberOfRepeatsAllowed"), -1, "value",
     "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed", None),
    (MEDICATION_REQUEST, ("dosageInstruction", 0, "timing", "repeat", "timeOfDay"), ["8:00"], "value",
     "MedicationRequest.dosageInstruction[0].timing.repeat.timeOfDay[0]", None),
    (BUNDLE, ("entry", 1, "resource", "status"), "final ", "value", "Bundle.entry[1].resource.status", None),
    (BUNDLE, ("entry", 2, "resource", "resourceType"), DROP, "required", "Bundle.entry[2].resource.resourceType",
     "Bundle.entry[2].resource.resourceType is required"),
    (BUNDLE, ("entry", 0, "request", "method"), DROP, "required", "Bundle.entry[0].request.method", None),
    (BUNDLE, ("entry", 0, "resource"), "Patient/1", "structure", "Bundle.entry[0].resource",
     "Bundle.entry[0].resource: a resource must be a JSON object, got string"),
    (CONDITION, ("subject",), DROP, "required", "Condition.subject", "Condition.subject is required"),
    (CONDITION, ("onsetAge", "value"), True, "value", "Condition.onsetAge.value", None),
]


@pytest.mark.parametrize("base, path, value, code, expression, message", ERROR_CASES,
                         ids=[".".join(map(str, case[1])) for case in ERROR_CASES])
def test_each_error_is_reported_where_it_is(base, path, value, code, expression, message):
    resource = _mutated(base, path, delete=value is DROP) if value is DROP else _mutated(base, path, value)
    issues = validate_resource(resource)
    assert issues, "expected an issue"
    assert all(i.severity == "error" for i in issues)
    assert [(i.code, i.expression) for i in issues] == [(code, expression)], issues
    if message is not None:
        assert issues[0].message == message
    assert issues[0].message.startswith(expression.split("[x]")[0])


@pytest.mark.parametrize("resource, expression, fragment", [
    (None, "Resource", "must be a JSON object, got null"),
    ([PATIENT], "Resource", "got array"),
    ({}, "Resource.resourceType", "is required"),
    ({"resourceType": "Patinet"}, "Resource.resourceType", "did you mean 'Patient'?"),
    ({"resourceType": 7}, "Resource.resourceType", "unknown resource type 7"),
    ({"resourceType": "Patient", 3: "x"}, "Patient", "element names must be strings"),
])
def test_not_a_resource(resource, expression, fragment):
    issues = validate_resource(resource)
    assert len(issues) == 1 and issues[0].expression == expression
    assert fragment in issues[0].message


def test_primitive_value_may_be_given_only_as_an_extension():
    absent = {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
    resource = {"resourceType": "Observation", "_status": {"extension": [absent]}, "code": {"text": "x"}}
    assert validate_resource(resource) == []


def test_primitive_types_accept_their_whole_range():
    resource = copy.deepcopy(HEART_RATE)
    resource["effectivePeriod"] = {"start": "2024", "end": "2024-02-29T23:59:60.999+14:00"}
    resource["valueQuantity"]["value"] = -1.5e-3
    resource["issued"] = "2024-01-31T08:30:00-03:30"
    resource["meta"] = {"security": [{"system": "urn:oid:2.16.840.1.113883.5.25", "code": "N"}]}
    resource["valueQuantity"]["comparator"] = "<="
    assert validate_resource(resource) == []
    binary = {"resourceType": "Binary", "contentType": "text/plain", "data": "aGVs\nbG8/+A=="}
    assert validate_resource(binary) == []
    binary["data"] = "aGVsbG8"
    assert [i.expression for i in validate_resource(binary)] == ["Binary.data"]


def test_issue_count_is_capped():
    resource = {"resourceType": "Patient", "name": [{"family": 1, "given": [2, 3]} for _ in range(100)]}
    issues = validate_resource(resource)
    assert len(issues) == MAX_ISSUES + 1
    assert issues[-1].severity == "warning" and issues[-1].code == "too-costly"


def test_deep_nesting_is_an_issue_not_a_crash():
    ext: dict = {"url": "http://x", "valueString": "leaf"}
    for _ in range(3000):
        ext = {"url": "http://x", "extension": [ext]}
    issues = validate_resource({"resourceType": "Patient", "extension": [ext]})
    assert issues and issues[0].code == "too-costly"


def test_resource_type_names():
    assert validate_resource_type("Patient") and validate_resource_type("Observation")
    assert not validate_resource_type("patient") and not validate_resource_type("Resource")
    assert not validate_resource_type(None)
    assert len(resource_types()) == 146  # the R4 list, MetadataResource excluded
    assert "MedicinalProduct" in resource_types() and "SubscriptionTopic" not in resource_types()


# Garbage at random places must give issues, never exceptions.
GARBAGE = [None, True, False, 0, -1, 2**70, 1.5, float("nan"), float("inf"), "", " ", "x", "\x00",
           "2024-13-45", "#", "urn:uuid:", [], {}, [None], [[]], [{}], {"a": 1}, {"extension": [None]},
           {"resourceType": "Patient"}, {"resourceType": 5}, {"resourceType": "Bundle", "entry": [1]},
           {"url": 1, "valueString": []}, {"reference": "#"}, {"_x": {}}, object(), {1, 2}, b"bytes",
           (1, 2), {"value": "x", "_value": [None]}]
KEYS = ["resourceType", "contained", "extension", "_id", "_x", "value", "valueString", "reference",
        "div", "url", "entry", "resource", "id", 7, "_extension"]


def _positions(node, path=()):
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _positions(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _positions(value, path + (i,))


def _fuzz_once(rng: random.Random) -> object:
    resource = copy.deepcopy(rng.choice(list(VALID.values())))
    for _ in range(rng.randint(1, 4)):
        path = rng.choice(list(_positions(resource)))
        if not path:
            continue
        parent = resource
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.3:
            parent[rng.choice(KEYS)] = copy.deepcopy(rng.choice(GARBAGE))
        elif isinstance(parent, dict) and rng.random() < 0.2:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(GARBAGE))
    return resource


def _assert_well_formed(issues):
    assert isinstance(issues, list) and len(issues) <= MAX_ISSUES + 1
    for issue in issues:
        assert isinstance(issue, Issue) and issue.severity in ("error", "warning")
        assert issue.code and issue.expression and issue.message


def test_random_garbage_never_raises():
    rng = random.Random(20240131)
    for _ in range(3000):
        _assert_well_formed(validate_resource(_fuzz_once(rng)))
    for garbage in GARBAGE:
        _assert_well_formed(validate_resource(garbage))


def test_hypothesis_json_never_raises():
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.sampled_from(KEYS)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4),
                          max_leaves=30)
    resources = st.fixed_dictionaries({"resourceType": st.sampled_from(["Patient", "Observation", "Bundle"])},
                                      optional={k: values for k in ("contained", "extension", "entry", "name",
                                                                    "code", "text", "_birthDate", "valueQuantity")})

    @hypothesis.settings(max_examples=150, database=None, deadline=None)
    @hypothesis.given(resources)
    def check(resource):
        _assert_well_formed(validate_resource(resource))

    check()


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_r4_structure", ROOT / "scripts" / "gen_r4_structure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_structure_json_is_what_the_script_generates():
    pytest.importorskip("fhirclient.models.patient")
    pytest.importorskip("fhir.resources.R4B")
    generator = _load_generator()
    committed = (ROOT / "mockehr" / "fhir" / "r4_structure.json").read_bytes()
    assert generator.render(generator.build()) == committed, "run scripts/gen_r4_structure.py and commit the result"


def test_validation_imports_nothing_heavy():
    code = ("import sys, mockehr.fhir.validate as v; "
            "assert v.validate_resource({'resourceType': 'Patient', 'gender': 'other'}) == []; "
            "heavy = {m.split('.')[0] for m in sys.modules} & {'fhir', 'fhirclient', 'pydantic'}; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
