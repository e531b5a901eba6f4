"""SMART Backend Services: client_credentials with a private_key_jwt assertion (RFC 7523), the
checks on the assertion, system/ scopes only, and what the token can read."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid

import jwt
import pytest

from tests.auth.conftest import ASSERTION_TYPE, PATIENTS, client_assertion, ec_key, rsa_key


@pytest.fixture(scope="module")
def rs_client(ehr, rs384):
    return ehr.backend_client(rs384)


@pytest.fixture(scope="module")
def es_client(ehr, es384):
    return ehr.backend_client(es384)


def _refused(answer, error: str = "invalid_client") -> dict:
    assert answer.status_code in (400, 401), answer.text
    body = answer.json()
    assert body["error"] == error, body
    assert "access_token" not in body
    return body


@pytest.mark.parametrize("which", ["RS384", "ES384"])
def test_client_credentials_with_an_rs384_or_es384_assertion(ehr, rs384, es384, rs_client, es_client, which):
    key, client = (rs384, rs_client) if which == "RS384" else (es384, es_client)
    answer = ehr.client_credentials(client["client_id"], key, "system/*.rs")
    body, access, _ = ehr.check_token_response(answer, client["client_id"], id_token_expected=False)
    assert body["scope"] == "system/*.rs"
    assert "refresh_token" not in body and "patient" not in body
    assert access["sub"] == client["client_id"]
    # the token reads any patient, and searches all of them
    for patient in PATIENTS:
        assert ehr.fhir("GET", f"Patient/{patient}", body["access_token"]).status_code == 200
    assert ehr.search_ids("Patient", body["access_token"]) == PATIENTS
    assert ehr.search_ids("Observation", body["access_token"]) == ["obs-a-lab", "obs-a-vital", "obs-b-lab",
                                                                    "obs-b-vital"]


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_advertised_rs256_and_es256_assertions_work_too(ehr, alg):
    key = rsa_key(alg) if alg == "RS256" else ec_key(alg)
    client = ehr.backend_client(key)
    ehr.check_token_response(ehr.client_credentials(client["client_id"], key), client["client_id"])


@pytest.mark.parametrize("scope", ["system/*.read", "system/Patient.rs", "system/Patient.read system/Observation.rs"])
def test_v1_and_v2_system_scopes(ehr, rs384, rs_client, scope):
    answer = ehr.client_credentials(rs_client["client_id"], rs384, scope)
    body, _, _ = ehr.check_token_response(answer, rs_client["client_id"])
    assert body["scope"] == scope
    assert ehr.fhir("GET", "Patient/pat-b", body["access_token"]).status_code == 200
    if "Observation" not in scope and "*" not in scope:
        assert ehr.fhir("GET", "Observation/obs-b-lab", body["access_token"]).status_code == 403


def test_read_scope_cannot_write(ehr, rs384, rs_client, writes):
    body, _, _ = ehr.check_token_response(ehr.client_credentials(rs_client["client_id"], rs384, "system/*.read"),
                                          rs_client["client_id"])
    patient = {"resourceType": "Patient", "name": [{"family": "New"}]}
    answer = ehr.fhir("POST", "Patient", body["access_token"], json=patient)
    assert answer.status_code == 403
    assert "system/Patient.c" in answer.json()["issue"][0]["diagnostics"]  # names the missing scope
    write, _, _ = ehr.check_token_response(ehr.client_credentials(rs_client["client_id"], rs384,
                                                                  "system/Patient.c"), rs_client["client_id"])
    assert ehr.fhir("POST", "Patient", write["access_token"], json=patient).status_code == 201
    answer = ehr.fhir("GET", "Observation/obs-a-lab", write["access_token"])
    assert answer.status_code == 403 and "system/Observation.rs" in answer.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("scope", ["patient/*.rs", "user/*.rs", "system/*.rs launch", "system/*.rs openid",
                                   "system/*.rs offline_access", "", "system/Patient.sr"])
def test_non_system_scopes_are_invalid_scope(ehr, rs384, rs_client, scope):
    _refused(ehr.client_credentials(rs_client["client_id"], rs384, scope), "invalid_scope")


def test_replayed_jti_is_refused(ehr, rs384, rs_client):
    jti = uuid.uuid4().hex
    first = ehr.client_credentials(rs_client["client_id"], rs384, jti=jti)
    ehr.check_token_response(first, rs_client["client_id"])
    _refused(ehr.client_credentials(rs_client["client_id"], rs384, jti=jti))
    # the very same assertion, sent twice
    assertion = client_assertion(rs_client["client_id"], rs384, ehr.token_endpoint)
    form = {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}
    ehr.check_token_response(ehr.token(form), rs_client["client_id"])
    _refused(ehr.token(form))


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 30},  # expired
    {"exp": int(time.time()) + 600},  # more than five minutes ahead
    {"exp": None},  # no exp
    {"jti": None},  # no jti
    {"aud": "http://elsewhere.example/token"},  # wrong aud
    {"aud": "{fhir}"},  # the FHIR base is not the token endpoint
    {"sub": "someone-else"},  # iss != sub
    {"iss": None},
], ids=["expired", "exp-too-far", "no-exp", "no-jti", "wrong-aud", "aud-fhir-base", "iss-ne-sub", "no-iss"])
def test_bad_assertion_claims_are_refused(ehr, rs384, rs_client, claims):
    claims = {k: (v.format(fhir=ehr.fhir_base) if isinstance(v, str) else v) for k, v in claims.items()}
    _refused(ehr.client_credentials(rs_client["client_id"], rs384, **claims))


def test_assertion_signed_with_an_unregistered_key_is_refused(ehr, rs384, rs_client):
    stranger = rsa_key("RS384")
    _refused(ehr.client_credentials(rs_client["client_id"], stranger))
    stranger.kid = rs384.kid  # even when it claims the registered key's kid
    _refused(ehr.client_credentials(rs_client["client_id"], stranger))


def _form(assertion: str) -> dict:
    return {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}


def _claims(ehr, client_id: str) -> dict:
    now = int(time.time())
    return {"iss": client_id, "sub": client_id, "aud": ehr.token_endpoint, "exp": now + 240,
            "jti": uuid.uuid4().hex}


def test_hs256_and_none_assertions_are_refused(ehr, rs384, rs_client):
    claims = _claims(ehr, rs_client["client_id"])
    # HS256 keyed with the public key's modulus bytes: the classic algorithm-confusion attack
    secret = base64.urlsafe_b64decode(rs384.jwk["n"] + "==")
    hs = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": rs384.kid})
    _refused(ehr.token(_form(hs)))

    def b64(part: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': rs384.kid})}.{b64(_claims(ehr, rs_client['client_id']))}."
    _refused(ehr.token(_form(unsigned)))
    _refused(ehr.token(_form("not.a.jwt")))


def test_wrong_assertion_type_or_missing_assertion(ehr, rs384, rs_client):
    form = _form(client_assertion(rs_client["client_id"], rs384, ehr.token_endpoint))
    form["client_assertion_type"] = "not_an_assertion_type"
    answer = ehr.token(form)
    assert answer.status_code == 400, answer.text  # Inferno's backend-services kit wants exactly 400 here
    assert answer.json()["error"] in ("invalid_client", "invalid_request")
    del form["client_assertion"]
    form["client_assertion_type"] = ASSERTION_TYPE
    _refused(ehr.token(form))


def test_wrong_grant_type_is_400(ehr, rs384, rs_client):
    form = _form(client_assertion(rs_client["client_id"], rs384, ehr.token_endpoint))
    form["grant_type"] = "not_a_grant_type"
    answer = ehr.token(form)
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_unknown_client_and_a_client_registered_for_another_method(ehr, rs384):
    _refused(ehr.client_credentials("no-such-client", rs384))
    public = ehr.public_client()
    _refused(ehr.client_credentials(public["client_id"], rs384))


class _JWKSHandler(http.server.BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def jwks_host():
    """A client's own web server publishing its JWKS."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JWKSHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_jwks_uri_clients_are_fetched(ehr, jwks_host):
    key = ec_key("ES384")
    _JWKSHandler.body = json.dumps({"keys": [key.jwk]}).encode()
    uri = f"http://127.0.0.1:{jwks_host.server_port}/jwks.json"
    client = ehr.register(client_name="jwks_uri service", grant_types=["client_credentials"],
                          token_endpoint_auth_method="private_key_jwt", jwks_uri=uri)
    ehr.check_token_response(ehr.client_credentials(client["client_id"], key), client["client_id"])
    _refused(ehr.client_credentials(client["client_id"], ec_key("ES384")))  # a key not at the URL
    dead = ehr.register(client_name="dead jwks_uri", grant_types=["client_credentials"],
                        token_endpoint_auth_method="private_key_jwt", jwks_uri="http://127.0.0.1:9/jwks.json")
    body = _refused(ehr.client_credentials(dead["client_id"], key))
    assert "jwks_uri" in body["error_description"]
