"""Real mockehr servers for the Bulk Data export tests, and a bulk client that checks what it is given.

The servers serve a small, exact dataset (tests/auth's patients pat-a, pat-b, pat-c and their
encounters and observations, plus two Groups, a Medication, a MedicationRequest and an
Organization nobody references), so every assertion can name ids. `BulkEhr` adds to the fault
tests' client (control API, minted tokens) the bulk side: backend-service tokens (RS384 client
assertions), kick-off, polling, downloads; every answer it receives is checked against the
Bulk Data IG on the way (status codes, headers, absolute URLs, NDJSON shape).
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import requests

from tests.auth.conftest import RESOURCES, _meta, rsa_key, start
from tests.faults.conftest import FaultEhr

NDJSON = "application/fhir+ndjson"
KICKOFF_HEADERS = {"Accept": "application/fhir+json", "Prefer": "respond-async"}

EXTRA = [
    {"resourceType": "Group", "id": "grp-ab", "meta": _meta(), "type": "person", "actual": True,
     "name": "Patients A and B", "member": [{"entity": {"reference": "Patient/pat-a"}},
                                             {"entity": {"reference": "Patient/pat-b"}}]},
    {"resourceType": "Group", "id": "grp-c", "meta": _meta(), "type": "person", "actual": True,
     "member": [{"entity": {"reference": "Patient/pat-c"}},
                {"entity": {"reference": "Patient/pat-a"}, "inactive": True}]},
    {"resourceType": "Medication", "id": "med-1", "meta": _meta(),
     "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}]}},
    {"resourceType": "MedicationRequest", "id": "mr-a", "meta": _meta(), "status": "active", "intent": "order",
     "medicationReference": {"reference": "Medication/med-1"}, "subject": {"reference": "Patient/pat-a"},
     "requester": {"reference": "Practitioner/prac-1"}},
    {"resourceType": "Organization", "id": "org-1", "meta": _meta(), "name": "Nobody's clinic"},
]
DATASET = RESOURCES + EXTRA
IDS = {}
for _resource in DATASET:
    IDS.setdefault(_resource["resourceType"], set()).add(_resource["id"])


@pytest.fixture(scope="session")
def bulk_dataset(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("bulk-dataset")
    by_type: dict[str, list[bytes]] = {}
    for resource in DATASET:
        by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for rtype, lines in by_type.items():
        (directory / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return directory


class BulkEhr(FaultEhr):
    """A running mockehr, its control API, and a Bulk Data client for it."""

    # -- tokens ------------------------------------------------------------------------------
    def backend(self, scope: str = "system/*.rs") -> tuple[str, str]:
        """(client_id, access token) of a newly registered private_key_jwt client (RS384 assertion)."""
        key = rsa_key("RS384")
        client = self.backend_client(key)
        answer = self.client_credentials(client["client_id"], key, scope)
        body, _, _ = self.check_token_response(answer, client["client_id"], id_token_expected=False)
        return client["client_id"], body["access_token"]

    def bulk_token(self, scope: str = "system/*.rs") -> str:
        return self.backend(scope)[1]

    # -- kick-off ----------------------------------------------------------------------------
    def kickoff_raw(self, path: str, token: str | None, params=None, headers: dict | None = None,
                    method: str = "GET", json: dict | None = None) -> requests.Response:
        sent = dict(KICKOFF_HEADERS if headers is None else headers)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if json is not None:
            sent["Content-Type"] = "application/fhir+json"
        return self.http.request(method, f"{self.fhir_base}/{path}", params=params, headers=sent,
                                 data=orjson.dumps(json) if json is not None else None, timeout=30)

    def kickoff(self, path: str, token: str, params=None, **kwargs) -> str:
        """A kick-off that must be accepted: 202, an absolute Content-Location; answers that URL."""
        answer = self.kickoff_raw(path, token, params, **kwargs)
        assert answer.status_code == 202, answer.text
        location = answer.headers["Content-Location"]
        assert location.startswith(self.fhir_base + "/$export-status/"), location
        if answer.content:
            assert answer.json()["resourceType"] == "OperationOutcome"
        return location

    # -- status ------------------------------------------------------------------------------
    def poll(self, status_url: str, token: str | None) -> requests.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.get(status_url, headers=headers, timeout=30)

    def wait(self, status_url: str, token: str, *, honour_retry_after: bool = False,
             timeout: float = 30) -> requests.Response:
        """Poll until the export is no longer running; every 202 on the way must carry X-Progress
        and Retry-After. Sleeps Retry-After seconds between polls when asked to, else 20 ms."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.poll(status_url, token)
            if answer.status_code != 202:
                return answer
            check_in_progress(answer)
            assert time.monotonic() < deadline, f"export still running after {timeout} s"
            time.sleep(int(answer.headers["Retry-After"]) if honour_retry_after else 0.02)

    def manifest(self, status_url: str, token: str) -> dict:
        answer = self.wait(status_url, token)
        return check_manifest(answer, self)

    def export(self, path: str, token: str, params=None, **kwargs) -> dict:
        """Kick-off, wait, the checked manifest."""
        return self.manifest(self.kickoff(path, token, params, **kwargs), token)

    # -- files ---------------------------------------------------------------------------------
    def download(self, url: str, token: str | None) -> requests.Response:
        headers = {"Accept": NDJSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.get(url, headers=headers, timeout=30)

    def lines(self, url: str, token: str) -> list[dict]:
        answer = self.download(url, token)
        assert answer.status_code == 200, answer.text
        return check_ndjson(answer)

    def exported(self, manifest: dict, token: str) -> dict[str, list[dict]]:
        """Every output file's resources by type, each file checked against its manifest entry."""
        found: dict[str, list[dict]] = {}
        for entry in manifest["output"]:
            resources = self.lines(entry["url"], token)
            assert len(resources) == entry["count"], entry
            assert {r["resourceType"] for r in resources} == {entry["type"]}, entry
            found.setdefault(entry["type"], []).extend(resources)
        return found

    def exported_ids(self, manifest: dict, token: str) -> dict[str, set[str]]:
        return {t: {r["id"] for r in rs} for t, rs in self.exported(manifest, token).items()}

    def errors(self, manifest: dict, token: str) -> list[dict]:
        found = []
        for entry in manifest["error"]:
            assert entry["type"] == "OperationOutcome", entry
            found += self.lines(entry["url"], token)
        assert all(o["resourceType"] == "OperationOutcome" for o in found)
        return found

    @property
    def exports(self):
        """The app's export jobs (white-box: file limits, what is on disk)."""
        return self.server.app.extensions["mockehr.bulk"]


# -- the IG's checks, reused by every test ----------------------------------------------------------

def check_outcome(answer: requests.Response, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, f"{answer.status_code}: {answer.text[:500]}"
    assert answer.headers["Content-Type"].startswith("application/fhir+json"), answer.headers
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and body["issue"][0]["diagnostics"], body
    if code:
        assert body["issue"][0]["code"] == code, body
    return body


def check_in_progress(answer: requests.Response) -> None:
    assert answer.status_code == 202
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
    progress = answer.headers["X-Progress"]
    assert progress and len(progress) < 100, progress
    assert int(answer.headers["Retry-After"]) >= 1


def check_manifest(answer: requests.Response, ehr: BulkEhr) -> dict:
    assert answer.status_code == 200, f"{answer.status_code}: {answer.text[:500]}"
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
    assert answer.headers["Expires"].endswith(" GMT"), answer.headers
    body = answer.json()
    for key in ("transactionTime", "request", "requiresAccessToken", "output", "error"):
        assert key in body, f"manifest without {key}: {body}"
    assert body["requiresAccessToken"] is True
    assert body["request"].startswith(ehr.fhir_base + "/"), body["request"]
    assert body["transactionTime"].endswith("Z") and "T" in body["transactionTime"]
    for entry in body["output"] + body["error"]:
        assert set(entry) >= {"type", "url", "count"}, entry
        assert type(entry["count"]) is int and entry["count"] > 0, entry
        parts = urlsplit(entry["url"])
        assert parts.scheme == "http" and entry["url"].startswith(ehr.fhir_base + "/$export-files/"), entry
    return body


def check_ndjson(answer: requests.Response) -> list[dict]:
    assert answer.headers["Content-Type"].startswith(NDJSON), answer.headers
    raw = answer.content
    assert raw.endswith(b"\n") and int(answer.headers["Content-Length"]) == len(raw)
    lines = raw.split(b"\n")[:-1]
    assert lines and all(line.strip() for line in lines), "NDJSON with a blank line"
    return [orjson.loads(line) for line in lines]


def start_bulk(dataset: Path, **settings) -> BulkEhr:
    ehr = BulkEhr(start(dataset, auto_approve=True, **settings))
    assert ehr.smart["jwks_uri"]  # discovery cached before any fault could touch /fhir/*
    return ehr


def stop_bulk(ehr: BulkEhr) -> None:
    ehr.http.close()
    ehr.server.stop()


@pytest.fixture(scope="module")
def ehr(bulk_dataset):
    """No delay, no faults at start; faults added at run time are cleared after each test."""
    ehr = start_bulk(bulk_dataset)
    yield ehr
    stop_bulk(ehr)


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    if "ehr" not in request.fixturenames:
        yield
        return
    ehr: BulkEhr = request.getfixturevalue("ehr")
    ehr.clear_faults()
    yield
    ehr.clear_faults()


@pytest.fixture
def token(ehr) -> str:
    """A system/*.rs token of a fresh backend client (RS384 private_key_jwt)."""
    return ehr.bulk_token()


@pytest.fixture
def writes(ehr):
    """For tests that write FHIR data: the store goes back to the seed afterwards."""
    yield
    ehr.server.app.extensions["mockehr.store"].reset()
