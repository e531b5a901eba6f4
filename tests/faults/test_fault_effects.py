"""Every fault kind, proved over real HTTP against a running mockehr.

One shared auto-approve server (module scope); each test adds its faults with
POST /admin/faults and the autouse fixture clears them. Tests that need a
server configured at start (Settings.faults, fault_seed) start their own.
"""

from __future__ import annotations

import json
import socket
import time

import jwt
import pytest
import requests
from joserfc import jwt as jose_jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from tests.auth.conftest import REDIRECT, new_verifier
from tests.faults.conftest import SCOPE, FaultEhr, start_ehr, wait_for_second_start

FHIR_JSON = "application/fhir+json"


def statuses(ehr: FaultEhr, n: int, path: str = "metadata", token: str | None = None) -> list[int]:
    return [ehr.read(token, path).status_code for _ in range(n)]


def outcome(answer: requests.Response) -> dict:
    """The single issue of an OperationOutcome answer."""
    assert answer.headers["Content-Type"].startswith(FHIR_JSON), answer.headers
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert len(body["issue"]) == 1 and body["issue"][0]["severity"] == "error", body
    return body["issue"][0]


def oauth_error(answer: requests.Response, status: int, error: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
    assert "no-store" in answer.headers.get("Cache-Control", "")
    body = answer.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body


def code_flow(ehr: FaultEhr, scope: str = SCOPE):
    client = ehr.public_client()
    return client["client_id"], ehr.code_flow(client["client_id"], scope)


# ---- throttle -----------------------------------------------------------------------------

def test_throttle_answers_429_with_retry_after_and_an_operation_outcome(ehr):
    token = ehr.token_for()
    since = ehr.last_event_id()
    fault = ehr.add_fault("throttle:retry_after=7")
    answer = ehr.read(token, "Patient/pat-a")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    issue = outcome(answer)
    assert issue["code"] == "throttled"
    assert fault["id"] in issue["diagnostics"] and "throttle:retry_after=7" in issue["diagnostics"]
    # the default path /fhir/* matches the bare base too, and a request without a token
    assert ehr.http.get(ehr.fhir_base, timeout=30).status_code == 429
    assert ehr.read(None, "Patient").status_code == 429
    # the fault is the whole story: nothing else refuses the request
    ehr.clear_faults()
    assert ehr.read(token, "Patient/pat-a").json()["id"] == "pat-a"
    fired = ehr.fired(since, fault["id"])
    assert len(fired) == 3
    assert fired[0]["fault_kind"] == "throttle" and fired[0]["spec"] == "throttle:retry_after=7"
    assert fired[0]["path"] == "/fhir/Patient/pat-a" and fired[0]["method"] == "GET"


def test_throttle_default_retry_after_is_one_second_and_browsers_may_read_it(ehr):
    ehr.add_fault("throttle")
    answer = ehr.read(None, headers={"Origin": "http://app.example"})
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert answer.headers["Access-Control-Allow-Origin"] in ("*", "http://app.example")
    exposed = [h.strip().lower() for h in answer.headers["Access-Control-Expose-Headers"].split(",")]
    assert "retry-after" in exposed  # a browser app can honour it


def test_throttle_on_the_token_endpoint_is_an_oauth_error(ehr):
    client = ehr.service_client()
    fault = ehr.add_fault("throttle:path=/auth/token,retry_after=2")
    answer = ehr.service_token(client)
    body = oauth_error(answer, 429, "temporarily_unavailable")
    assert answer.headers["Retry-After"] == "2"
    assert fault["id"] in body["error_description"]
    assert ehr.read(None, "metadata").status_code == 200  # FHIR is not on the fault's path
    ehr.clear_faults()
    assert ehr.service_token(client).status_code == 200  # the fault was the only problem


def test_every_3_fires_on_exactly_every_third_matching_request(ehr):
    fault = ehr.add_fault("throttle:every=3")
    seen = statuses(ehr, 9)
    assert seen == [200, 200, 429, 200, 200, 429, 200, 200, 429]
    assert ehr.fault(fault["id"])["fired"] == 3


def test_every_counts_only_the_requests_it_selects(ehr):
    fault = ehr.add_fault("throttle:every=2,path=/fhir/metadata")
    pattern = []
    for _ in range(4):
        pattern.append(ehr.read(None, "metadata").status_code)
        assert ehr.read(None, ".well-known/smart-configuration").status_code == 200  # not selected: not counted
    assert pattern == [200, 429, 200, 429]
    assert ehr.fault(fault["id"])["fired"] == 2


def test_count_2_fires_twice_then_never(ehr):
    fault = ehr.add_fault("throttle:count=2")
    assert statuses(ehr, 8) == [429, 429] + [200] * 6
    listed = ehr.fault(fault["id"])
    assert (listed["fired"], listed["remaining"], listed["spent"]) == (2, 0, True)


def test_method_post_spares_gets(ehr):
    token = ehr.token_for("system/*.cruds")
    ehr.add_fault("throttle:method=POST")
    assert statuses(ehr, 3) == [200] * 3
    assert ehr.read(token, "Patient/pat-a").status_code == 200
    created = ehr.http.post(f"{ehr.fhir_base}/Patient", json={"resourceType": "Patient"},
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert created.status_code == 429 and outcome(created)["code"] == "throttled"
    search = ehr.http.post(f"{ehr.fhir_base}/Patient/_search", data={"_id": "pat-a"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert search.status_code == 429
    assert ehr.read(token, "Patient").json()["total"] == 3  # nothing was created


def test_path_glob_selects_only_matching_paths(ehr):
    token = ehr.token_for()
    ehr.add_fault("throttle:path=/fhir/Patient*")
    assert ehr.read(token, "Patient/pat-a").status_code == 429
    assert ehr.read(token, "Patient", params={"_id": "pat-b"}).status_code == 429  # the query is not matched
    assert ehr.read(token, "Observation").status_code == 200
    assert ehr.read(token, "Practitioner/prac-1").status_code == 200
    assert ehr.read(None, "metadata").status_code == 200
    assert ehr.http.get(ehr.smart["jwks_uri"], timeout=30).status_code == 200


def test_the_control_api_is_never_faulted(ehr):
    ehr.add_fault("error:path=/*")
    # everything else answers 500 ...
    assert ehr.read(None, "metadata").status_code == 500
    assert ehr.http.get(ehr.smart["jwks_uri"], timeout=30).status_code == 500
    home = ehr.http.get(ehr.url + "/", timeout=30)
    assert home.status_code == 500 and home.headers["Content-Type"].startswith("text/plain")
    # ... but the control API, through which the fault is removed, still works
    assert ehr.admin("GET", "faults").status_code == 200
    assert ehr.admin("GET", "audit").status_code == 200
    assert ehr.admin("POST", "tokens", json={"scope": "system/*.rs"}).status_code == 200
    assert ehr.admin("POST", "launches", json={"patient": "pat-a"}).status_code == 201
    assert ehr.admin("DELETE", "faults").status_code == 200
    assert ehr.read(None, "metadata").status_code == 200


# ---- error ------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, status, code", [
    ("error", 500, "exception"),
    ("error:status=503", 503, "transient"),
    ("error:status=504", 504, "timeout"),
])
def test_error_on_fhir_answers_an_operation_outcome(ehr, spec, status, code):
    token = ehr.token_for()
    fault = ehr.add_fault(spec)
    answer = ehr.read(token, "Patient/pat-a")
    assert answer.status_code == status
    issue = outcome(answer)
    assert issue["code"] == code
    assert fault["id"] in issue["diagnostics"] and spec in issue["diagnostics"]
    assert "Retry-After" not in answer.headers


@pytest.mark.parametrize("status, error", [(500, "server_error"), (503, "temporarily_unavailable"),
                                           (502, "server_error")])
def test_error_on_auth_paths_answers_an_oauth_error(ehr, status, error):
    client = ehr.service_client()
    fault = ehr.add_fault(f"error:status={status},path=/auth/*")
    answer = ehr.service_token(client)
    body = oauth_error(answer, status, error)
    assert fault["id"] in body["error_description"]
    introspected = ehr.http.post(ehr.smart["introspection_endpoint"], data={"token": "x"},
                                 auth=(client["client_id"], client["client_secret"]), timeout=30)
    oauth_error(introspected, status, error)
    assert ehr.read(None, "metadata").status_code == 200  # FHIR is outside /auth/*
    ehr.clear_faults()
    assert ehr.service_token(client).status_code == 200


def test_error_401_is_a_proper_401_with_a_challenge(ehr):
    """A 401 must say how to authenticate (RFC 9110 15.5.2: WWW-Authenticate is a MUST), simulated or not:
    FHIR clients look for the Bearer challenge (RFC 6750 3), OAuth clients for the client one."""
    ehr.add_fault("error:status=401,path=/*")
    fhir = ehr.read(None, "metadata")
    assert fhir.status_code == 401 and outcome(fhir)["code"] == "login"
    assert fhir.headers.get("WWW-Authenticate", "").startswith("Bearer"), fhir.headers
    token = ehr.http.post(ehr.token_endpoint, data={"grant_type": "client_credentials"}, timeout=30)
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in token.headers, token.headers


@pytest.mark.parametrize("status, error", [(500, "server_error"), (503, "temporarily_unavailable")])
def test_error_at_authorize_redirects_back_to_a_registered_app(ehr, status, error):
    client = ehr.public_client()
    fault = ehr.add_fault(f"error:status={status},path=/auth/authorize")
    redirect = ehr.authorize(client["client_id"], SCOPE, state="state-42")  # asserts a 302 to REDIRECT
    assert "code" not in redirect.params
    assert redirect.params["error"] == error
    assert fault["id"] in redirect.params["error_description"]
    assert redirect.params["state"] == "state-42"
    assert redirect.params["iss"] == ehr.issuer
    # without a state, none comes back
    assert "state" not in ehr.authorize(client["client_id"], SCOPE, state=None).params


def test_error_at_authorize_never_redirects_to_an_unknown_redirect_uri(ehr):
    client = ehr.public_client()
    ehr.add_fault("error:status=503,path=/auth/authorize")
    params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": "http://evil.example/cb",
              "scope": SCOPE, "state": "s", "aud": ehr.fhir_base}
    answer = ehr.authorize_raw(params)
    assert answer.status_code == 503 and "Location" not in answer.headers
    assert answer.json()["error"] == "temporarily_unavailable"
    # nor for a client_id the server does not know
    answer = ehr.authorize_raw({**params, "client_id": "never-registered", "redirect_uri": REDIRECT})
    assert answer.status_code == 503 and "Location" not in answer.headers
    # nor without any redirect_uri
    answer = ehr.authorize_raw({k: v for k, v in params.items() if k != "redirect_uri"})
    assert answer.status_code == 503 and "Location" not in answer.headers


# ---- latency ----------------------------------------------------------------------------------

def test_latency_delays_the_selected_requests_only(ehr):
    token = ehr.token_for()
    ehr.add_fault("latency:ms=300,path=/fhir/Patient/*")
    started = time.perf_counter()
    answer = ehr.read(token, "Patient/pat-a")
    slow = time.perf_counter() - started
    assert answer.status_code == 200 and answer.json()["id"] == "pat-a"
    assert slow >= 0.3
    started = time.perf_counter()
    assert ehr.read(token, "Observation").status_code == 200
    assert time.perf_counter() - started < 0.25


def test_latency_composes_with_an_answer_fault(ehr):
    ehr.add_fault("latency:ms=200")
    ehr.add_fault("throttle")
    started = time.perf_counter()
    answer = ehr.read(None, "metadata")
    assert answer.status_code == 429 and time.perf_counter() - started >= 0.2


# ---- rotate-keys --------------------------------------------------------------------------------

def test_rotate_keys_drops_the_old_keys(ehr):
    old_token = ehr.token_for()
    assert ehr.read(old_token).status_code == 200
    old_kids = ehr.kids()
    since = ehr.last_event_id()
    fault = ehr.add_fault("rotate-keys")
    assert fault["spent"] and fault["fired"] == 1  # applied at once
    new_kids = ehr.kids()
    assert new_kids and not new_kids & old_kids and len(new_kids) == 2
    refused = ehr.read(old_token)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    with pytest.raises(jwt.PyJWKClientError):  # a resource server cannot find its key either
        ehr.fresh_jwks_client().get_signing_key_from_jwt(old_token)
    new_token = ehr.token_for()
    assert jwt.get_unverified_header(new_token)["kid"] in new_kids
    assert ehr.verify_access_token(new_token)["client_id"] == "mockehr-cli"
    assert ehr.read(new_token).json()["id"] == "pat-a"
    [event] = ehr.fired(since, fault["id"])
    assert event["fault_kind"] == "rotate-keys" and event["kid"] in new_kids


def test_rotate_keys_keep_old_keeps_old_tokens_working(ehr):
    old_token = ehr.token_for()
    old_kids = ehr.kids()
    ehr.add_fault("rotate-keys:keep_old=true")
    kids = ehr.kids()
    assert old_kids < kids and len(kids) == 4
    assert ehr.read(old_token).status_code == 200
    new_token = ehr.token_for()
    assert jwt.get_unverified_header(new_token)["kid"] in kids - old_kids
    assert ehr.read(new_token).status_code == 200
    ehr.verify_access_token(old_token)  # both verify against the published JWKS
    ehr.verify_access_token(new_token)


def test_rotate_keys_given_at_start_applies_right_after_start(dataset_dir):
    ehr = start_ehr(dataset_dir, faults=("rotate-keys",))
    try:
        [listed] = ehr.faults()
        assert (listed["id"], listed["spent"], listed["fired"]) == ("f1", True, 1)
        [event] = ehr.fired(0)
        assert (event["fault"], event["spec"], event["fault_kind"]) == ("f1", "rotate-keys", "rotate-keys")
        jwks = ehr.jwks()["keys"]
        assert len(jwks) == 2  # the keys before the rotation are gone
        rsa_kid = next(k["kid"] for k in jwks if k["kty"] == "RSA")
        assert event["kid"] == rsa_kid  # the keys in use are the ones the rotation made
        token = ehr.token_for()
        assert jwt.get_unverified_header(token)["kid"] == rsa_kid
        assert ehr.read(token).status_code == 200
        # it does not rotate again later
        ehr.add_fault("throttle:path=/nowhere")
        assert {k["kid"] for k in ehr.jwks()["keys"]} == {k["kid"] for k in jwks}
        assert ehr.read(token).status_code == 200
    finally:
        ehr.server.stop()


# ---- token-lifetime ------------------------------------------------------------------------------

def test_token_lifetime_makes_short_tokens_that_refresh(ehr):
    fault = ehr.add_fault("token-lifetime:seconds=1")
    client = ehr.public_client()
    wait_for_second_start()
    flow = ehr.code_flow(client["client_id"], SCOPE)
    assert flow.body["expires_in"] == 1
    assert flow.access_claims["exp"] - flow.access_claims["iat"] == 1
    assert ehr.read(flow.access_token).status_code == 200
    time.sleep(max(0.0, flow.access_claims["exp"] + 1.05 - time.time()))  # it lives through its exp second
    expired = ehr.read(flow.access_token)
    assert expired.status_code == 401 and "expired" in expired.json()["issue"][0]["diagnostics"]
    wait_for_second_start()
    again = ehr.refresh(client["client_id"], flow.refresh_token)
    ehr.leeway = 2  # the new token may be a second old by the time it is checked
    try:
        body, claims, _ = ehr.check_token_response(again, client["client_id"])
    finally:
        ehr.leeway = 0
    assert body["expires_in"] == 1 and claims["exp"] - claims["iat"] == 1
    assert ehr.read(body["access_token"]).json()["id"] == "pat-a"
    # removing the fault restores the server's lifetime
    assert ehr.remove_fault(fault["id"]).status_code == 200
    assert ehr.mint()["expires_in"] == 3600


def test_one_second_token_lives_its_whole_second(ehr):
    """expires_in is the token's lifetime from the response (RFC 6749 5.1): a token with expires_in=1
    used a few tenths of a second later must still work, wherever in the wall-clock second it was
    minted. Minted late in a second (here after x.85) and used just after the next second starts."""
    ehr.add_fault("token-lifetime:seconds=1")
    token = None
    while token is None:
        while not 0.85 <= time.time() % 1 < 0.9:
            time.sleep(0.005)
        minted_at = time.time()
        answer = ehr.mint()
        received_at = time.time()
        if int(received_at) == int(minted_at):
            token = answer
    assert token["expires_in"] == 1
    time.sleep(max(0.0, int(received_at) + 1.05 - time.time()))  # just past the next whole second
    answer = ehr.read(token["access_token"])
    assert time.time() - minted_at < 0.5
    assert answer.status_code == 200, (f"a token with expires_in=1 was refused {time.time() - minted_at:.2f} s "
                                       f"after it was minted: {answer.text}")
    time.sleep(max(0.0, received_at + 2.1 - time.time()))
    assert ehr.read(token["access_token"]).status_code == 401  # but it does expire


# ---- deny ------------------------------------------------------------------------------------------

def test_deny_ends_authorization_in_access_denied(ehr):
    client = ehr.public_client()
    since = ehr.last_event_id()
    fault = ehr.add_fault("deny")
    for state in ("one", "two"):
        error = ehr.authorize_error(client["client_id"], SCOPE, state=state)
        assert error["error"] == "access_denied"
        assert fault["id"] in error["error_description"] and "deny" in error["error_description"]
        assert error["state"] == state
    assert ehr.fault(fault["id"])["fired"] == 2
    assert len(ehr.fired(since, fault["id"])) == 2
    ehr.remove_fault(fault["id"])
    ehr.code_flow(client["client_id"], SCOPE)


def test_deny_count_1_denies_once_then_approves(ehr):
    client = ehr.public_client()
    fault = ehr.add_fault("deny:count=1")
    assert ehr.authorize_error(client["client_id"], SCOPE)["error"] == "access_denied"
    flow = ehr.code_flow(client["client_id"], SCOPE)
    assert flow.access_claims["patient"] == "pat-a"
    assert ehr.fault(fault["id"])["spent"]


def test_deny_every_2_denies_every_second_authorization(ehr):
    client = ehr.public_client()
    ehr.add_fault("deny:every=2")
    errors = [ehr.authorize(client["client_id"], SCOPE).params.get("error") for _ in range(4)]
    assert errors == [None, "access_denied", None, "access_denied"]


def test_deny_without_auto_approve_never_shows_the_login_page(dataset_dir):
    ehr = start_ehr(dataset_dir, auto_approve=False)
    try:
        client = ehr.public_client()
        ehr.add_fault("deny")
        assert ehr.authorize_error(client["client_id"], SCOPE)["error"] == "access_denied"
    finally:
        ehr.server.stop()


# ---- expire-refresh ---------------------------------------------------------------------------

def test_expire_refresh_refuses_the_refresh_grant_but_not_codes(ehr):
    client_id, flow = code_flow(ehr)
    since = ehr.last_event_id()
    fault = ehr.add_fault("expire-refresh")
    body = ehr.token_error({"grant_type": "refresh_token", "refresh_token": flow.refresh_token,
                            "client_id": client_id}, "invalid_grant", 400)
    assert fault["id"] in body["error_description"] and "expire-refresh" in body["error_description"]
    # the authorization code grant is untouched, and so is the access token
    again = ehr.code_flow(client_id, SCOPE)
    assert ehr.read(again.access_token).status_code == 200
    assert ehr.read(flow.access_token).status_code == 200
    [event] = ehr.fired(since, fault["id"])
    assert event["fault_kind"] == "expire-refresh"


def test_expire_refresh_count_1_then_refresh_works(ehr):
    client_id, flow = code_flow(ehr)
    ehr.add_fault("expire-refresh:count=1")
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": again_token(ehr, client_id),
                     "client_id": client_id}, "invalid_grant", 400)
    answer = ehr.refresh(client_id, flow.refresh_token)
    body, _, _ = ehr.check_token_response(answer, client_id)
    assert ehr.read(body["access_token"]).status_code == 200


def again_token(ehr: FaultEhr, client_id: str) -> str:
    """A second, independent refresh token of the same client."""
    return ehr.code_flow(client_id, SCOPE).refresh_token


# ---- revoke-all ------------------------------------------------------------------------------

def test_revoke_all_kills_every_token_issued_before(ehr):
    introspector = ehr.secret_client()
    system_token = ehr.token_for()
    client_id, flow = code_flow(ehr)
    assert ehr.read(system_token).status_code == 200 and ehr.read(flow.access_token).status_code == 200
    since = ehr.last_event_id()
    fault = ehr.add_fault("revoke-all")
    assert fault["spent"]
    for token in (system_token, flow.access_token):
        refused = ehr.read(token)
        assert refused.status_code == 401, refused.text
        assert "revoked" in refused.json()["issue"][0]["diagnostics"]
    for token in (system_token, flow.access_token, flow.refresh_token):
        answer = ehr.introspect(token, auth=(introspector["client_id"], introspector["client_secret"]))
        assert answer.status_code == 200 and answer.json() == {"active": False}
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": flow.refresh_token, "client_id": client_id},
                    "invalid_grant")
    # tokens issued afterwards work
    fresh = ehr.token_for()
    assert ehr.read(fresh).status_code == 200
    later = ehr.code_flow(client_id, SCOPE)
    assert ehr.read(later.access_token).status_code == 200
    answer = ehr.introspect(fresh, auth=(introspector["client_id"], introspector["client_secret"]))
    assert answer.json()["active"] is True
    [event] = ehr.fired(since, fault["id"])
    assert event["fault_kind"] == "revoke-all" and event["revoked"] >= 2


# ---- drop -------------------------------------------------------------------------------------

def test_drop_closes_the_connection_without_an_answer(ehr):
    token = ehr.token_for()
    since = ehr.last_event_id()
    fault = ehr.add_fault("drop:count=1,path=/fhir/Patient/*")
    with requests.Session() as session:
        with pytest.raises(requests.ConnectionError):
            ehr.read(token, "Patient/pat-a", session=session)
        answer = ehr.read(token, "Patient/pat-a", session=session)  # the next request works
        assert answer.status_code == 200 and answer.json()["id"] == "pat-a"
    listed = ehr.fault(fault["id"])
    assert (listed["fired"], listed["spent"]) == (1, True)
    [event] = ehr.fired(since, fault["id"])
    assert event["fault_kind"] == "drop" and event["path"] == "/fhir/Patient/pat-a"


def test_drop_sends_not_a_single_byte(ehr):
    ehr.add_fault("drop:path=/fhir/metadata")
    host, port = ehr.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: mockehr\r\n\r\n")
        assert raw.recv(1024) == b""  # closed, no status line
    assert ehr.read(None, ".well-known/smart-configuration").status_code == 200


# ---- clock -------------------------------------------------------------------------------------

@pytest.mark.parametrize("offset", [3600, -3600])
def test_clock_moves_the_tokens_time(ehr, offset):
    ehr.add_fault(f"clock:offset={offset}")
    before = time.time()
    answer = ehr.mint()
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert before + offset - 2 <= claims["iat"] <= time.time() + offset + 2
    assert claims["exp"] - claims["iat"] == answer["expires_in"] == 3600
    assert ehr.read(answer["access_token"]).status_code == 200  # this server lives by its own clock
    # a verifier on the real clock sees the skew
    with pytest.raises(jwt.ImmatureSignatureError if offset > 0 else jwt.ExpiredSignatureError):
        ehr.verify_access_token(answer["access_token"])
    # the code flow's tokens (and the id_token) carry the same skew
    flow_client = ehr.public_client()
    redirect = ehr.authorize(flow_client["client_id"], SCOPE, verifier=(verifier := new_verifier()))
    body = ehr.exchange(flow_client["client_id"], redirect.code, verifier).json()
    id_claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert abs(id_claims["iat"] - (time.time() + offset)) < 5


def test_without_the_clock_fault_tokens_are_on_time(ehr):
    fault = ehr.add_fault("clock:offset=-300")
    ehr.remove_fault(fault["id"])
    claims = ehr.verify_access_token(ehr.token_for())
    assert abs(claims["iat"] - time.time()) < 5


# ---- bad-signature ------------------------------------------------------------------------------

def test_bad_signature_tokens_fail_verification(ehr):
    before = ehr.token_for()
    fault = ehr.add_fault("bad-signature")
    forged = ehr.token_for()
    header = jwt.get_unverified_header(forged)
    assert header["kid"] in ehr.kids()  # a published kid, so the verifier finds a key ...
    with pytest.raises(jwt.InvalidSignatureError):  # ... and the signature fails
        ehr.verify_access_token(forged)
    with pytest.raises(BadSignatureError):
        jose_jwt.decode(forged, KeySet.import_key_set(ehr.jwks()))
    refused = ehr.read(forged)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    # id_tokens too
    client = ehr.public_client()
    verifier = new_verifier()
    redirect = ehr.authorize(client["client_id"], SCOPE, verifier=verifier)
    body = ehr.exchange(client["client_id"], redirect.code, verifier).json()
    with pytest.raises(jwt.InvalidSignatureError):
        ehr.verify_id_token(body["id_token"], client["client_id"])
    # tokens issued before the fault still verify and work
    ehr.verify_access_token(before)
    assert ehr.read(before).status_code == 200
    # removing the fault restores good tokens
    ehr.remove_fault(fault["id"])
    good = ehr.token_for()
    ehr.verify_access_token(good)
    assert ehr.read(good).status_code == 200


# ---- jwks-down ------------------------------------------------------------------------------

def test_jwks_down_answers_503_at_the_jwks_uri_only(ehr):
    client = ehr.service_client()
    since = ehr.last_event_id()
    fault = ehr.add_fault("jwks-down")
    down = ehr.http.get(ehr.smart["jwks_uri"], timeout=30)
    body = oauth_error(down, 503, "temporarily_unavailable")
    assert fault["id"] in body["error_description"]
    with pytest.raises(jwt.PyJWKClientError):
        ehr.fresh_jwks_client().get_jwk_set()
    # everything else is fine
    assert ehr.http.get(f"{ehr.fhir_base}/.well-known/smart-configuration", timeout=30).status_code == 200
    assert ehr.http.get(f"{ehr.issuer}/.well-known/openid-configuration", timeout=30).status_code == 200
    answer = ehr.service_token(client)
    assert answer.status_code == 200
    assert ehr.read(answer.json()["access_token"]).status_code == 200
    assert len(ehr.fired(since, fault["id"])) == 2  # the two JWKS requests, nothing else
    ehr.remove_fault(fault["id"])
    assert ehr.http.get(ehr.smart["jwks_uri"], timeout=30).status_code == 200


# ---- slow-body ---------------------------------------------------------------------------------

def test_slow_body_drips_the_whole_answer(ehr):
    token = ehr.token_for()
    reference = ehr.read(token, "_history")
    assert reference.status_code == 200
    size = len(reference.content)
    assert 6000 <= size <= 10000, size  # the system history of the small dataset
    ehr.add_fault("slow-body:bytes_per_second=2000,path=/fhir/_history")
    started = time.perf_counter()
    answer = ehr.read(token, "_history")
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == len(answer.content) == size
    assert json.loads(answer.content) == json.loads(reference.content)
    assert elapsed >= (size - 200) / 2000 * 0.95, elapsed  # all but the first 0.1 s slice waits
    assert elapsed < size / 2000 + 3
    started = time.perf_counter()
    assert ehr.read(token, "Patient").status_code == 200  # other paths are not dripped
    assert time.perf_counter() - started < 0.25


# ---- rate, seeded ------------------------------------------------------------------------------

def _rate_pattern(dataset_dir, seed: int, requests_: int = 40) -> list[bool]:
    ehr = start_ehr(dataset_dir, faults=("throttle:rate=0.5,path=/fhir/metadata",), fault_seed=seed)
    try:
        pattern = []
        for _ in range(requests_):
            status = ehr.read(None, "metadata").status_code
            assert status in (200, 429)
            pattern.append(status == 429)
            # requests the fault does not select do not move its random sequence
            assert ehr.read(None, ".well-known/smart-configuration").status_code == 200
        assert ehr.faults()[0]["fired"] == sum(pattern)
        return pattern
    finally:
        ehr.server.stop()


def test_rate_with_a_seed_repeats_and_another_seed_differs(dataset_dir):
    first = _rate_pattern(dataset_dir, 7)
    second = _rate_pattern(dataset_dir, 7)
    other = _rate_pattern(dataset_dir, 8)
    assert first == second
    assert other != first
    for pattern in (first, other):
        assert 8 <= sum(pattern) <= 32, pattern  # about half, not all or nothing


def test_rate_pattern_repeats_after_reset(dataset_dir):
    ehr = start_ehr(dataset_dir, faults=("throttle:rate=0.5,path=/fhir/metadata",), fault_seed=3)
    try:
        first = statuses(ehr, 20)
        assert ehr.admin("POST", "reset").status_code == 200
        assert statuses(ehr, 20) == first
        assert 429 in first and 200 in first
    finally:
        ehr.server.stop()


# ---- the audit trail -----------------------------------------------------------------------

def test_every_fired_fault_is_an_audit_event(ehr):
    since = ehr.last_event_id()
    fault = ehr.add_fault("throttle:every=2")
    seen = statuses(ehr, 4)
    assert seen == [200, 429, 200, 429]
    events = ehr.audit(since)
    [added] = [e for e in events if e["type"] == "fault" and e["outcome"] == "added"]
    assert (added["fault"], added["spec"]) == (fault["id"], "throttle:every=2")
    fired = ehr.fired(since)
    assert len(fired) == 2
    for event in fired:
        assert event["type"] == "fault" and event["outcome"] == "fired"
        assert event["fault"] == fault["id"] and event["spec"] == "throttle:every=2"
        assert event["fault_kind"] == "throttle" and event["reason"] == fault["description"]
        assert (event["method"], event["path"]) == ("GET", "/fhir/metadata")
    # the ?since= cursor sees only what came after
    assert ehr.fired(fired[0]["id"]) == fired[1:]
