"""Real clients survive the faults: a requests app with urllib3 retries, and Python `fhirclient`.

What an app developer wants to rehearse: a 429 with Retry-After and a 503 are
retried and the read succeeds; an access token that lives one second expires and
the app gets a new one with the SMART refresh grant, then reads again.
"""

from __future__ import annotations

import time

import pytest
import requests
from fhirclient import client as fhir_client
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRUnauthorizedException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tests.auth.conftest import REDIRECT
from tests.faults.conftest import SCOPE, FaultEhr, wait_for_second_start


def retrying_session() -> requests.Session:
    retry = Retry(total=5, status_forcelist=[429, 503], respect_retry_after_header=True, backoff_factor=0.1,
                  allowed_methods=None)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def retried_statuses(answer: requests.Response) -> list[int]:
    """The statuses urllib3 retried on before this answer."""
    return [entry.status for entry in answer.raw.retries.history]


# ---- a requests app with urllib3 Retry ----------------------------------------------------------

def test_retry_reads_through_throttling(ehr):
    token = ehr.token_for()
    since = ehr.last_event_id()
    fault = ehr.add_fault("throttle:every=2,retry_after=1")
    with retrying_session() as session:
        first = ehr.read(token, "Patient/pat-a", session=session)
        assert first.status_code == 200 and retried_statuses(first) == []
        started = time.perf_counter()
        second = ehr.read(token, "Patient/pat-a", session=session)  # the 2nd request is throttled
        waited = time.perf_counter() - started
    assert second.status_code == 200 and second.json()["id"] == "pat-a"
    assert retried_statuses(second) == [429]
    assert waited >= 1.0  # Retry-After: 1 was honoured
    assert len(ehr.fired(since, fault["id"])) == 1
    # the fault is real: a client without retries sees it (requests 1 and 3 passed, 2 was throttled)
    assert ehr.read(token, "Patient/pat-a").status_code == 429  # 4th
    assert ehr.read(token, "Patient/pat-a").status_code == 200  # 5th


def test_retry_reads_through_two_503s(ehr):
    token = ehr.token_for()
    fault = ehr.add_fault("error:status=503,count=2")
    with retrying_session() as session:
        answer = ehr.read(token, "Patient/pat-b", session=session)
    assert answer.status_code == 200 and answer.json()["id"] == "pat-b"
    assert retried_statuses(answer) == [503, 503]
    assert ehr.fault(fault["id"])["spent"]


def test_retry_reads_through_throttling_and_503s_together(ehr):
    token = ehr.token_for()
    ehr.add_fault("error:status=503,count=2")
    ehr.add_fault("throttle:every=2,retry_after=0")
    with retrying_session() as session:
        answers = [ehr.read(token, f"Patient/{pid}", session=session) for pid in ("pat-a", "pat-b", "pat-c")]
    assert [a.json()["id"] for a in answers] == ["pat-a", "pat-b", "pat-c"]
    assert sum(len(retried_statuses(a)) for a in answers) >= 3


def test_retry_gets_a_token_through_a_throttled_token_endpoint(ehr):
    client = ehr.service_client()
    ehr.add_fault("throttle:path=/auth/token,count=1,retry_after=0")
    with retrying_session() as session:  # allowed_methods=None: POST is retried too
        answer = session.post(ehr.token_endpoint, data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                              auth=(client["client_id"], client["client_secret"]), timeout=30)
    assert answer.status_code == 200 and retried_statuses(answer) == [429]
    assert ehr.read(answer.json()["access_token"]).status_code == 200


class RefreshingApp:
    """A small SMART app on requests: retries 429/503 and, on a 401, refreshes its token and tries again."""

    def __init__(self, ehr: FaultEhr, client_id: str, tokens: dict):
        self.ehr = ehr
        self.client_id = client_id
        self.tokens = tokens
        self.session = retrying_session()
        self.refreshes = 0

    def get(self, path: str) -> requests.Response:
        answer = self._get(path)
        # A second refresh only if the first token came back already expired: a 1 s token minted at the
        # very end of a wall-clock second lives only what is left of it (see the token-lifetime tests).
        for _ in range(2):
            if answer.status_code != 401:
                break
            self.refresh()
            answer = self._get(path)
        return answer

    def _get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.ehr.fhir_base}/{path}", timeout=30,
                                headers={"Authorization": f"Bearer {self.tokens['access_token']}"})

    def refresh(self) -> None:
        answer = self.session.post(self.ehr.token_endpoint, timeout=30, data={
            "grant_type": "refresh_token", "refresh_token": self.tokens["refresh_token"], "client_id": self.client_id})
        assert answer.status_code == 200, answer.text
        self.tokens = answer.json()
        self.refreshes += 1


def test_requests_app_refreshes_after_token_lifetime_1(ehr):
    ehr.add_fault("token-lifetime:seconds=1")
    client = ehr.public_client()
    wait_for_second_start()
    flow = ehr.code_flow(client["client_id"], SCOPE)
    assert flow.body["expires_in"] == 1
    app = RefreshingApp(ehr, client["client_id"], flow.body)
    assert app.get("Patient/pat-a").json()["id"] == "pat-a"
    assert app.refreshes == 0
    time.sleep(max(0.0, flow.access_claims["exp"] + 1.05 - time.time()))  # it lives through its exp second
    first_token = app.tokens["access_token"]
    answer = app.get("Patient/pat-a")
    assert answer.status_code == 200 and answer.json()["id"] == "pat-a"
    assert app.refreshes >= 1 and app.tokens["access_token"] != first_token
    assert app.tokens["expires_in"] == 1


def test_requests_app_survives_everything_at_once(ehr):
    """Short tokens, throttling and an outage at once: every read still ends in the right resource."""
    ehr.add_fault("token-lifetime:seconds=1")
    client = ehr.public_client()
    wait_for_second_start()
    flow = ehr.code_flow(client["client_id"], SCOPE)
    ehr.add_fault("error:status=503,count=2")
    ehr.add_fault("throttle:every=3,retry_after=1")
    app = RefreshingApp(ehr, client["client_id"], flow.body)
    ids = [app.get(path).json().get("id") for path in ("Patient/pat-a", "Encounter/enc-a1", "Patient/pat-a",
                                                         "Observation/obs-a-vital")]
    assert ids == ["pat-a", "enc-a1", "pat-a", "obs-a-vital"]
    assert app.refreshes >= 1  # throttling waits made the 1 s token expire on the way


# ---- Python fhirclient ----------------------------------------------------------------------------

def _fhirclient_launch(ehr: FaultEhr) -> fhir_client.FHIRClient:
    """A standalone launch by fhirclient (auto-approve: the patient is pat-a)."""
    smart = fhir_client.FHIRClient(settings={"app_id": "fhirclient-faults", "api_base": ehr.fhir_base,
                                             "redirect_uri": REDIRECT, "scope": SCOPE})
    answer = requests.get(smart.authorize_url, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    wait_for_second_start()
    smart.handle_callback(answer.headers["Location"])
    assert smart.ready and smart.patient_id == "pat-a"
    return smart


def test_fhirclient_refreshes_after_token_lifetime_1(ehr):
    ehr.add_fault("token-lifetime:seconds=1")
    smart = _fhirclient_launch(ehr)
    assert smart.server.auth.refresh_token
    first_token = smart.server.auth.access_token
    assert Patient.read("pat-a", smart.server).id == "pat-a"
    time.sleep(2.05)  # the 1 s token is dead now (it lives through its whole exp second)
    with pytest.raises(FHIRUnauthorizedException):
        Patient.read("pat-a", smart.server)
    since = ehr.last_event_id()
    wait_for_second_start()
    assert smart.reauthorize()  # fhirclient's refresh: the SMART refresh grant
    second_token = smart.server.auth.access_token
    assert second_token and second_token != first_token
    patient = Patient.read("pat-a", smart.server)
    assert patient.id == "pat-a" and patient.name[0].family == "Alpha"
    refreshes = [e for e in ehr.audit(since) if e["type"] == "token" and e.get("grant_type") == "refresh_token"]
    assert [e["outcome"] for e in refreshes] == ["success"]
    # fhirclient also knows the new token's expires_in: once it has passed, the client is no longer
    # ready, and reauthorizing (with the rotated refresh token) makes it ready again
    time.sleep(1.1)
    assert not smart.ready
    wait_for_second_start()
    assert smart.reauthorize() and smart.ready
    assert Patient.read("pat-a", smart.server).id == "pat-a"


def test_fhirclient_is_untouched_by_jwks_down_and_sees_expire_refresh_as_invalid_grant(ehr):
    ehr.add_fault("jwks-down")  # a FHIR client never reads the JWKS
    smart = _fhirclient_launch(ehr)
    assert Patient.read("pat-a", smart.server).id == "pat-a"
    ehr.add_fault("expire-refresh")
    with pytest.raises(requests.HTTPError) as refused:
        smart.reauthorize()
    assert refused.value.response.status_code == 400
    assert refused.value.response.json()["error"] == "invalid_grant"
    ehr.clear_faults()
    again = _fhirclient_launch(ehr)  # the way out of a dead refresh token: launch again
    assert Patient.read("pat-a", again.server).id == "pat-a"
