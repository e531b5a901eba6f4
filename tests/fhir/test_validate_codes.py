"""Required terminology bindings (mockehr.fhir.validate_codes): each bound element accepts
exactly its R4 value set, the table matches the models it was produced from, and nothing
valid (the examples of test_validate.py, the seed dataset) is rejected."""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import orjson
import pytest

from mockehr.fhir.validate import validate_resource
from mockehr.fhir.validate_codes import BINDINGS, ValueSet, code_problem
from tests.fhir.test_validate import VALID

ROOT = Path(__file__).resolve().parents[2]
STRUCTURE = json.loads((ROOT / "mockehr" / "fhir" / "r4_structure.json").read_text())["types"]
SERVED = ("AllergyIntolerance CarePlan CareTeam Condition Coverage Device DiagnosticReport DocumentReference "
          "Encounter Goal Group Immunization Location Medication MedicationDispense MedicationRequest Observation "
          "Organization Patient Practitioner PractitionerRole Procedure Provenance QuestionnaireResponse "
          "RelatedPerson ServiceRequest Specimen").split()

SUBJECT = {"reference": "Patient/p1"}
TEXT = {"text": "x"}
EXT = "http://example.org/ext"

# Where an object of each bound type can sit: a minimal valid resource, and the path to that object.
HOSTS: dict[str, tuple[dict, tuple]] = {
    "AllergyIntolerance": ({"resourceType": "AllergyIntolerance", "patient": SUBJECT}, ()),
    "AllergyIntoleranceReaction": ({"resourceType": "AllergyIntolerance", "patient": SUBJECT,
                                    "reaction": [{"manifestation": [TEXT]}]}, ("reaction", 0)),
    "CarePlan": ({"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": SUBJECT}, ()),
    "CarePlanActivityDetail": ({"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": SUBJECT,
                                "activity": [{"detail": {"status": "scheduled"}}]}, ("activity", 0, "detail")),
    "CareTeam": ({"resourceType": "CareTeam"}, ()),
    "Condition": ({"resourceType": "Condition", "subject": SUBJECT}, ()),
    "Coverage": ({"resourceType": "Coverage", "status": "active", "beneficiary": SUBJECT,
                  "payor": [{"reference": "Organization/o1"}]}, ()),
    "Device": ({"resourceType": "Device"}, ()),
    "DeviceDeviceName": ({"resourceType": "Device", "deviceName": [{"name": "Pump", "type": "other"}]},
                         ("deviceName", 0)),
    "DeviceUdiCarrier": ({"resourceType": "Device", "udiCarrier": [{"deviceIdentifier": "0123"}]}, ("udiCarrier", 0)),
    "DiagnosticReport": ({"resourceType": "DiagnosticReport", "status": "final", "code": TEXT}, ()),
    "DocumentReference": ({"resourceType": "DocumentReference", "status": "current",
                           "content": [{"attachment": {"contentType": "text/plain"}}]}, ()),
    "DocumentReferenceRelatesTo": ({"resourceType": "DocumentReference", "status": "current",
                                    "content": [{"attachment": {"contentType": "text/plain"}}],
                                    "relatesTo": [{"code": "replaces",
                                                   "target": {"reference": "DocumentReference/d0"}}]},
                                   ("relatesTo", 0)),
    "Encounter": ({"resourceType": "Encounter", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}, ()),
    "EncounterLocation": ({"resourceType": "Encounter", "status": "finished",
                           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                           "location": [{"location": {"reference": "Location/l1"}}]}, ("location", 0)),
    "EncounterStatusHistory": ({"resourceType": "Encounter", "status": "finished",
                                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                                "statusHistory": [{"status": "arrived", "period": {"start": "2024-01-01"}}]},
                               ("statusHistory", 0)),
    "Goal": ({"resourceType": "Goal", "lifecycleStatus": "active", "description": TEXT, "subject": SUBJECT}, ()),
    "Group": ({"resourceType": "Group", "type": "person", "actual": True}, ()),
    "Immunization": ({"resourceType": "Immunization", "status": "completed", "vaccineCode": TEXT, "patient": SUBJECT,
                      "occurrenceDateTime": "2024-01-01"}, ()),
    "Location": ({"resourceType": "Location"}, ()),
    "LocationHoursOfOperation": ({"resourceType": "Location", "hoursOfOperation": [{"allDay": True}]},
                                 ("hoursOfOperation", 0)),
    "Medication": ({"resourceType": "Medication"}, ()),
    "MedicationDispense": ({"resourceType": "MedicationDispense", "status": "completed",
                            "medicationCodeableConcept": TEXT}, ()),
    "MedicationRequest": ({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                           "medicationCodeableConcept": TEXT, "subject": SUBJECT}, ()),
    "Observation": ({"resourceType": "Observation", "status": "final", "code": TEXT}, ()),
    "Patient": ({"resourceType": "Patient"}, ()),
    "PatientContact": ({"resourceType": "Patient", "contact": [{"name": {"family": "Doe"}}]}, ("contact", 0)),
    "PatientLink": ({"resourceType": "Patient", "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}]},
                    ("link", 0)),
    "Practitioner": ({"resourceType": "Practitioner"}, ()),
    "PractitionerRoleAvailableTime": ({"resourceType": "PractitionerRole", "availableTime": [{"allDay": True}]},
                                      ("availableTime", 0)),
    "Procedure": ({"resourceType": "Procedure", "status": "completed", "subject": SUBJECT}, ()),
    "ProvenanceEntity": ({"resourceType": "Provenance", "target": [SUBJECT], "recorded": "2024-01-01T00:00:00Z",
                          "agent": [{"who": {"reference": "Practitioner/r1"}}],
                          "entity": [{"role": "source", "what": {"reference": "DocumentReference/d1"}}]},
                         ("entity", 0)),
    "QuestionnaireResponse": ({"resourceType": "QuestionnaireResponse", "status": "completed"}, ()),
    "RelatedPerson": ({"resourceType": "RelatedPerson", "patient": SUBJECT}, ()),
    "ServiceRequest": ({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": SUBJECT},
                       ()),
    "Specimen": ({"resourceType": "Specimen"}, ()),
    "Bundle": ({"resourceType": "Bundle", "type": "collection"}, ()),
    "BundleEntryRequest": ({"resourceType": "Bundle", "type": "batch",
                            "entry": [{"request": {"method": "GET", "url": "Patient"}}]}, ("entry", 0, "request")),
    "BundleEntrySearch": ({"resourceType": "Bundle", "type": "searchset",
                           "entry": [{"fullUrl": "http://x/Patient/1", "resource": {"resourceType": "Patient"},
                                      "search": {"score": 1}}]}, ("entry", 0, "search")),
    "Address": ({"resourceType": "Patient", "address": [{"city": "Town"}]}, ("address", 0)),
    "ContactPoint": ({"resourceType": "Patient", "telecom": [{"value": "555"}]}, ("telecom", 0)),
    "HumanName": ({"resourceType": "Patient", "name": [{"family": "Doe"}]}, ("name", 0)),
    "Identifier": ({"resourceType": "Patient", "identifier": [{"value": "1"}]}, ("identifier", 0)),
    "Narrative": ({"resourceType": "Patient", "text": {"status": "generated",
                                                       "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}},
                  ("text",)),
    "Quantity": ({"resourceType": "Observation", "status": "final", "code": TEXT, "valueQuantity": {"value": 1}},
                 ("valueQuantity",)),
    "Age": ({"resourceType": "Condition", "subject": SUBJECT, "onsetAge": {"value": 50}}, ("onsetAge",)),
    "Count": ({"resourceType": "Patient", "extension": [{"url": EXT, "valueCount": {"value": 1}}]},
              ("extension", 0, "valueCount")),
    "Distance": ({"resourceType": "Patient", "extension": [{"url": EXT, "valueDistance": {"value": 1}}]},
                 ("extension", 0, "valueDistance")),
    "Duration": ({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                  "medicationCodeableConcept": TEXT, "subject": SUBJECT,
                  "dispenseRequest": {"expectedSupplyDuration": {"value": 30}}},
                 ("dispenseRequest", "expectedSupplyDuration")),
    "TimingRepeat": ({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                      "medicationCodeableConcept": TEXT, "subject": SUBJECT,
                      "dosageInstruction": [{"timing": {"repeat": {"frequency": 1}}}]},
                     ("dosageInstruction", 0, "timing", "repeat")),
    "Contributor": ({"resourceType": "Patient", "extension": [{"url": EXT, "valueContributor": {"name": "A"}}]},
                    ("extension", 0, "valueContributor")),
    "DataRequirementSort": ({"resourceType": "Patient", "extension": [
        {"url": EXT, "valueDataRequirement": {"type": "Patient", "sort": [{"path": "birthDate"}]}}]},
        ("extension", 0, "valueDataRequirement", "sort", 0)),
    "ParameterDefinition": ({"resourceType": "Patient", "extension": [
        {"url": EXT, "valueParameterDefinition": {"type": "string"}}]}, ("extension", 0, "valueParameterDefinition")),
    "RelatedArtifact": ({"resourceType": "Patient", "extension": [
        {"url": EXT, "valueRelatedArtifact": {"label": "x"}}]}, ("extension", 0, "valueRelatedArtifact")),
    "TriggerDefinition": ({"resourceType": "Patient", "extension": [
        {"url": EXT, "valueTriggerDefinition": {"name": "x"}}]}, ("extension", 0, "valueTriggerDefinition")),
}

ENTRIES = [(t, el, vs) for t, elements in BINDINGS.items() for el, vs in elements.items()]
IDS = [f"{t}.{el}" for t, el, _ in ENTRIES]


def _is_list(tname: str, element: str) -> bool:
    return STRUCTURE[tname][element].get("list", False)


def _host(tname: str, element: str, value) -> tuple[dict, str]:
    """A copy of the host resource of `tname` with `element` set to `value`, and the element's path."""
    base, path = HOSTS[tname]
    resource = copy.deepcopy(base)
    node, expression = resource, resource["resourceType"]
    for step in path:
        node = node[step]
        expression += f"[{step}]" if isinstance(step, int) else f".{step}"
    node[element] = value
    return resource, f"{expression}.{element}"


def _wrap(vs: ValueSet, code, tname: str, element: str):
    """`code` in the JSON shape of the bound element."""
    if vs.system:
        value = {"coding": [{"system": vs.system, "code": code}]}
    else:
        value = code
    return [value] if _is_list(tname, element) else value


def _typo(vs: ValueSet) -> tuple[str, str]:
    """A code that is not in the set, and the member it is closest to."""
    for code in vs.codes:
        for wrong in (code[:-1], code + "x", code.upper(), code.lower(), "x" + code):
            if wrong and wrong not in vs.allowed and re.fullmatch(r"\S+", wrong):
                return wrong, code
    raise AssertionError(vs)


# --- every table entry: all its codes pass, an almost-code fails with a suggestion ---

@pytest.mark.parametrize("tname, element, vs", ENTRIES, ids=IDS)
def test_every_code_of_the_value_set_is_accepted(tname, element, vs):
    for code in vs.codes:
        resource, _ = _host(tname, element, _wrap(vs, code, tname, element))
        assert validate_resource(resource) == [], (code, validate_resource(resource))
    if _is_list(tname, element) and not vs.system:  # and all of them at once
        resource, _ = _host(tname, element, list(vs.codes))
        assert validate_resource(resource) == []


@pytest.mark.parametrize("tname, element, vs", ENTRIES, ids=IDS)
def test_a_code_outside_the_value_set_is_rejected(tname, element, vs):
    wrong, near = _typo(vs)
    resource, expression = _host(tname, element, _wrap(vs, wrong, tname, element))
    if _is_list(tname, element):
        expression += "[0]"
    if vs.system:
        expression += ".coding[0].code"
    issues = validate_resource(resource)
    assert [(i.severity, i.code, i.expression) for i in issues] == [("error", "code-invalid", expression)], issues
    message = issues[0].message
    assert message.startswith(f"{expression}: {wrong!r} is not in the required value set {vs.name} (")
    assert f"({', '.join(vs.codes)})" in message
    assert message.endswith(f"; did you mean '{near}'?")


def test_message_of_the_brief():
    issues = validate_resource({"resourceType": "Patient", "gender": "femal"})
    assert [(i.code, i.expression, i.message) for i in issues] == [(
        "code-invalid", "Patient.gender",
        "Patient.gender: 'femal' is not in the required value set administrative-gender "
        "(male, female, other, unknown); did you mean 'female'?")]
    observation = {"resourceType": "Observation", "status": "Final", "code": TEXT}
    assert [i.message.split("; ")[-1] for i in validate_resource(observation)] == ["did you mean 'final'?"]
    assert "did you mean" not in validate_resource({"resourceType": "Patient", "gender": "zzz"})[0].message


# --- details of where bindings apply ---

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


@pytest.mark.parametrize("clinical_status", [
    {"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]},  # another system: not bound
    {"coding": [{"code": "anything"}]},  # no system
    {"coding": [{"system": CLINICAL}]},  # no code
    {"text": "Active"},
    {"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}, {"system": CLINICAL, "code": "active"}]},
], ids=["other-system", "no-system", "no-code", "text-only", "mixed"])
def test_codeable_concept_codings_of_other_systems_pass(clinical_status):
    assert validate_resource({"resourceType": "Condition", "subject": SUBJECT, "clinicalStatus": clinical_status}) == []


def test_each_bad_coding_is_reported_once():
    condition = {"resourceType": "Condition", "subject": SUBJECT, "clinicalStatus": {"coding": [
        {"system": CLINICAL, "code": "active"}, {"system": CLINICAL, "code": "gone"},
        {"system": CLINICAL, "code": " active"}]}}  # a bad code string: reported as such, not twice
    issues = validate_resource(condition)
    assert [(i.code, i.expression) for i in issues] == [
        ("value", "Condition.clinicalStatus.coding[2].code"),
        ("code-invalid", "Condition.clinicalStatus.coding[1].code")]


def test_list_elements_report_each_bad_item():
    resource, _ = _host("TimingRepeat", "when", ["AC", "ac", "PCV", "BEDTIME"])
    issues = validate_resource(resource)
    assert [i.expression.rsplit(".", 1)[-1] for i in issues] == ["when[1]", "when[3]"]
    assert issues[0].message.endswith("did you mean 'AC'?")


def test_bad_code_strings_are_not_reported_twice():
    for value, code in (("", "value"), (" female", "value"), ("fe  male", "value"), (5, "value"),
                        (["female"], "structure"), ({"value": "female"}, "value")):
        issues = validate_resource({"resourceType": "Patient", "gender": value})
        assert [i.code for i in issues] == [code], (value, issues)


def test_value_given_only_as_an_extension_passes():
    absent = [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]
    resource = {"resourceType": "Patient", "_gender": {"extension": absent}}
    assert validate_resource(resource) == []
    resource, _ = _host("LocationHoursOfOperation", "daysOfWeek", ["mon", None])
    resource["hoursOfOperation"][0]["_daysOfWeek"] = [None, {"extension": absent}]
    assert validate_resource(resource) == []


def test_bindings_apply_in_contained_and_bundled_resources():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
         "resource": {"resourceType": "Patient", "gender": "Female",
                      "contained": [{"resourceType": "Practitioner", "id": "x", "gender": "MALE"}]}}]}
    issues = validate_resource(bundle)
    assert [i.expression for i in issues] == ["Bundle.entry[0].resource.gender",
                                              "Bundle.entry[0].resource.contained[0].gender"]
    assert [i.message.rsplit("; ", 1)[-1] for i in issues] == ["did you mean 'female'?", "did you mean 'male'?"]


def test_r4_only_codes():
    """Codes later versions added are not R4: the server speaks 4.0.1."""
    for tname, element, code in (("Bundle", "type", "subscription-notification"),  # R4B
                                 ("Quantity", "comparator", "ad"),  # R5
                                 ("TimingRepeat", "when", "IMD"),  # R5
                                 ("DeviceUdiCarrier", "entryType", "electronic-transmission"),  # R5
                                 ("ProvenanceEntity", "role", "instantiates")):  # R5
        vs = BINDINGS[tname][element]
        resource, _ = _host(tname, element, _wrap(vs, code, tname, element))
        assert [i.code for i in validate_resource(resource)] == ["code-invalid"], code
    vs = BINDINGS["AllergyIntolerance"]["verificationStatus"]  # R5 adds "presumed"
    resource, _ = _host("AllergyIntolerance", "verificationStatus",
                        _wrap(vs, "presumed", "AllergyIntolerance", "verificationStatus"))
    assert [i.code for i in validate_resource(resource)] == ["code-invalid"]


def test_code_problem_never_raises():
    vs = BINDINGS["Patient"]["gender"]
    for value in (None, 5, 1.5, [], {}, b"male", object(), "male"):
        assert code_problem(vs, value) is None
    long = "f" * 10_000
    assert code_problem(vs, long).endswith("(male, female, other, unknown)")


@pytest.mark.parametrize("name", VALID)
def test_valid_examples_of_test_validate_still_pass(name):
    assert validate_resource(copy.deepcopy(VALID[name])) == []


# --- the table itself ---

def test_table_names_real_elements_of_the_right_type():
    assert set(HOSTS) == set(BINDINGS)
    for tname, element, vs in ENTRIES:
        assert element in STRUCTURE[tname], (tname, element)
        etype = STRUCTURE[tname][element]["type"]
        assert etype == ("CodeableConcept" if vs.system else "code"), (tname, element, etype)
        assert len(vs.allowed) == len(vs.codes) > 1, vs
        assert all(re.fullmatch(r"[^\s]+", c) for c in vs.codes), vs


def _reachable(roots) -> list[str]:
    seen, stack = [], list(roots)
    while stack:
        tname = stack.pop()
        if tname in seen or tname not in STRUCTURE:
            continue
        seen.append(tname)
        stack.extend(el["type"] for el in STRUCTURE[tname].values() if el["type"][:1].isupper())
    return seen


# Code elements reachable from the served resources that are deliberately not enforced.
NOT_ENFORCED = {
    "language": "Resource/Attachment/Expression.language: preferred / extensible binding",
    "Attachment.contentType": "mimetypes: required but not enumerable (BCP 13)",
    "Signature.sigFormat": "mimetypes: required but not enumerable (BCP 13)",
    "Signature.targetFormat": "mimetypes: required but not enumerable (BCP 13)",
    "Money.currency": "currencies (ISO 4217): required, ~180 codes, left out",
    "DataRequirement.type": "all-types (FHIRAllTypes): required, left out",
    "ParameterDefinition.type": "all-types (FHIRAllTypes): required, left out",
    "ParameterDefinition.name": "a code without binding",
    "Coding.code": "no binding", "Quantity.code": "no binding", "Age.code": "no binding",
    "Count.code": "no binding", "Distance.code": "no binding", "Duration.code": "no binding",
    "Extension.valueCode": "no binding",
}


def test_every_reachable_code_element_is_bound_or_deliberately_not():
    missing = []
    for tname in _reachable(SERVED + ["Bundle"]):
        for element, spec in STRUCTURE[tname].items():
            if spec["type"] != "code" or element in BINDINGS.get(tname, {}):
                continue
            if element != "language" and f"{tname}.{element}" not in NOT_ENFORCED:
                missing.append(f"{tname}.{element}")
    assert missing == []


@functools.cache
def _fhirclient_classes() -> dict[str, type]:
    import fhirclient.models as models

    found = {}
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"fhirclient.models.{info.name}")
        found.update((n, c) for n, c in vars(module).items() if inspect.isclass(c) and c.__module__ == module.__name__)
    return found


def _r4_short(tname: str, element: str) -> list[str] | None:
    """The R4 short description of the element as fhirclient has it, split at '|'."""
    pattern = re.compile(r"self\.%s = None\s*\"\"\"(.*?)\"\"\"" % re.escape(element), re.S)
    for cls in _fhirclient_classes()[tname].__mro__:  # Age, Count, ... inherit Quantity's elements
        match = pattern.search(inspect.getsource(cls.__init__)) if "__init__" in vars(cls) else None
        if match:
            break
    else:
        raise AssertionError(f"{tname}.{element} not in fhirclient")
    text = re.sub(r"(?<=\w)-\s+", "-", " ".join(match.group(1).split()))  # words cut at a hyphen by wrapping
    text = re.split(r" - | \(|\. (?:Type|List of) ", text)[0]
    return [c.strip() for c in text.split("|")] if "|" in text else None


HAND_COMPLETED = {"event-timing"}  # R4 short: "Code for time period of occurrence"


@pytest.mark.parametrize("tname, element, vs", ENTRIES, ids=IDS)
def test_table_matches_the_r4_short_descriptions(tname, element, vs):
    pytest.importorskip("fhirclient.models.patient")
    short = _r4_short(tname, element)
    if short is None:
        assert vs.name in HAND_COMPLETED, "no pipe list in R4: add to HAND_COMPLETED once checked"
    elif short[-1].endswith("+"):  # "a | b | c +": the first codes only
        listed = short[:-1] + [short[-1].removesuffix("+").strip()]
        assert list(vs.codes[:len(listed)]) == listed
    else:
        assert list(vs.codes) == short


R4B_DIFFERENCES: dict[tuple[str, str], set] = {}  # none among these (R4B's Bundle.type enum lacks its new code too)


@pytest.mark.parametrize("tname, element, vs", ENTRIES, ids=IDS)
def test_table_matches_fhir_resources_r4b(tname, element, vs):
    r4b = pytest.importorskip("fhir.resources.R4B")
    try:
        cls = r4b.get_fhir_model_class(tname)
    except (KeyError, ValueError):
        pytest.skip(f"no R4B class {tname}")
    field = next(f for f in cls.model_fields.values() if f.alias == element)
    enum = (field.json_schema_extra or {}).get("enum_values")
    if enum is None:  # none on CodeableConcepts, nor for non-word codes ("< | <= | >= | >")
        assert vs.system or vs.name in HAND_COMPLETED | {"quantity-comparator"}
    elif enum[-1] == "+":
        assert set(enum[:-1]) <= vs.allowed
    else:
        assert set(enum) ^ vs.allowed == R4B_DIFFERENCES.get((tname, element), set())


# --- the default synthetic dataset ---

def test_seed_data_validates():
    files = sorted((ROOT / "seed_data").glob("*.ndjson"))
    if not files:
        pytest.skip("no seed_data/*.ndjson")
    failures, count = [], 0
    for file in files:
        for number, line in enumerate(file.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            count += 1
            resource = orjson.loads(line)
            issues = [i for i in validate_resource(resource) if i.severity == "error"]
            if issues and len(failures) < 20:
                failures.append((file.name, number, resource.get("id"), [i.message for i in issues[:3]]))
    assert count and not failures, failures
