"""GET /admin/audit: every step of a SMART session leaves an event, and no token or secret
appears in it in full."""

from __future__ import annotations

import json
import re

import requests

from tests.auth.conftest import ASSERTION_TYPE, basic, client_assertion, new_observation, new_verifier, rsa_key

SCOPE = "launch/patient openid fhirUser patient/*.rs offline_access"


def _secrets(*values: str) -> list[str]:
    """What must not appear: each value whole, and the signature of each JWT."""
    found = []
    for value in values:
        found.append(value)
        if value.count(".") == 2:
            found.append(value.rsplit(".", 1)[1])
    return found


def test_audit_records_a_whole_session_without_its_secrets(ehr, rs384, writes):
    start = len(ehr.audit())
    secret_client = ehr.secret_client()
    flow = ehr.code_flow(secret_client["client_id"], SCOPE, auth=basic(secret_client), nonce="n-a")
    refreshed, _, _ = ehr.check_token_response(
        ehr.refresh(secret_client["client_id"], flow.refresh_token, auth=basic(secret_client)),
        secret_client["client_id"], nonce="n-a")
    # failures too
    bad_code = ehr.token({"grant_type": "authorization_code", "code": "BAD", "redirect_uri": "http://x",
                          "code_verifier": new_verifier()}, auth=basic(secret_client))
    assert bad_code.status_code == 400
    wrong_secret = ehr.token({"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
                             auth=(secret_client["client_id"], secret_client["client_secret"][:-2] + "xx"))
    assert wrong_secret.status_code == 401
    denied = ehr.authorize(secret_client["client_id"], SCOPE, aud="http://wrong.example")
    assert denied.params["error"] == "invalid_request"
    assert ehr.fhir("GET", "Patient/pat-a", refreshed["access_token"]).status_code == 200
    assert ehr.fhir("GET", "Patient/pat-b", refreshed["access_token"]).status_code == 403
    assert ehr.fhir("GET", "Patient/pat-a", "forged." + flow.access_token).status_code == 401
    backend = ehr.backend_client(rs384)
    assertion = client_assertion(backend["client_id"], rs384, ehr.token_endpoint)
    system, _, _ = ehr.check_token_response(
        ehr.token({"grant_type": "client_credentials", "scope": "system/*.cruds",
                   "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}), backend["client_id"])
    assert ehr.fhir("POST", "Observation", system["access_token"], json=new_observation("pat-c")).status_code == 201
    assert ehr.revoke(refreshed["refresh_token"], auth=basic(secret_client)).status_code == 200
    ehr.launch(patient="pat-a")

    answer = requests.get(f"{ehr.url}/admin/audit", timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    events = answer.json()[start:]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # oldest first
    kinds = {e["type"] for e in events}
    assert {"registration", "authorize", "token", "fhir", "revoke", "launch"} <= kinds, kinds
    mine = [e for e in events if e.get("client") == secret_client["client_id"]]
    assert any(e["type"] == "registration" for e in mine)
    authorize = [e for e in mine if e["type"] == "authorize"]
    assert [e["outcome"] for e in authorize] == ["success", "failure"]
    assert authorize[0]["patient"] == "pat-a" and authorize[0]["scope"]
    assert "aud" in authorize[1]["reason"]
    tokens = [e for e in events if e["type"] == "token"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= {e.get("grant_type") for e in tokens}
    failures = [e for e in tokens if e["outcome"] == "failure"]
    assert {"invalid_grant", "invalid_client"} <= {e.get("error") for e in failures}
    fhir = [e for e in events if e["type"] == "fhir"]
    assert {(e["method"], e["status"]) for e in fhir} >= {("GET", 200), ("GET", 403), ("GET", 401), ("POST", 201)}
    ok = next(e for e in fhir if e["path"] == "/fhir/Patient/pat-a" and e["status"] == 200)
    assert ok["client"] == secret_client["client_id"] and ok["patient"] == "pat-a"

    text = json.dumps(events, ensure_ascii=False)
    forbidden = _secrets(secret_client["client_secret"], flow.access_token, flow.refresh_token,
                         flow.body["id_token"], refreshed["access_token"], refreshed["refresh_token"],
                         system["access_token"], assertion)
    for secret in filter(None, forbidden):
        assert secret not in text, f"{secret[:10]}... appears in the audit trail"
    # opaque secrets: not even a long piece of them
    for secret in (secret_client["client_secret"], flow.refresh_token, refreshed["refresh_token"]):
        for i in range(0, len(secret) - 12):
            assert secret[i:i + 12] not in text
    # and no authorization code in full
    for code in re.findall(r'"code": "([^"]+)"', text):
        assert len(code.rstrip("…")) <= 8, code



def test_fhir_failures_say_why(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient patient/*.rs")
    assert ehr.fhir("GET", "Patient/pat-b", flow.access_token).status_code == 403
    assert ehr.fhir("GET", "Patient/pat-b", "not-a-token").status_code == 401
    refused = [e for e in ehr.audit() if e["type"] == "fhir" and e["path"] == "/fhir/Patient/pat-b"][-2:]
    assert [e["status"] for e in refused] == [403, 401]
    assert all(e.get("reason") for e in refused), refused


def test_a_token_sent_in_the_query_never_lands_whole_in_the_audit_trail(ehr):
    token = ehr.system_token(rsa_key())
    answer = requests.get(f"{ehr.fhir_base}/Patient", params={"access_token": token, "_count": "1"}, timeout=30)
    assert answer.status_code == 401  # only the Authorization header carries tokens here
    events = requests.get(f"{ehr.url}/admin/audit", timeout=30).text
    assert token not in events and token[:6] + "…" in events
