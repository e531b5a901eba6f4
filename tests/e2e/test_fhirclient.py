"""The Python `fhirclient` library (strict R4 models) reads and searches our data."""

from __future__ import annotations

from itertools import islice

import pytest
import requests
from fhirclient import client
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

from mockehr.config import Settings
from mockehr.server import ServerThread


@pytest.fixture(scope="module")
def smart():
    """fhirclient completes a standalone launch (auto-approve) as it would against any SMART EHR."""
    with ServerThread(Settings(port=0, auto_approve=True)) as server:
        smart = client.FHIRClient(settings={
            "app_id": "fhirclient-test", "api_base": server.fhir_base,
            "redirect_uri": "http://localhost:8765/callback",
            "scope": "launch/patient openid fhirUser user/*.read offline_access"})
        answer = requests.get(smart.authorize_url, allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.text
        smart.handle_callback(answer.headers["Location"])
        assert smart.ready and smart.patient_id
        yield smart


def test_standalone_launch_gave_a_patient_and_a_user(smart):
    assert smart.patient.id == smart.patient_id
    assert smart.server.auth.access_token


def test_capability_statement_parses_with_fhirclient(smart):
    statement = smart.server.capabilityStatement
    assert isinstance(statement, CapabilityStatement)
    assert statement.fhirVersion == "4.0.1"
    types = {r.type for r in statement.rest[0].resource}
    assert {"Patient", "Observation", "Condition", "MedicationRequest"} <= types


def test_reads_and_searches_patients(smart):
    everyone = list(Patient.where(struct={"_count": "100"}).perform_resources_iter(smart.server))
    assert len(everyone) >= 20
    first = everyone[0]
    again = Patient.read(first.id, smart.server)
    assert again.id == first.id and again.name[0].family == first.name[0].family

    family = first.name[0].family
    found = list(Patient.where(struct={"family": family[:3].lower()}).perform_resources_iter(smart.server))
    assert first.id in {p.id for p in found}
    assert all(any(n.family and n.family.lower().startswith(family[:3].lower()) for n in p.name) for p in found)


def test_every_observation_of_a_patient_parses(smart):
    patients = list(Patient.where(struct={"_count": "100"}).perform_resources_iter(smart.server))
    seen = 0
    for patient in patients[:5]:
        for bundle in Observation.where(struct={"patient": patient.id, "_count": "200"}).perform_iter(smart.server):
            assert isinstance(bundle, Bundle)
            for entry in bundle.entry or []:
                assert entry.resource.subject.reference == f"Patient/{patient.id}"
                seen += 1
    assert seen > 0


def test_vital_signs_search_follows_paging(smart):
    search = Observation.where(struct={"category": "vital-signs", "_count": "20"})
    pages = list(islice(search.perform_iter(smart.server), 4))
    ids = [e.resource.id for page in pages for e in page.entry]
    assert len(pages) == 4 and len(ids) == len(set(ids)) == 80
    for page in pages:
        for entry in page.entry:
            codes = {c.code for cat in entry.resource.category for c in cat.coding}
            assert "vital-signs" in codes
