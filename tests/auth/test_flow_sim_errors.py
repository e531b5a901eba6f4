"""Simulated errors (smart-launcher-v2's list): a launch or a client asks for one, and that step
fails the way a real EHR fails, in the spec's error shape; the steps before it work."""

from __future__ import annotations

import pytest
import requests

from tests.auth.conftest import REDIRECT, basic, new_verifier

SCOPE = "launch openid fhirUser patient/*.rs offline_access"


def _launch(ehr, sim_error: str) -> str:
    return ehr.launch(patient="pat-a", user="Practitioner/prac-1", sim_error=sim_error)["launch"]


def _code(ehr, client_id: str, sim_error: str) -> tuple[str, str]:
    verifier = new_verifier()
    return ehr.authorize(client_id, SCOPE, verifier=verifier, launch=_launch(ehr, sim_error)).code, verifier


def test_an_unknown_sim_error_is_refused_with_the_list(ehr):
    answer = ehr.http.post(f"{ehr.url}/admin/launches", json={"patient": "pat-a", "sim_error": "auth_oops"},
                           timeout=30)
    assert answer.status_code == 400
    assert "unknown sim_error 'auth_oops'" in answer.json()["error"] and "auth_invalid_scope" in answer.json()["error"]
    registered = ehr.http.post(ehr.smart["registration_endpoint"], json={
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "sim_error": 7}, timeout=30)
    assert registered.status_code == 400 and registered.json()["error"] == "invalid_client_metadata"


def test_auth_invalid_scope_comes_back_to_the_app_as_invalid_scope(ehr):
    client = ehr.public_client()
    error = ehr.authorize_error(client["client_id"], SCOPE, launch=_launch(ehr, "auth_invalid_scope"))
    assert error["error"] == "invalid_scope" and error["state"] == "st-1"
    assert error["error_description"].startswith("Simulated error")


@pytest.mark.parametrize("sim_error", ["auth_invalid_client_id", "auth_invalid_redirect_uri"])
def test_a_bad_client_or_redirect_uri_is_an_error_page_never_a_redirect(ehr, sim_error):
    client = ehr.public_client()
    answer = ehr.authorize_raw({"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
                                "scope": SCOPE, "aud": ehr.fhir_base, "state": "s",
                                "launch": _launch(ehr, sim_error)})
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "text/html" in answer.headers["Content-Type"] and "Simulated error" in answer.text


def test_auth_invalid_client_secret_fails_the_code_exchange_with_invalid_client(ehr):
    client = ehr.secret_client("client_secret_basic")
    code, verifier = _code(ehr, client["client_id"], "auth_invalid_client_secret")
    answer = ehr.exchange(client["client_id"], code, verifier, auth=basic(client))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert answer.headers.get("WWW-Authenticate", "").startswith("Basic")


def test_token_invalid_token_fails_the_code_exchange_with_invalid_grant(ehr):
    client = ehr.public_client()
    code, verifier = _code(ehr, client["client_id"], "token_invalid_token")
    answer = ehr.exchange(client["client_id"], code, verifier)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_token_expired_refresh_token_lets_the_exchange_work_and_fails_the_refresh(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], SCOPE, launch=_launch(ehr, "token_expired_refresh_token"))
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 200
    answer = ehr.refresh(client["client_id"], flow.refresh_token)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert "expired" in answer.json()["error_description"]


@pytest.mark.parametrize("sim_error", ["request_invalid_token", "request_expired_token"])
def test_request_errors_make_the_fhir_api_refuse_the_token(ehr, sim_error):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch patient/*.rs", launch=_launch(ehr, sim_error))
    answer = ehr.fhir("GET", "Patient/pat-a", flow.access_token)
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert "Simulated error" in answer.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("sim_error, error", [("token_expired_registration_token", "invalid_client"),
                                              ("token_invalid_scope", "invalid_scope"),
                                              ("invalid_jti", "invalid_client")])
def test_backend_service_sim_errors_fail_client_credentials(ehr, rs384, sim_error, error):
    client = ehr.backend_client(rs384, sim_error=sim_error)
    answer = ehr.client_credentials(client["client_id"], rs384, "system/Patient.rs")
    assert answer.status_code in (400, 401) and answer.json()["error"] == error, answer.text
    assert answer.json()["error_description"].startswith("Simulated error")


def test_a_client_registered_with_a_request_sim_error_gets_tokens_the_fhir_api_refuses(ehr, rs384):
    client = ehr.backend_client(rs384, sim_error="request_expired_token")
    answer = ehr.client_credentials(client["client_id"], rs384, "system/Patient.rs")
    assert answer.status_code == 200
    refused = requests.get(f"{ehr.fhir_base}/Patient/pat-a", timeout=30,
                           headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
    assert refused.status_code == 401 and "expired" in refused.json()["issue"][0]["diagnostics"]
