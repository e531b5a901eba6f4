"""Structure: ids, references, meta, every served type, nothing after the anchor."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from mockehr.synth.codes import DEFAULT_PROFILE, US_CORE_PROFILE
from tests.synth.helpers import patient_of, references

SERVED_TYPES = (
    "AllergyIntolerance", "CarePlan", "CareTeam", "Condition", "Coverage", "Device", "DiagnosticReport",
    "DocumentReference", "Encounter", "Goal", "Immunization", "Location", "Medication", "MedicationDispense",
    "MedicationRequest", "Observation", "Organization", "Patient", "Practitioner", "PractitionerRole", "Procedure",
    "Provenance", "QuestionnaireResponse", "RelatedPerson", "ServiceRequest", "Specimen", "Group",
)
ID = re.compile(r"^[a-z0-9-]{1,64}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z))?$")
DATE_KEYS = ("effectiveDateTime", "issued", "authoredOn", "recordedDate", "onsetDateTime", "abatementDateTime",
             "occurrenceDateTime", "whenHandedOver", "authored", "recorded", "date", "start", "end", "birthDate",
             "deceasedDateTime", "collectedDateTime", "receivedTime", "creation")


@pytest.mark.parametrize("dset", ["dataset", "larger_dataset"])
def test_every_reference_resolves(request, dset):
    ds = request.getfixturevalue(dset)
    known = {f"{r['resourceType']}/{r['id']}" for r in ds.resources}
    dangling = Counter(ref for r in ds.resources for ref in references(r) if ref not in known)
    assert not dangling


def test_ids_unique_short_and_sorted(dataset):
    keys = [(r["resourceType"], r["id"]) for r in dataset.resources]
    assert len(keys) == len(set(keys))
    assert keys == sorted(keys)
    assert all(ID.match(i) for _, i in keys)


def test_every_served_type_present(by_type):
    assert [t for t in SERVED_TYPES if not by_type.get(t)] == []


def test_meta_on_every_resource(dataset):
    for resource in dataset.resources:
        meta = resource["meta"]
        assert meta["versionId"] == "1" and meta["lastUpdated"] == f"{dataset.anchor}T00:00:00Z"
        if resource["resourceType"] in DEFAULT_PROFILE:
            assert len(meta["profile"]) == 1 and meta["profile"][0].startswith(US_CORE_PROFILE), resource["id"]


def test_patient_resources_carry_their_patients_id(dataset):
    for resource in dataset.resources:
        owner = patient_of(resource)
        if owner and resource["resourceType"] != "Patient":
            assert resource["id"].startswith(owner + "-"), resource["id"]


def _dates(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _dates(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _dates(item, key)
    elif key in DATE_KEYS and isinstance(node, str):
        yield node


def test_nothing_happens_after_the_anchor(dataset):
    """Everything is in the past, except what is planned: goal due dates and orders."""
    for resource in dataset.resources:
        if resource["resourceType"] in ("Goal", "ServiceRequest"):
            continue
        for stamp in _dates(resource):
            assert TIMESTAMP.match(stamp), (resource["id"], stamp)
            assert stamp[:10] < dataset.anchor, (resource["id"], stamp)


def test_periods_run_forwards(dataset):
    def periods(node):
        if isinstance(node, dict):
            if "start" in node and "end" in node:
                yield node
            for value in node.values():
                yield from periods(value)
        elif isinstance(node, list):
            for item in node:
                yield from periods(item)

    for resource in dataset.resources:
        for period in periods(resource):
            assert period["start"][:10] <= period["end"][:10], resource["id"]


def test_group_lists_every_patient(by_type):
    (group,) = by_type["Group"]
    members = [m["entity"]["reference"] for m in group["member"]]
    assert members == [f"Patient/{p['id']}" for p in by_type["Patient"]]
    assert group["type"] == "person" and group["actual"] is True and group["quantity"] == len(members)


def test_practitioners_have_valid_npis(by_type):
    def luhn_ok(number: str) -> bool:
        digits = [int(d) for d in "80840" + number]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
                    for i, d in enumerate(reversed(digits)))
        return total % 10 == 0

    npis = [i["value"] for p in by_type["Practitioner"] for i in p["identifier"]
            if i["system"] == "http://hl7.org/fhir/sid/us-npi"]
    assert len(npis) == len(by_type["Practitioner"]) >= 8
    assert all(len(n) == 10 and luhn_ok(n) for n in npis)
