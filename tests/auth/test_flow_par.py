"""Pushed authorization requests (RFC 9126) over real HTTP: the PAR endpoint authenticates the
client as the token endpoint does and checks the request as the authorize endpoint does; the
request_uri it answers stands for the request at the authorize endpoint once, for 60 s, for that
client only; a server flag and a client metadata flag make PAR the only way in."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from mockehr.config import Settings
from tests.auth.conftest import (
    ASSERTION_TYPE, REDIRECT, Ehr, basic, client_assertion, new_verifier, s256, start,
)
from tests.auth.dpop_helper import dpop_key
from tests.helpers import ServeProcess

SCOPE = "launch/patient openid fhirUser patient/*.rs offline_access"
URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


# -- helpers --------------------------------------------------------------------------------
def request_params(ehr: Ehr, client_id: str | None, verifier: str, **extra) -> dict:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": SCOPE,
              "state": "st-par", "aud": ehr.fhir_base, "code_challenge": s256(verifier),
              "code_challenge_method": "S256", "nonce": "n-par"}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def push_raw(ehr: Ehr, data: dict, auth=None, headers: dict | None = None) -> requests.Response:
    return ehr.http.post(ehr.smart["pushed_authorization_request_endpoint"], data=data, auth=auth, headers=headers,
                         timeout=30)


def push(ehr: Ehr, data: dict, auth=None, headers: dict | None = None) -> dict:
    answer = push_raw(ehr, data, auth, headers)
    assert answer.status_code == 201, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert "no-store" in answer.headers["Cache-Control"]
    body = answer.json()
    assert body["request_uri"].startswith(URI_PREFIX) and len(body["request_uri"]) > len(URI_PREFIX) + 20
    assert body["expires_in"] == 60
    return body


def push_error(ehr: Ehr, data: dict, error: str, status: int = 400, auth=None) -> str:
    answer = push_raw(ehr, data, auth)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error, answer.text
    assert "request_uri" not in answer.json()
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    return answer.json()["error_description"]


def authorize_uri(ehr: Ehr, client_id: str, request_uri: str, **extra) -> requests.Response:
    return ehr.authorize_raw({"client_id": client_id, "request_uri": request_uri, **extra})


def redirect_params(answer: requests.Response) -> dict:
    assert answer.status_code == 302, f"{answer.status_code}: {answer.text[:300]}"
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return dict(parse_qsl(location.query))


def page_error(answer: requests.Response, needle: str) -> None:
    assert answer.status_code == 400, answer.text[:300]
    assert "Location" not in answer.headers
    assert needle in html.unescape(answer.text), answer.text[:1000]


def pushed_flow(ehr: Ehr, client_id: str, *, auth=None, push_auth=None, push_extra: dict | None = None) -> dict:
    """PAR, then authorize with client_id + request_uri only, then the token; the token response."""
    verifier = new_verifier()
    data = request_params(ehr, client_id, verifier)
    data.update(push_extra or {})
    pushed = push(ehr, data, auth=push_auth)
    params = redirect_params(authorize_uri(ehr, client_id, pushed["request_uri"]))
    assert params["state"] == "st-par" and params["iss"] == ehr.issuer
    answer = ehr.exchange(client_id, params["code"], verifier, auth=auth)
    body, _, _ = ehr.check_token_response(answer, client_id, nonce="n-par", id_token_expected=True)
    assert body["patient"] == "pat-a"
    return body


# -- discovery ------------------------------------------------------------------------------
def test_discovery_advertises_the_par_endpoint(ehr):
    for document in ("smart-configuration", "openid-configuration"):
        answer = ehr.http.get(f"{ehr.fhir_base}/.well-known/{document}", timeout=30).json()
        assert answer["pushed_authorization_request_endpoint"] == f"{ehr.url}/auth/par"
        assert "require_pushed_authorization_requests" not in answer  # only with --require-par


# -- happy paths --------------------------------------------------------------------------------
def test_a_public_client_pushes_its_request(ehr):
    client = ehr.public_client()
    body = pushed_flow(ehr, client["client_id"])
    assert ehr.fhir("GET", "Patient/pat-a", body["access_token"]).status_code == 200


def test_an_unknown_public_client_is_registered_on_the_spot_at_par(ehr):
    pushed_flow(ehr, "par-newcomer")
    assert ehr.state.clients.get("par-newcomer").is_public


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_confidential_client_authenticates_its_push(ehr, method):
    client = ehr.secret_client(method)
    if method == "client_secret_basic":
        pushed_flow(ehr, client["client_id"], auth=basic(client), push_auth=basic(client))
    else:
        secret = {"client_secret": client["client_secret"]}
        verifier = new_verifier()
        pushed = push(ehr, {**request_params(ehr, client["client_id"], verifier), **secret})
        params = redirect_params(authorize_uri(ehr, client["client_id"], pushed["request_uri"]))
        answer = ehr.exchange(client["client_id"], params["code"], verifier, extra=secret)
        ehr.check_token_response(answer, client["client_id"], nonce="n-par")


def test_a_private_key_jwt_client_may_address_its_assertion_to_the_issuer_or_par_endpoint(ehr, es384):
    client = ehr.register(redirect_uris=[REDIRECT], token_endpoint_auth_method="private_key_jwt",
                          jwks={"keys": [es384.jwk]}, grant_types=["authorization_code"])
    client_id = client["client_id"]
    for audience in (ehr.issuer, ehr.smart["pushed_authorization_request_endpoint"], ehr.token_endpoint):
        assertion = {"client_assertion_type": ASSERTION_TYPE,
                     "client_assertion": client_assertion(client_id, es384, audience)}
        push(ehr, {**request_params(ehr, client_id, new_verifier()), **assertion})
    elsewhere = {"client_assertion_type": ASSERTION_TYPE,
                 "client_assertion": client_assertion(client_id, es384, "https://elsewhere.example/token")}
    assert "aud" in push_error(ehr, {**request_params(ehr, client_id, new_verifier()), **elsewhere},
                               "invalid_client", 401)


def test_only_the_pushed_parameters_count(ehr):
    client = ehr.public_client()
    verifier = new_verifier()
    pushed = push(ehr, request_params(ehr, client["client_id"], verifier, scope="launch/patient patient/*.rs"))
    # parameters next to request_uri are ignored (RFC 9126 4): neither this scope nor this state is used
    params = redirect_params(authorize_uri(ehr, client["client_id"], pushed["request_uri"], scope="user/*.cruds",
                                           state="from-the-query"))
    assert params["state"] == "st-par"
    body = ehr.check_token_response(ehr.exchange(client["client_id"], params["code"], verifier),
                                    client["client_id"])[0]
    assert body["scope"] == "launch/patient patient/*.rs"


# -- request_uri: single use, short-lived, this client's only ------------------------------------------------
def test_a_request_uri_is_good_once(ehr):
    client = ehr.public_client()
    pushed = push(ehr, request_params(ehr, client["client_id"], new_verifier()))
    assert "code" in redirect_params(authorize_uri(ehr, client["client_id"], pushed["request_uri"]))
    again = redirect_params(authorize_uri(ehr, client["client_id"], pushed["request_uri"]))
    assert again["error"] == "invalid_request" and "code" not in again
    assert "already used" in again["error_description"]
    assert again["state"] == "st-par" and again["iss"] == ehr.issuer  # the pushed request's own state


def test_a_request_uri_expires_after_60_seconds(ehr):
    client = ehr.public_client()
    pushed = push(ehr, request_params(ehr, client["client_id"], new_verifier()))
    added = ehr.http.post(f"{ehr.url}/admin/faults", json={"spec": "clock:offset=61"}, timeout=30)
    assert added.status_code == 201, added.text
    try:
        expired = redirect_params(authorize_uri(ehr, client["client_id"], pushed["request_uri"]))
    finally:
        ehr.http.delete(f"{ehr.url}/admin/faults/{added.json()['id']}", timeout=30)
    assert expired["error"] == "invalid_request" and "expired" in expired["error_description"]
    # within its lifetime a request_uri works
    fresh = push(ehr, request_params(ehr, client["client_id"], new_verifier()))
    assert "code" in redirect_params(authorize_uri(ehr, client["client_id"], fresh["request_uri"]))


def test_a_request_uri_belongs_to_the_client_that_pushed_it(ehr):
    owner, other = ehr.public_client(), ehr.public_client()
    pushed = push(ehr, request_params(ehr, owner["client_id"], new_verifier()))
    page_error(authorize_uri(ehr, other["client_id"], pushed["request_uri"]), "pushed by another client")
    page_error(ehr.authorize_raw({"request_uri": pushed["request_uri"]}), "no client_id")
    # the owner's request_uri was not spent by the other client's attempt
    assert "code" in redirect_params(authorize_uri(ehr, owner["client_id"], pushed["request_uri"]))


def test_an_unknown_request_uri_is_an_error_page(ehr):
    client = ehr.public_client()
    page_error(authorize_uri(ehr, client["client_id"], URI_PREFIX + "never-issued"), "not known here")


# -- what the PAR endpoint refuses ----------------------------------------------------------------------
def test_the_par_endpoint_checks_what_the_authorize_endpoint_checks(ehr):
    client = ehr.public_client()
    cid = client["client_id"]
    verifier = new_verifier()
    cases = [
        ({"redirect_uri": "http://evil.example/cb"}, "invalid_request", "not registered"),
        ({"scope": "patient/Observation.zz"}, "invalid_scope", ""),
        ({"code_challenge_method": "plain"}, "invalid_request", "S256"),
        ({"aud": "https://other.example/fhir"}, "invalid_request", "aud"),
        ({"launch": "no-such-launch", "scope": "launch patient/*.rs"}, "invalid_request", "launch"),
        ({"response_type": "token"}, "unsupported_response_type", ""),
        ({"request_uri": URI_PREFIX + "x"}, "invalid_request", "request_uri must not be pushed"),
        ({"dpop_jkt": "short"}, "invalid_request", "dpop_jkt"),
    ]
    for extra, error, words in cases:
        description = push_error(ehr, request_params(ehr, cid, verifier, **extra), error)
        assert words in description, (extra, description)


def test_confidential_clients_must_authenticate_at_par(ehr, strict_ehr):
    client = ehr.secret_client()
    data = request_params(ehr, client["client_id"], new_verifier())
    assert "client_secret_basic" in push_error(ehr, data, "invalid_client", 401)  # client_id alone
    push_error(ehr, data, "invalid_client", 401, auth=(client["client_id"], "wrong"))
    unknown = request_params(strict_ehr, "never-registered", new_verifier())
    assert "--strict" in push_error(strict_ehr, unknown, "invalid_client", 401)
    push_error(ehr, request_params(ehr, None, new_verifier()), "invalid_client", 401)


def test_pushes_are_audited(ehr):
    client = ehr.public_client()
    start_at = len(ehr.audit())
    pushed = push(ehr, request_params(ehr, client["client_id"], new_verifier()))
    push_raw(ehr, request_params(ehr, client["client_id"], new_verifier(), scope=""))
    events = [e for e in ehr.audit()[start_at:] if e["type"] == "par"]
    assert [e["outcome"] for e in events] == ["success", "failure"]
    assert events[0]["client"] == client["client_id"] and events[0]["scope"] == SCOPE
    assert pushed["request_uri"] not in str(events)  # redacted, like every token
    assert events[1]["error"] == "invalid_scope" and events[1]["reason"]


# -- PAR required -------------------------------------------------------------------------------------------
def test_a_client_registered_with_require_pushed_authorization_requests(ehr):
    client = ehr.public_client(require_pushed_authorization_requests=True)
    refused = ehr.authorize_error(client["client_id"], SCOPE, verifier=new_verifier())
    assert refused["error"] == "invalid_request"
    assert "require_pushed_authorization_requests" in refused["error_description"]
    pushed_flow(ehr, client["client_id"])


@pytest.fixture(scope="module")
def par_only(dataset_dir):
    server = start(dataset_dir, auto_approve=True, require_par=True)
    yield Ehr(server)
    server.stop()


def test_require_par_refuses_requests_that_were_not_pushed(par_only):
    ehr = par_only
    for document in ("smart-configuration", "openid-configuration"):
        answer = ehr.http.get(f"{ehr.fhir_base}/.well-known/{document}", timeout=30).json()
        assert answer["require_pushed_authorization_requests"] is True
    client = ehr.public_client()
    refused = ehr.authorize_error(client["client_id"], SCOPE, verifier=new_verifier())
    assert refused["error"] == "invalid_request" and "--require-par" in refused["error_description"]
    # an unknown client is not registered on the spot for a request that is refused anyway
    page_error(ehr.authorize_raw(request_params(ehr, "not-pushed-app", new_verifier())), "--require-par")
    assert ehr.state.clients.get("not-pushed-app") is None
    pushed_flow(ehr, client["client_id"])
    pushed_flow(ehr, "pushed-newcomer")  # registered on the spot by its push


# -- PAR and DPoP -----------------------------------------------------------------------------------------
def test_a_proof_sent_with_the_push_binds_the_code_to_its_key(ehr):
    client = ehr.public_client()
    key = dpop_key()
    par_url = ehr.smart["pushed_authorization_request_endpoint"]
    verifier = new_verifier()
    pushed = push(ehr, request_params(ehr, client["client_id"], verifier),
                  headers={"DPoP": key.proof("POST", par_url)})
    code = redirect_params(authorize_uri(ehr, client["client_id"], pushed["request_uri"]))["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": client["client_id"], "code_verifier": verifier}
    thief = ehr.token(data, headers={"DPoP": dpop_key().proof("POST", ehr.token_endpoint)})
    assert thief.json()["error"] == "invalid_grant", thief.text
    answer = ehr.token(data, headers={"DPoP": key.proof("POST", ehr.token_endpoint)})
    assert answer.status_code == 200 and answer.json()["token_type"] == "DPoP", answer.text
    # dpop_jkt that disagrees with the proof's key; a proof for another URL
    disagree = push_raw(ehr, request_params(ehr, client["client_id"], verifier, dpop_jkt=dpop_key().jkt),
                        headers={"DPoP": key.proof("POST", par_url)})
    assert disagree.status_code == 400 and disagree.json()["error"] == "invalid_request", disagree.text
    wrong_url = push_raw(ehr, request_params(ehr, client["client_id"], verifier),
                         headers={"DPoP": key.proof("POST", ehr.token_endpoint)})
    assert wrong_url.status_code == 400 and wrong_url.json()["error"] == "invalid_dpop_proof"



def test_a_pushed_request_goes_through_the_login_pages_like_any_other(dataset_dir):
    server = start(dataset_dir)  # no --auto-approve: login, pickers and consent pages
    try:
        ehr = Ehr(server)
        client = ehr.public_client()
        pushed = push(ehr, request_params(ehr, client["client_id"], new_verifier()))
        answer = authorize_uri(ehr, client["client_id"], pushed["request_uri"])
        assert answer.status_code == 302, answer.text[:300]
        location = urlsplit(answer.headers["Location"])
        assert location.path == "/auth/login"
        pending = ehr.state.pending_request(dict(parse_qsl(location.query))["request"])
        assert (pending.request.state, pending.request.scopes.text(), pending.request.nonce) == ("st-par", SCOPE,
                                                                                                 "n-par")
        again = redirect_params(authorize_uri(ehr, client["client_id"], pushed["request_uri"]))
        assert again["error"] == "invalid_request"  # a reload of the authorize URL: the request_uri is spent
    finally:
        server.stop()


def test_the_serve_flags_and_their_environment_variables():
    settings = Settings.from_env({"MOCKEHR_REQUIRE_PAR": "true", "MOCKEHR_REQUIRE_DPOP": "1",
                                  "MOCKEHR_DPOP_NONCE": "yes"})
    assert (settings.require_par, settings.require_dpop, settings.dpop_nonce) == (True, True, True)
    assert not Settings().require_par and not Settings().require_dpop and not Settings().dpop_nonce
    with ServeProcess("--auto-approve", "--require-par", "--require-dpop", "--dpop-nonce") as server:
        smart = requests.get(f"{server.fhir_base}/.well-known/smart-configuration", timeout=30).json()
        assert smart["require_pushed_authorization_requests"] is True
        client = requests.post(smart["registration_endpoint"], json={"redirect_uris": [REDIRECT],
                                                                     "token_endpoint_auth_method": "none"},
                               timeout=30).json()
        verifier = new_verifier()
        data = {"client_id": client["client_id"], "response_type": "code", "redirect_uri": REDIRECT,
                "scope": "launch/patient patient/*.rs", "aud": server.fhir_base,
                "code_challenge": s256(verifier), "code_challenge_method": "S256"}
        key = dpop_key()
        par_url = smart["pushed_authorization_request_endpoint"]
        first = requests.post(par_url, data=data, headers={"DPoP": key.proof("POST", par_url)}, timeout=30)
        assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce"  # --dpop-nonce
        nonce = first.headers["DPoP-Nonce"]
        bound = requests.post(par_url, data=data, headers={"DPoP": key.proof("POST", par_url, nonce=nonce)},
                              timeout=30)
        assert bound.status_code == 201, bound.text
        pushed = requests.post(par_url, data=data, timeout=30)  # no proof: no nonce needed, the code is not bound
        assert pushed.status_code == 201, pushed.text
        not_pushed = requests.get(smart["authorization_endpoint"], params=data, allow_redirects=False, timeout=30)
        assert "error=invalid_request" in not_pushed.headers["Location"]  # --require-par
        code = redirect_params(requests.get(smart["authorization_endpoint"], allow_redirects=False, timeout=30,
                                            params={"client_id": client["client_id"],
                                                    "request_uri": pushed.json()["request_uri"]}))["code"]
        token = {"grant_type": "authorization_code", "code": code, "client_id": client["client_id"],
                 "redirect_uri": REDIRECT, "code_verifier": verifier}
        refused = requests.post(smart["token_endpoint"], data=token, timeout=30)
        assert refused.json()["error"] == "invalid_dpop_proof"  # --require-dpop
        assert "--require-dpop" in refused.json()["error_description"]
        proof = key.proof("POST", smart["token_endpoint"], nonce=refused.headers["DPoP-Nonce"])
        answer = requests.post(smart["token_endpoint"], data=token, headers={"DPoP": proof}, timeout=30)
        assert answer.status_code == 200 and answer.json()["token_type"] == "DPoP", answer.text
