"""Real mockehr servers for the fault tests, and a client that speaks the control API.

The servers use the small, exact dataset of tests/auth (patients pat-a, pat-b,
pat-c; practitioners prac-1, prac-2; encounter enc-a1, ...) and its SMART client
(`Ehr`: discovery, registration, code flow, refresh, JWKS verification). Faults
are added and removed over HTTP (`POST /admin/faults`, `DELETE /admin/faults`),
exactly as a user would; every test starts and ends with no fault in force.
"""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from mockehr.server import ServerThread
from tests.auth.conftest import Ehr, dataset_dir, start  # noqa: F401 - dataset_dir is a fixture used here

SCOPE = "launch/patient openid fhirUser patient/*.rs offline_access"


class FaultEhr(Ehr):
    """A running mockehr, its SMART client, and its control API."""

    def __init__(self, server: ServerThread, leeway: float = 0, admin_token: str | None = None):
        super().__init__(server, leeway)
        self.admin_headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}

    def service_client(self) -> dict:
        """A registered client_credentials client (client_secret_basic)."""
        return self.register(client_name="backend service", grant_types=["client_credentials"],
                             token_endpoint_auth_method="client_secret_basic", scope="system/*.rs")

    def service_token(self, client: dict) -> requests.Response:
        """The client_credentials grant for a service_client()."""
        return self.http.post(self.token_endpoint, data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                              auth=(client["client_id"], client["client_secret"]), timeout=30)

    # -- the control API ------------------------------------------------------------
    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.admin_headers, **(kwargs.pop("headers", None) or {})}
        return self.http.request(method, f"{self.url}/admin/{path.lstrip('/')}", headers=headers, timeout=30,
                                 **kwargs)

    def add_fault(self, spec: str) -> dict:
        answer = self.admin("POST", "faults", json={"spec": spec})
        assert answer.status_code == 201, answer.text
        fault = answer.json()
        assert fault["spec"] == spec and fault["id"], fault
        return fault

    def faults(self) -> list[dict]:
        answer = self.admin("GET", "faults")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def fault(self, fault_id: str) -> dict:
        return next(f for f in self.faults() if f["id"] == fault_id)

    def clear_faults(self) -> None:
        answer = self.admin("DELETE", "faults")
        assert answer.status_code == 200, answer.text
        assert self.faults() == []

    def remove_fault(self, fault_id: str) -> requests.Response:
        return self.admin("DELETE", f"faults/{fault_id}")

    def audit(self, since: int = 0) -> list[dict]:
        answer = self.admin("GET", "audit", params={"since": since})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def last_event_id(self) -> int:
        events = self.audit()
        return events[-1]["id"] if events else 0

    def fired(self, since: int, fault_id: str | None = None) -> list[dict]:
        """The `fault fired` audit events after event `since` (of one fault, if given)."""
        return [e for e in self.audit(since) if e["type"] == "fault" and e["outcome"] == "fired"
                and (fault_id is None or e["fault"] == fault_id)]

    def mint(self, scope: str = "system/*.rs", **fields) -> dict:
        """A token response from POST /admin/tokens."""
        answer = self.admin("POST", "tokens", json={"scope": scope, **fields})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def token_for(self, scope: str = "system/*.rs", **fields) -> str:
        return self.mint(scope, **fields)["access_token"]

    def read(self, token: str | None, path: str = "Patient/pat-a", session: requests.Session | None = None,
             **kwargs) -> requests.Response:
        url = f"{self.fhir_base}/{path}"
        headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **kwargs.pop("headers", {})}
        return (session or self.http).get(url, headers=headers, timeout=30, **kwargs)

    def jwks(self) -> dict:
        answer = self.http.get(self.smart["jwks_uri"], timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def kids(self) -> set[str]:
        return {key["kid"] for key in self.jwks()["keys"]}

    def fresh_jwks_client(self) -> jwt.PyJWKClient:
        """A PyJWKClient with nothing cached (what a resource server starting now would use)."""
        return jwt.PyJWKClient(self.smart["jwks_uri"], cache_keys=False, cache_jwk_set=False)

    @property
    def jwks_client(self) -> jwt.PyJWKClient:
        # Keys rotate under these tests: every verification reads the JWKS as published now
        # (a cached PyJWKClient refuses to refetch within its cool-down after a rotation).
        return self.fresh_jwks_client()


def wait_for_second_start(before: float = 0.4) -> None:
    """Sleep until the wall clock is early in a second (fraction < `before`).

    Tokens carry whole-second iat/exp, so a token that lives 1 s lives up to a
    second less when minted late in a second (see test_fault_effects'
    test_one_second_token_lives_its_whole_second). Tests about something else
    mint such tokens early in a second, so that they are not at its mercy."""
    while time.time() % 1 >= before:
        time.sleep(0.01)


def start_ehr(dataset: object, *, leeway: float = 0, admin_token: str | None = None, **settings) -> FaultEhr:
    server = start(dataset, auto_approve=settings.pop("auto_approve", True), admin_token=admin_token, **settings)
    ehr = FaultEhr(server, leeway=leeway, admin_token=admin_token)
    assert ehr.smart["jwks_uri"]  # discovery cached before any fault could touch /fhir/*
    return ehr


@pytest.fixture(scope="module")
def ehr(dataset_dir):  # noqa: F811 - the fixture imported above
    """Auto-approve, permissive; faults added at run time only."""
    ehr = start_ehr(dataset_dir)
    yield ehr
    ehr.http.close()
    ehr.server.stop()


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    """Tests on the shared server start and end with no fault in force."""
    if "ehr" not in request.fixturenames:
        yield
        return
    ehr: FaultEhr = request.getfixturevalue("ehr")
    ehr.clear_faults()
    yield
    ehr.clear_faults()
