"""A small hand-written dataset and a real mockehr server on 127.0.0.1 serving it.

The dataset is exact on purpose: every search assertion in tests/fhir names
the ids it expects. The server is session-scoped (one per test run); the `api`
fixture resets the store after each test, so writes never leak between tests.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.helpers import system_token

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
MRN = "http://hospital.example/mrn"
SSN = "http://hl7.org/fhir/sid/us-ssn"
NPI = "http://hl7.org/fhir/sid/us-npi"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
COND_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
US_CORE_LAB = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"
US_CORE_PATIENT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
SEED_TIME = "2024-01-01T00:00:00Z"


def _meta(updated: str = SEED_TIME, profile: str | None = None) -> dict:
    meta = {"versionId": "1", "lastUpdated": updated}
    if profile:
        meta["profile"] = [profile]
    return meta


def _category(code: str, system: str = OBS_CAT, text: str | None = None) -> list[dict]:
    concept: dict = {"coding": [{"system": system, "code": code}]}
    if text:
        concept["text"] = text
    return [concept]


def _code(system: str, code: str, display: str, text: str | None = None) -> dict:
    concept: dict = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        concept["text"] = text
    return concept


def _qty(value: float, unit: str, code: str | None = None) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


PATIENTS = [
    {"resourceType": "Patient", "id": "pat-1", "meta": _meta("2024-01-02T00:00:00Z", US_CORE_PATIENT),
     "identifier": [{"system": MRN, "value": "MRN001"}, {"system": SSN, "value": "999-11-0001"}],
     "active": True,
     "name": [{"use": "official", "family": "Müller", "given": ["Zoë", "Anne"]}],
     "telecom": [{"system": "phone", "value": "555-0101"}, {"system": "email", "value": "zoe@example.org"}],
     "gender": "female", "birthDate": "1980-05-17",
     "address": [{"line": ["1 Main St"], "city": "Boston", "state": "MA", "postalCode": "02101"}],
     "generalPractitioner": [{"reference": "Practitioner/prac-1"}],
     "managingOrganization": {"reference": "Organization/org-1"}},
    {"resourceType": "Patient", "id": "pat-2", "meta": _meta("2024-01-03T00:00:00Z"),
     "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">John Smith</div>'},
     "identifier": [{"system": MRN, "value": "MRN002"}],
     "active": False,
     "name": [{"family": "Smith", "given": ["John"]}],
     "gender": "male", "birthDate": "1975-12-01",
     "address": [{"city": "Cambridge", "state": "MA"}]},
    {"resourceType": "Patient", "id": "pat-3", "meta": _meta("2024-01-04T00:00:00Z"),
     "identifier": [{"system": MRN, "value": "MRN003"}],
     "name": [{"family": "Smithson", "given": ["Jane"]}],
     "gender": "female", "birthDate": "2001-01-30"},
    {"resourceType": "Patient", "id": "pat-4", "meta": _meta("2024-01-05T00:00:00Z"),
     "identifier": [{"system": "http://other.example/ids", "value": "MRN001"}],
     "active": True,
     "name": [{"family": "García", "given": ["José"]}],
     "gender": "male", "birthDate": "1980-11-02",
     "address": [{"city": "Boston", "state": "MA"}]},
    {"resourceType": "Patient", "id": "pat-5", "meta": _meta("2024-01-06T00:00:00Z"),
     "name": [{"family": "Nobody", "given": ["Nemo"]}],
     "gender": "unknown"},
]

OBSERVATIONS = [
    {"resourceType": "Observation", "id": "obs-1", "meta": _meta(), "status": "final",
     "category": _category("vital-signs"), "code": _code(LOINC, "8867-4", "Heart rate"),
     "subject": {"reference": "Patient/pat-1"}, "encounter": {"reference": "Encounter/enc-1"},
     "effectiveDateTime": "2023-01-15T10:30:00Z", "valueQuantity": _qty(72, "/min"),
     "performer": [{"reference": "Practitioner/prac-1"}]},
    {"resourceType": "Observation", "id": "obs-2", "meta": _meta(), "status": "final",
     "category": _category("vital-signs"), "code": _code(LOINC, "85354-9", "Blood pressure panel"),
     "subject": {"reference": "Patient/pat-1"}, "encounter": {"reference": "Encounter/enc-1"},
     "effectiveDateTime": "2023-02-20T08:00:00+02:00",
     "component": [
         {"code": _code(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": _qty(120, "mm[Hg]")},
         {"code": _code(LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity": _qty(80, "mm[Hg]")},
     ]},
    {"resourceType": "Observation", "id": "obs-3", "meta": _meta(profile=US_CORE_LAB), "status": "preliminary",
     "category": _category("laboratory"), "code": _code(LOINC, "2339-0", "Glucose"),
     "subject": {"reference": "Patient/pat-2"}, "effectiveDateTime": "2022-12-31",
     "valueQuantity": _qty(5.4, "mmol/L")},
    {"resourceType": "Observation", "id": "obs-4", "meta": _meta(), "status": "amended",
     "category": _category("vital-signs"), "code": _code(LOINC, "29463-7", "Body weight"),
     "subject": {"reference": "Patient/pat-2"},
     "effectivePeriod": {"start": "2023-03-01T00:00:00Z", "end": "2023-03-05T00:00:00Z"},
     "valueQuantity": _qty(70.5, "kg")},
    {"resourceType": "Observation", "id": "obs-5", "meta": _meta(), "status": "final",
     "category": _category("social-history", text="Social History"),
     "code": _code(LOINC, "72166-2", "Tobacco smoking status", text="Tobacco smoking status"),
     "subject": {"reference": "Patient/pat-1"},
     "valueCodeableConcept": _code(SNOMED, "266919005", "Never smoker")},
    {"resourceType": "Observation", "id": "obs-6", "meta": _meta(profile=US_CORE_LAB), "status": "final",
     "category": _category("laboratory"), "code": _code(LOINC, "2339-0", "Glucose"),
     "subject": {"reference": "Patient/pat-3"}, "effectiveDateTime": "2023",
     "valueQuantity": _qty(100, "mg/dL")},
]

OTHERS = [
    {"resourceType": "Practitioner", "id": "prac-1", "meta": _meta(),
     "identifier": [{"system": NPI, "value": "1234567893"}],
     "name": [{"family": "House", "given": ["Gregory"], "prefix": ["Dr."]}], "gender": "male"},
    {"resourceType": "Organization", "id": "org-1", "meta": _meta("2024-01-01T00:00:00.750Z"), "active": True,
     "name": "General Hospital", "address": [{"city": "Boston"}]},
    {"resourceType": "Encounter", "id": "enc-1", "meta": _meta(), "status": "finished",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
     "subject": {"reference": "Patient/pat-1"},
     "participant": [{"individual": {"reference": "Practitioner/prac-1"}}],
     "period": {"start": "2023-01-15T10:00:00Z", "end": "2023-01-15T11:00:00Z"},
     "serviceProvider": {"reference": "Organization/org-1"}},
    {"resourceType": "Encounter", "id": "enc-2", "meta": _meta(), "status": "finished",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
     "subject": {"reference": "Patient/pat-2"},
     "period": {"start": "2022-06-01", "end": "2022-06-03"}},
    {"resourceType": "Condition", "id": "cond-1", "meta": _meta(),
     "clinicalStatus": _code(COND_CLIN, "active", "Active"),
     "category": _category("problem-list-item", COND_CAT),
     "code": _code(SNOMED, "38341003", "Hypertension"),
     "subject": {"reference": "Patient/pat-1"}, "onsetDateTime": "2019-06"},
    {"resourceType": "Condition", "id": "cond-2", "meta": _meta(),
     "clinicalStatus": _code(COND_CLIN, "resolved", "Resolved"),
     "category": _category("encounter-diagnosis", COND_CAT),
     "code": _code(SNOMED, "44054006", "Diabetes mellitus type 2"),
     "subject": {"reference": "Patient/pat-2"}, "encounter": {"reference": "Encounter/enc-2"}},
    {"resourceType": "Medication", "id": "med-1", "meta": _meta("2023-12-31T23:30:00-01:00"),
     "code": _code(RXNORM, "860975", "metformin 500 MG Oral Tablet")},
    {"resourceType": "MedicationRequest", "id": "mr-1", "meta": _meta(), "status": "active", "intent": "order",
     "medicationReference": {"reference": "Medication/med-1"},
     "subject": {"reference": "Patient/pat-1"}, "authoredOn": "2023-01-15",
     "requester": {"reference": "Practitioner/prac-1"}},
    {"resourceType": "Provenance", "id": "prov-1", "meta": _meta(),
     "target": [{"reference": "Observation/obs-1"}], "recorded": "2023-01-15T10:31:00Z",
     "agent": [{"who": {"reference": "Practitioner/prac-1"}}]},
]

RESOURCES = PATIENTS + OBSERVATIONS + OTHERS


def write_dataset(directory: Path, resources: list[dict] = RESOURCES) -> Path:
    """NDJSON per type, as `mockehr seed` writes it."""
    directory.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[bytes]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for rtype, lines in by_type.items():
        (directory / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return directory


def ids(bundle: dict, mode: str = "match") -> list[str]:
    """The ids of a searchset's entries of one search mode, in order."""
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def typed_ids(bundle: dict, mode: str | None = None) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if mode is None or e.get("search", {}).get("mode") == mode]


def link(bundle: dict, relation: str) -> str | None:
    return next((entry["url"] for entry in bundle.get("link", []) if entry["relation"] == relation), None)


def diagnostics(body: dict) -> str:
    assert body["resourceType"] == "OperationOutcome", body
    return " | ".join(issue.get("diagnostics", "") for issue in body["issue"])


class Client:
    """requests against the FHIR base, with the base URL filled in."""

    def __init__(self, base: str, app, token: str):
        self.base = base
        self.app = app
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def new_session(self) -> requests.Session:
        """Another keep-alive session with the same token (one per thread)."""
        session = requests.Session()
        session.headers["Authorization"] = self.session.headers["Authorization"]
        return session

    @property
    def store(self):
        return self.app.extensions["mockehr.store"]

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def search(self, path: str, params=None, **kwargs) -> dict:
        response = self.get(path, params=params, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
        return body

    def close(self) -> None:
        self.session.close()


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"))


@pytest.fixture(scope="session")
def server(dataset_dir):
    with ServerThread(Settings(port=0, dataset_dir=dataset_dir)) as running:
        yield running


@pytest.fixture(scope="session")
def token(server) -> str:
    return system_token(server.url)


@pytest.fixture
def api(server, token):
    client = Client(server.fhir_base, server.app, token)
    client.store.reset()
    yield client
    client.close()
    client.store.reset()
