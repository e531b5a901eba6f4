"""Confidential and public clients through real registration, each authentication method doing
the whole code flow (and a refresh), and each refusing the wrong credentials."""

from __future__ import annotations

import pytest

from tests.auth.conftest import ASSERTION_TYPE, REDIRECT, basic, client_assertion, ec_key, new_verifier, rsa_key

SCOPE = "launch/patient openid fhirUser patient/*.rs offline_access"


def _code(ehr, client_id: str) -> tuple[str, str]:
    verifier = new_verifier()
    return ehr.authorize(client_id, SCOPE, verifier=verifier).code, verifier


def _assertion_form(ehr, client_id: str, key, **claims) -> dict:
    return {"client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(client_id, key, ehr.token_endpoint, **claims)}


def test_public_client(ehr):
    client = ehr.public_client()
    assert "client_secret" not in client
    flow = ehr.code_flow(client["client_id"], SCOPE, nonce="pub", id_token_expected=True)
    again = ehr.refresh(client["client_id"], flow.refresh_token)
    ehr.check_token_response(again, client["client_id"], nonce="pub")
    # a public client has no secret to send; sending one is a failed authentication
    code, verifier = _code(ehr, client["client_id"])
    answer = ehr.exchange(client["client_id"], code, verifier, extra={"client_secret": "made-up"})
    assert answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client"


def test_client_secret_basic(ehr):
    client = ehr.secret_client("client_secret_basic")
    assert client["token_endpoint_auth_method"] == "client_secret_basic" and client["client_secret"]
    cid = client["client_id"]
    flow = ehr.code_flow(cid, SCOPE, auth=basic(client), nonce="basic", id_token_expected=True)
    ehr.check_token_response(ehr.refresh(cid, flow.refresh_token, auth=basic(client)), cid, nonce="basic")
    # wrong secret, no secret, and the secret sent the other way (not what was registered)
    for auth, extra in [((cid, "wrong"), None), (None, None), (None, {"client_secret": client["client_secret"]})]:
        code, verifier = _code(ehr, cid)
        answer = ehr.exchange(cid, code, verifier, auth=auth, extra=extra)
        assert answer.status_code in (400, 401), answer.text
        assert answer.json()["error"] == "invalid_client"
        if auth:
            assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Basic")
    # a confidential client cannot refresh as if it were public
    answer = ehr.refresh(cid, flow.refresh_token)  # client_id only
    assert answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client"


def test_client_secret_post(ehr):
    client = ehr.secret_client("client_secret_post")
    cid, secret = client["client_id"], client["client_secret"]
    flow = ehr.code_flow(cid, SCOPE, token_extra={"client_secret": secret}, nonce="post", id_token_expected=True)
    again = ehr.refresh(cid, flow.refresh_token, client_secret=secret)
    ehr.check_token_response(again, cid, nonce="post")
    for auth, extra in [(None, {"client_secret": "wrong"}), (None, None), (basic(client), None)]:
        code, verifier = _code(ehr, cid)
        answer = ehr.exchange(cid, code, verifier, auth=auth, extra=extra)
        assert answer.status_code in (400, 401), answer.text
        assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize("make_key", [lambda: rsa_key("RS384"), lambda: ec_key("ES384")], ids=["RS384", "ES384"])
def test_private_key_jwt(ehr, make_key):
    key = make_key()
    client = ehr.register(client_name="asymmetric app", redirect_uris=[REDIRECT],
                          token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key.jwk]},
                          grant_types=["authorization_code", "refresh_token"])
    assert "client_secret" not in client
    cid = client["client_id"]
    flow = ehr.code_flow(cid, SCOPE, token_extra=_assertion_form(ehr, cid, key), nonce="pkj",
                         id_token_expected=True)
    again = ehr.refresh(cid, flow.refresh_token, auth=None, **_assertion_form(ehr, cid, key))
    ehr.check_token_response(again, cid, nonce="pkj")
    stranger = make_key()
    for extra in (_assertion_form(ehr, cid, stranger), {}, _assertion_form(ehr, cid, key, aud=ehr.fhir_base)):
        code, verifier = _code(ehr, cid)
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "code_verifier": verifier, **extra}
        if not extra:
            data["client_id"] = cid
        answer = ehr.token(data)
        assert answer.status_code in (400, 401), answer.text
        assert answer.json()["error"] == "invalid_client"


def test_a_secret_client_cannot_use_private_key_jwt_and_vice_versa(ehr):
    key = rsa_key()
    secret_client = ehr.secret_client("client_secret_basic")
    code, verifier = _code(ehr, secret_client["client_id"])
    answer = ehr.exchange(secret_client["client_id"], code, verifier,
                          extra=_assertion_form(ehr, secret_client["client_id"], key))
    assert answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client"


# -- a registered `scope` (RFC 7591) bounds what the client gets ------------------------------------

def test_registered_scope_narrows_the_grant_and_the_audit_says_so(ehr):
    client = ehr.public_client(scope="launch/patient openid fhirUser patient/*.rs")
    flow = ehr.code_flow(client["client_id"], "launch/patient openid fhirUser patient/Condition.cruds "
                         "patient/Observation.rs offline_access", id_token_expected=True)
    granted = flow.body["scope"].split()
    assert "patient/Condition.rs" in granted and "patient/Observation.rs" in granted
    assert "patient/Condition.cruds" not in granted and "offline_access" not in granted
    assert "refresh_token" not in flow.body
    created = ehr.fhir("POST", "Condition", flow.access_token, json={"resourceType": "Condition"})
    assert created.status_code == 403
    event = [e for e in ehr.audit() if e["type"] == "authorize" and e.get("client") == client["client_id"]][-1]
    assert any("goes beyond what client" in flag and "offline_access" in flag for flag in event["flags"]), event


def test_registered_scope_refuses_a_request_with_nothing_inside_it(ehr):
    client = ehr.public_client(scope="launch/patient patient/Observation.rs")
    error = ehr.authorize_error(client["client_id"], "user/Patient.rs")
    assert error["error"] == "invalid_scope"
    assert "registered ('launch/patient patient/Observation.rs')" in error["error_description"]


def test_registered_scope_is_strict_under_strict(strict_ehr):
    client = strict_ehr.public_client(scope="launch/patient openid patient/*.rs")
    error = strict_ehr.authorize_error(client["client_id"], "launch/patient openid patient/*.rs offline_access")
    assert error["error"] == "invalid_scope" and "offline_access" in error["error_description"]


def test_registered_scope_bounds_backend_services(ehr, rs384):
    client = ehr.backend_client(rs384, scope="system/Patient.rs system/Observation.rs")
    answer = ehr.client_credentials(client["client_id"], rs384, "system/Patient.rs system/Condition.rs")
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == "system/Patient.rs"
    refused = ehr.client_credentials(client["client_id"], rs384, "system/Condition.rs")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    assert "system/Condition.rs" in refused.json()["error_description"]
