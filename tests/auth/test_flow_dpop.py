"""DPoP (RFC 9449) over real HTTP: token requests with a proof get DPoP-bound tokens (token_type
DPoP, cnf.jkt), which the FHIR API and userinfo then take only as `Authorization: DPoP` with a
fresh proof for that request, that token and that key; server nonces; refresh tokens of public
clients bound to the key; the client and server flags that require DPoP; introspection."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from tests.auth.conftest import ASSERTION_TYPE, REDIRECT, basic, client_assertion, introspection, new_verifier, start
from tests.auth.conftest import Ehr
from tests.auth.dpop_helper import DPoPKey, dpop_challenge, dpop_key

SCOPE = "launch/patient openid fhirUser patient/*.rs offline_access"


# -- helpers ----------------------------------------------------------------------------------
def code(ehr: Ehr, client_id: str, scope: str = SCOPE, **authorize_extra) -> tuple[str, str]:
    verifier = new_verifier()
    return ehr.authorize(client_id, scope, verifier=verifier, **authorize_extra).code, verifier


def exchange(ehr: Ehr, client_id: str, grant: tuple[str, str], key: DPoPKey | None, *, auth=None,
             proof: str | None = None) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": grant[0], "redirect_uri": REDIRECT,
            "code_verifier": grant[1]}
    if auth is None:
        data["client_id"] = client_id
    headers = {"DPoP": proof or key.proof("POST", ehr.token_endpoint)} if key or proof else None
    return ehr.token(data, auth=auth, headers=headers)


def bound(ehr: Ehr, answer: requests.Response, key: DPoPKey) -> dict:
    """A DPoP token response: token_type DPoP and an access token whose cnf.jkt is the key's thumbprint."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "DPoP", body
    claims = ehr.verify_access_token(body["access_token"])
    assert claims["cnf"] == {"jkt": key.jkt}
    return body


def dpop_flow(ehr: Ehr, client_id: str, key: DPoPKey, scope: str = SCOPE) -> dict:
    return bound(ehr, exchange(ehr, client_id, code(ehr, client_id, scope), key), key)


def fhir(ehr: Ehr, path: str, token: str, key: DPoPKey | None, *, method: str = "GET", scheme: str = "DPoP",
         proof: str | None = None, **kwargs) -> requests.Response:
    url = f"{ehr.fhir_base}/{path}"
    headers = {"Authorization": f"{scheme} {token}"}
    if proof or key:
        headers["DPoP"] = proof or key.proof(method, url, access_token=token)
    return ehr.http.request(method, url, headers=headers, timeout=30, **kwargs)


def refresh(ehr: Ehr, client_id: str, token: str, key: DPoPKey | None, auth=None) -> requests.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    if auth is None:
        data["client_id"] = client_id
    return ehr.token(data, auth=auth, headers={"DPoP": key.proof("POST", ehr.token_endpoint)} if key else None)


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return dpop_key("ES256")


@pytest.fixture(scope="module")
def public(ehr) -> dict:
    return ehr.public_client()


@pytest.fixture(scope="module")
def session(ehr, public, key) -> dict:
    """One DPoP-bound token response (public client, ES256) for the resource-side tests."""
    return dpop_flow(ehr, public["client_id"], key)


# -- discovery and the bound token --------------------------------------------------------------
def test_discovery_lists_the_dpop_signing_algorithms(ehr):
    for document in ("smart-configuration", "openid-configuration"):
        answer = ehr.http.get(f"{ehr.fhir_base}/.well-known/{document}", timeout=30).json()
        algs = answer["dpop_signing_alg_values_supported"]
        assert {"ES256", "ES384", "RS256", "RS384", "PS256"} <= set(algs), algs
        assert not {"none", "HS256"} & set(algs)


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "PS384"])
def test_a_proof_at_the_token_endpoint_binds_the_token_the_fhir_api_then_wants_dpop(ehr, public, alg):
    key = dpop_key(alg)
    body = dpop_flow(ehr, public["client_id"], key)
    assert body["patient"] == "pat-a" and "refresh_token" in body and "id_token" in body
    read = fhir(ehr, "Patient/pat-a", body["access_token"], key)
    assert read.status_code == 200, read.text
    assert read.json()["id"] == "pat-a"
    search = fhir(ehr, "Observation", body["access_token"], key, params={"category": "laboratory"})
    assert search.status_code == 200, search.text  # htu is the URL without its query
    assert [e["resource"]["id"] for e in search.json()["entry"]] == ["obs-a-lab"]


def test_a_token_request_without_a_proof_still_gets_a_bearer_token(ehr, public):
    flow = ehr.code_flow(public["client_id"], SCOPE)  # check_token_response asserts token_type Bearer
    assert "cnf" not in flow.access_claims
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 200
    refused = fhir(ehr, "Patient/pat-a", flow.access_token, dpop_key())  # DPoP scheme for a Bearer token
    assert "not DPoP-bound" in dpop_challenge(refused, "invalid_token")


# -- the resource side: what a proof must get right ---------------------------------------------
def test_a_proof_for_another_url_is_refused(ehr, session, key):
    token = session["access_token"]
    proof = key.proof("GET", f"{ehr.fhir_base}/Patient/pat-b", access_token=token)
    answer = fhir(ehr, "Patient/pat-a", token, key, proof=proof)
    challenge = dpop_challenge(answer, "invalid_dpop_proof")
    assert "htu" in challenge and "/Patient/pat-b" in challenge
    assert answer.json()["resourceType"] == "OperationOutcome"
    proof = key.proof("GET", f"{ehr.fhir_base}/Patient/pat-a?_summary=true", access_token=token)
    assert "query" in dpop_challenge(fhir(ehr, "Patient/pat-a", token, key, proof=proof), "invalid_dpop_proof")


def test_a_proof_for_another_method_is_refused(ehr, session, key):
    token = session["access_token"]
    proof = key.proof("POST", f"{ehr.fhir_base}/Patient/pat-a", access_token=token)
    assert "htm" in dpop_challenge(fhir(ehr, "Patient/pat-a", token, key, proof=proof), "invalid_dpop_proof")


def test_a_replayed_proof_is_refused(ehr, session, key):
    token = session["access_token"]
    proof = key.proof("GET", f"{ehr.fhir_base}/Patient/pat-a", access_token=token)
    assert fhir(ehr, "Patient/pat-a", token, key, proof=proof).status_code == 200
    again = fhir(ehr, "Patient/pat-a", token, key, proof=proof)
    assert "used before" in dpop_challenge(again, "invalid_dpop_proof")
    # same jti in a new proof: still a replay
    jti = jwt.decode(proof, options={"verify_signature": False})["jti"]
    reused = key.proof("GET", f"{ehr.fhir_base}/Patient/pat-a", access_token=token, jti=jti)
    dpop_challenge(fhir(ehr, "Patient/pat-a", token, key, proof=reused), "invalid_dpop_proof")


def test_a_proof_with_the_wrong_ath_is_refused(ehr, session, key):
    token = session["access_token"]
    url = f"{ehr.fhir_base}/Patient/pat-a"
    for proof in (key.proof("GET", url, access_token=token + "x"), key.proof("GET", url)):  # other token; none
        assert "ath" in dpop_challenge(fhir(ehr, "Patient/pat-a", token, key, proof=proof), "invalid_dpop_proof")


def test_a_proof_signed_with_another_key_is_refused(ehr, session, key):
    thief = dpop_key("ES256")
    answer = fhir(ehr, "Patient/pat-a", session["access_token"], thief)  # a perfect proof, wrong key
    challenge = dpop_challenge(answer, "invalid_token")  # RFC 9449 7.1: the binding failed
    assert thief.jkt in challenge and key.jkt in challenge


def test_the_dpop_scheme_without_a_proof_is_refused(ehr, session):
    answer = fhir(ehr, "Patient/pat-a", session["access_token"], None)
    assert "no DPoP proof" in dpop_challenge(answer, "invalid_dpop_proof")


def test_a_dpop_token_sent_as_a_bearer_token_is_refused(ehr, session, key):
    for proof_key in (None, key):  # with or without a proof: the Bearer scheme never carries a bound token
        answer = fhir(ehr, "Patient/pat-a", session["access_token"], proof_key, scheme="Bearer")
        assert "DPoP-bound" in dpop_challenge(answer, "invalid_token")


@pytest.mark.parametrize("offset, words", [(-120, "s ago"), (120, "in the future")])
def test_a_proof_made_too_long_ago_or_in_the_future_is_refused(ehr, session, key, offset, words):
    token = session["access_token"]
    proof = key.proof("GET", f"{ehr.fhir_base}/Patient/pat-a", access_token=token, iat=int(time.time()) + offset)
    assert words in dpop_challenge(fhir(ehr, "Patient/pat-a", token, key, proof=proof), "invalid_dpop_proof")
    recent = key.proof("GET", f"{ehr.fhir_base}/Patient/pat-a", access_token=token, iat=int(time.time()) - 30)
    assert fhir(ehr, "Patient/pat-a", token, key, proof=recent).status_code == 200  # within the 60 s window


def test_malformed_proofs_are_refused_not_crashed_on(ehr, session, key):
    token = session["access_token"]
    url = f"{ehr.fhir_base}/Patient/pat-a"
    secret_jwk = {**key.jwk, "d": "AAAA"}
    cases = {
        "not a signed JWT": "not-a-jwt",
        "typ": key.proof("GET", url, access_token=token, header={"typ": "JWT"}),
        "alg 'HS256'": jwt.encode({"jti": "x", "htm": "GET", "htu": url, "iat": int(time.time())}, "secret" * 6,
                                  algorithm="HS256", headers={"typ": "dpop+jwt", "jwk": key.jwk}),
        "private key": key.proof("GET", url, access_token=token, header={"jwk": secret_jwk}),
        "no jti": key.proof("GET", url, access_token=token, jti=None),
        "signature": key.proof("GET", url, access_token=token)[:-6] + "AAAAAA",
    }
    for words, proof in cases.items():
        challenge = dpop_challenge(fhir(ehr, "Patient/pat-a", token, key, proof=proof), "invalid_dpop_proof")
        assert words in challenge, (words, challenge)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.putrequest("GET", parts.path)
    connection.putheader("Authorization", f"DPoP {token}")
    for _ in range(2):  # two DPoP header lines
        connection.putheader("DPoP", key.proof("GET", url, access_token=token))
    connection.endheaders()
    answer = connection.getresponse()
    challenge = answer.getheader("WWW-Authenticate")
    connection.close()
    assert answer.status == 401 and 'error="invalid_dpop_proof"' in challenge
    assert "several DPoP headers" in challenge


def test_userinfo_takes_dpop_tokens_the_same_way(ehr, session, key):
    url = ehr.smart["userinfo_endpoint"]
    token = session["access_token"]
    answer = ehr.http.get(url, headers={"Authorization": f"DPoP {token}",
                                        "DPoP": key.proof("GET", url, access_token=token)}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"] == ehr.verify_access_token(token)["sub"]
    refused = ehr.http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    dpop_challenge(refused, "invalid_token")
    assert refused.json()["error"] == "invalid_token"
    wrong = ehr.http.get(url, headers={"Authorization": f"DPoP {token}",
                                       "DPoP": key.proof("POST", url, access_token=token)}, timeout=30)
    assert wrong.json()["error"] == "invalid_dpop_proof"
    dpop_challenge(wrong, "invalid_dpop_proof")


def test_introspection_shows_the_binding(ehr, session, key, introspector):
    answer = introspection(ehr, session["access_token"], introspector)
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": key.jkt}
    refresh_answer = introspection(ehr, session["refresh_token"], introspector)
    assert refresh_answer["cnf"] == {"jkt": key.jkt}  # a public client's refresh token is bound too


# -- the token endpoint ---------------------------------------------------------------------------
def test_a_bad_proof_at_the_token_endpoint_is_invalid_dpop_proof_and_spends_nothing(ehr, public, key):
    grant = code(ehr, public["client_id"])
    cases = [key.proof("POST", f"{ehr.fhir_base}/Patient/pat-a"),  # another URL
             key.proof("GET", ehr.token_endpoint),  # another method
             key.proof("POST", ehr.token_endpoint, iat=int(time.time()) - 600)]
    for proof in cases:
        answer = exchange(ehr, public["client_id"], grant, None, proof=proof)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_dpop_proof"
        assert "WWW-Authenticate" not in answer.headers
    bound(ehr, exchange(ehr, public["client_id"], grant, key), key)  # the code was not spent
    replayed = key.proof("POST", ehr.token_endpoint)
    first = exchange(ehr, public["client_id"], code(ehr, public["client_id"]), None, proof=replayed)
    assert first.status_code == 200
    again = exchange(ehr, public["client_id"], code(ehr, public["client_id"]), None, proof=replayed)
    assert again.json()["error"] == "invalid_dpop_proof" and "used before" in again.json()["error_description"]


def test_client_credentials_with_a_proof_get_a_bound_token(ehr, rs384):
    client = ehr.backend_client(rs384)
    key = dpop_key("ES384")
    data = {"grant_type": "client_credentials", "scope": "system/Patient.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(client["client_id"], rs384, ehr.token_endpoint)}
    body = bound(ehr, ehr.token(data, headers={"DPoP": key.proof("POST", ehr.token_endpoint)}), key)
    assert "refresh_token" not in body
    answer = fhir(ehr, "Patient", body["access_token"], key)
    assert answer.status_code == 200 and answer.json()["total"] == 3


def test_a_public_clients_refresh_token_is_bound_to_the_key(ehr, public):
    key = dpop_key()
    body = dpop_flow(ehr, public["client_id"], key)
    other = refresh(ehr, public["client_id"], body["refresh_token"], dpop_key())
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant", other.text
    assert "bound to another DPoP key" in other.json()["error_description"]
    missing = refresh(ehr, public["client_id"], body["refresh_token"], None)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_dpop_proof", missing.text
    # neither spent the refresh token: the key's holder refreshes, and gets a token bound to the same key
    renewed = bound(ehr, refresh(ehr, public["client_id"], body["refresh_token"], key), key)
    assert fhir(ehr, "Patient/pat-a", renewed["access_token"], key).status_code == 200
    assert refresh(ehr, public["client_id"], renewed["refresh_token"], dpop_key()).json()["error"] == "invalid_grant"


def test_a_confidential_clients_refresh_token_is_not_bound(ehr):
    client = ehr.secret_client()
    key = dpop_key()
    body = bound(ehr, exchange(ehr, client["client_id"], code(ehr, client["client_id"]), key, auth=basic(client)), key)
    # RFC 9449 5: bound to the client's credentials instead; a refresh without a proof gets a Bearer token
    plain = refresh(ehr, client["client_id"], body["refresh_token"], None, auth=basic(client))
    assert plain.status_code == 200 and plain.json()["token_type"] == "Bearer", plain.text
    other = dpop_key("RS256")
    bound(ehr, refresh(ehr, client["client_id"], plain.json()["refresh_token"], other, auth=basic(client)), other)


def test_dpop_bound_access_tokens_client_metadata_requires_a_proof(ehr):
    client = ehr.public_client(dpop_bound_access_tokens=True)
    grant = code(ehr, client["client_id"])
    answer = exchange(ehr, client["client_id"], grant, None)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_dpop_proof", answer.text
    assert "dpop_bound_access_tokens" in answer.json()["error_description"]
    key = dpop_key()
    bound(ehr, exchange(ehr, client["client_id"], grant, key), key)  # the same code, now with a proof


def test_dpop_jkt_binds_the_authorization_code_to_a_key(ehr, public):
    key = dpop_key()
    grant = code(ehr, public["client_id"], dpop_jkt=key.jkt)
    other = exchange(ehr, public["client_id"], grant, dpop_key())
    assert other.json()["error"] == "invalid_grant" and "bound to another DPoP key" in other.json()["error_description"]
    missing = exchange(ehr, public["client_id"], grant, None)
    assert missing.json()["error"] == "invalid_dpop_proof"
    bound(ehr, exchange(ehr, public["client_id"], grant, key), key)
    bad = ehr.authorize_error(public["client_id"], SCOPE, dpop_jkt="not-a-thumbprint")
    assert bad["error"] == "invalid_request" and "dpop_jkt" in bad["error_description"]


def test_dpop_events_in_the_audit_trail(ehr, public):
    key = dpop_key()
    start_at = len(ehr.audit())
    body = dpop_flow(ehr, public["client_id"], key)
    fhir(ehr, "Patient/pat-a", body["access_token"], key, scheme="Bearer")
    events = ehr.audit()[start_at:]
    issued = [e for e in events if e["type"] == "token" and e["outcome"] == "success"]
    assert issued[-1]["token_type"] == "DPoP" and issued[-1]["dpop_jkt"] == key.jkt
    refused = [e for e in events if e["type"] == "dpop"]
    assert refused[-1]["outcome"] == "failure" and refused[-1]["error"] == "invalid_token"
    assert refused[-1]["endpoint"] == "/fhir/Patient/pat-a" and refused[-1]["client"] == public["client_id"]
    assert "DPoP-bound" in refused[-1]["reason"]
    assert body["access_token"] not in str(events)


def test_cors_lets_browser_apps_send_proofs_and_read_nonces(ehr):
    preflight = ehr.http.options(f"{ehr.fhir_base}/Patient", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, dpop"}, timeout=30)
    assert "dpop" in preflight.headers["Access-Control-Allow-Headers"].lower()
    answer = ehr.http.get(f"{ehr.fhir_base}/metadata", headers={"Origin": "http://app.example"}, timeout=30)
    exposed = {h.strip() for h in answer.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"DPoP-Nonce", "WWW-Authenticate"} <= exposed


# -- servers with the DPoP flags --------------------------------------------------------------------
@pytest.fixture(scope="module")
def nonce_ehr(dataset_dir):
    server = start(dataset_dir, auto_approve=True, dpop_nonce=True)
    yield Ehr(server)
    server.stop()


def test_server_nonces(nonce_ehr):
    ehr = nonce_ehr
    client = ehr.public_client()
    key = dpop_key()
    grant = code(ehr, client["client_id"])
    first = exchange(ehr, client["client_id"], grant, key)  # no nonce yet
    assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce", first.text
    nonce = first.headers["DPoP-Nonce"]
    forged = exchange(ehr, client["client_id"], grant, None,
                      proof=key.proof("POST", ehr.token_endpoint, nonce=nonce[:-2] + "xx"))
    assert forged.json()["error"] == "use_dpop_nonce"
    answer = exchange(ehr, client["client_id"], grant, None, proof=key.proof("POST", ehr.token_endpoint, nonce=nonce))
    body = bound(ehr, answer, key)  # the code survived the nonce round trip
    assert answer.headers["DPoP-Nonce"]
    # the FHIR API asks for the nonce too: 401 use_dpop_nonce with a DPoP-Nonce header, then 200
    token, url = body["access_token"], f"{ehr.fhir_base}/Patient/pat-a"
    refused = fhir(ehr, "Patient/pat-a", token, key)
    dpop_challenge(refused, "use_dpop_nonce")
    nonce = refused.headers["DPoP-Nonce"]
    read = fhir(ehr, "Patient/pat-a", token, key, proof=key.proof("GET", url, access_token=token, nonce=nonce))
    assert read.status_code == 200, read.text
    # a token request without any proof needs no nonce
    assert ehr.code_flow(client["client_id"], SCOPE).body["token_type"] == "Bearer"


@pytest.fixture(scope="module")
def dpop_only_ehr(dataset_dir):
    server = start(dataset_dir, auto_approve=True, require_dpop=True)
    yield Ehr(server)
    server.stop()


def test_require_dpop_refuses_token_requests_without_a_proof(dpop_only_ehr, rs384):
    ehr = dpop_only_ehr
    client = ehr.public_client()
    grant = code(ehr, client["client_id"])
    answer = exchange(ehr, client["client_id"], grant, None)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_dpop_proof"
    assert "--require-dpop" in answer.json()["error_description"]
    key = dpop_key()
    bound(ehr, exchange(ehr, client["client_id"], grant, key), key)
    backend = ehr.backend_client(rs384)
    refused = ehr.client_credentials(backend["client_id"], rs384)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dpop_proof"


def test_proofs_name_the_public_url(dataset_dir, rs384):
    """Behind a proxy (--public-url) the client addresses, and its proofs name, the public URL."""
    public_url = "https://ehr.example.org:8443/sandbox"
    server = start(dataset_dir, auto_approve=True, public_url=public_url)
    try:
        local = server.local_url
        http = requests.Session()
        registered = http.post(f"{local}/auth/register", json={
            "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [rs384.jwk]}}, timeout=30).json()
        key = dpop_key()
        token_endpoint = f"{public_url}/auth/token"
        data = {"grant_type": "client_credentials", "scope": "system/Patient.rs",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(registered["client_id"], rs384, token_endpoint)}
        local_proof = key.proof("POST", f"{local}/auth/token")
        refused = http.post(f"{local}/auth/token", data=data, headers={"DPoP": local_proof}, timeout=30)
        assert refused.json()["error"] == "invalid_dpop_proof" and public_url in refused.json()["error_description"]
        data["client_assertion"] = client_assertion(registered["client_id"], rs384, token_endpoint)
        answer = http.post(f"{local}/auth/token", data=data, headers={"DPoP": key.proof("POST", token_endpoint)},
                           timeout=30)
        assert answer.status_code == 200 and answer.json()["token_type"] == "DPoP", answer.text
        token = answer.json()["access_token"]
        # the public URL with the default-port and case differences RFC 9449 4.3 normalises away
        proof = key.proof("GET", "HTTPS://EHR.example.org:8443/sandbox/fhir/Patient/pat-a", access_token=token)
        read = http.get(f"{local}/fhir/Patient/pat-a", headers={"Authorization": f"DPoP {token}", "DPoP": proof},
                        timeout=30)
        assert read.status_code == 200, read.text
    finally:
        server.stop()


def test_what_a_client_puts_in_a_proof_cannot_break_the_challenge_header(ehr, session, key):
    token = session["access_token"]
    for htu in ("http://日本.example/fhir/Patient/pat-a", "http://x.example/" + "a" * 5000, 'http://x/"\\'):
        answer = fhir(ehr, "Patient/pat-a", token, key, proof=key.proof("GET", htu, access_token=token))
        challenge = dpop_challenge(answer, "invalid_dpop_proof")
        assert challenge.isascii() and len(challenge) < 1000, challenge[:200]
