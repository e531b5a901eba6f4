"""The authorization endpoint's refusals: when it must show a page (never redirect), when it
redirects an error back to the app, PKCE policy, state echo, and authorize via POST."""

from __future__ import annotations

import secrets

import pytest

from tests.auth.conftest import REDIRECT, s256

SCOPE = "launch/patient patient/*.rs"


def _page_error(answer, needle: str) -> None:
    assert answer.status_code == 400, answer.text[:300]
    assert "Location" not in answer.headers  # never a redirect
    assert answer.headers["Content-Type"].startswith("text/html")
    assert needle in answer.text


def _params(ehr, client_id: str, **extra) -> dict:
    verifier = secrets.token_urlsafe(48)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": SCOPE,
              "state": "s1", "aud": ehr.fhir_base, "code_challenge": s256(verifier),
              "code_challenge_method": "S256"}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


# -- errors shown as a page -------------------------------------------------------------------

def test_unknown_client_under_strict_is_a_400_page(strict_ehr):
    for method in ("GET", "POST"):
        answer = strict_ehr.authorize_raw(_params(strict_ehr, "never-registered"), method)
        _page_error(answer, "never-registered")


def test_strict_still_serves_registered_clients(strict_ehr):
    client = strict_ehr.public_client()
    strict_ehr.code_flow(client["client_id"], SCOPE)


def test_unregistered_redirect_uri_of_a_registered_client_is_a_400_page(ehr, strict_ehr):
    for server in (ehr, strict_ehr):
        client = server.public_client()
        for uri in ("http://evil.example/callback", REDIRECT + "/extra", REDIRECT + "?x=1", REDIRECT.upper()):
            answer = server.authorize_raw(_params(server, client["client_id"], redirect_uri=uri))
            _page_error(answer, "redirect_uri")


def test_missing_client_id_and_bad_redirect_uri_are_pages(ehr):
    _page_error(ehr.authorize_raw(_params(ehr, None)), "client_id")
    for uri in ("not-absolute", "http://app.example/cb#fragment"):
        _page_error(ehr.authorize_raw(_params(ehr, "auto-" + secrets.token_hex(4), redirect_uri=uri)), uri)


@pytest.mark.parametrize("uri", ["javascript:alert(1)", "data:text/html,hi", "file:///etc/passwd",
                                 "http://app.example/c b", "http://app.example:99999/cb", "http://[::1/cb"])
def test_redirect_uri_that_registration_would_refuse_is_a_page_not_a_500(ehr, uri):
    client_id = "auto-" + secrets.token_hex(6)
    _page_error(ehr.authorize_raw(_params(ehr, client_id, redirect_uri=uri)), "redirect_uri")
    assert ehr.state.clients.get(client_id) is None  # and nothing was registered


def test_auto_registered_client_is_pinned_to_its_first_redirect_uri(ehr):
    client_id = "auto-" + secrets.token_hex(6)
    ehr.code_flow(client_id, SCOPE)  # registered on the spot as a public client
    answer = ehr.authorize_raw(_params(ehr, client_id, redirect_uri="http://other.example/cb"))
    _page_error(answer, "redirect_uri")
    ehr.code_flow(client_id, SCOPE)  # the first one still works


# -- errors redirected to the app -------------------------------------------------------------------

def test_response_type_token_is_unsupported_response_type_with_state_and_iss(ehr):
    client = ehr.public_client()
    for response_type in ("token", "code id_token", None):
        params = ehr.authorize_error(client["client_id"], SCOPE, response_type=response_type, state="st-rt")
        assert params["error"] == "unsupported_response_type"
        assert params["state"] == "st-rt"
        assert params["iss"] == ehr.issuer


@pytest.mark.parametrize("aud", ["http://elsewhere.example/fhir", "{base}/Patient", "{url}", "{base}x"])
def test_wrong_aud_is_an_invalid_request(ehr, aud):
    client = ehr.public_client()
    params = ehr.authorize_error(client["client_id"], SCOPE, aud=aud.format(base=ehr.fhir_base, url=ehr.url))
    assert params["error"] == "invalid_request"
    assert "aud" in params["error_description"]


def test_missing_aud_is_an_invalid_request(ehr):
    client = ehr.public_client()
    params = {k: v for k, v in _params(ehr, client["client_id"]).items() if k != "aud"}
    answer = ehr.authorize_raw(params)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?") and "error=invalid_request" in location and "code=" not in location


def test_aud_with_a_trailing_slash_is_the_fhir_base(ehr):
    client = ehr.public_client()
    ehr.code_flow(client["client_id"], SCOPE, aud=ehr.fhir_base + "/")


def test_missing_or_malformed_scope_is_invalid_scope(ehr):
    client = ehr.public_client()
    for scope in ("", "patient/Observation.sr", "Patient/*.read"):
        params = ehr.authorize_error(client["client_id"], scope)
        assert params["error"] == "invalid_scope", scope


def test_nothing_grantable_is_refused_rather_than_an_empty_scope(ehr):
    # a practitioner with patient/ scopes but no launch/patient: there is no patient, so nothing to grant
    client = ehr.public_client()
    params = ehr.authorize_error(client["client_id"], "patient/*.rs")
    assert params["error"] == "invalid_scope"


# -- PKCE --------------------------------------------------------------------------------------

def test_plain_pkce_is_refused(ehr):
    client = ehr.public_client()
    verifier = secrets.token_urlsafe(48)
    for method in ("plain", None, "S512"):
        params = ehr.authorize_error(client["client_id"], SCOPE, verifier=None, code_challenge=verifier,
                                     code_challenge_method=method)
        assert params["error"] == "invalid_request", method
    for challenge in ("short", "a" * 43 + "\n", "é" * 43, "a" * 129):
        params = ehr.authorize_error(client["client_id"], SCOPE, verifier=None, code_challenge=challenge,
                                     code_challenge_method="S256")
        assert params["error"] == "invalid_request", challenge
    params = ehr.authorize_error(client["client_id"], SCOPE, verifier=None, code_challenge_method="S256")
    assert params["error"] == "invalid_request"


def test_no_pkce_is_accepted_by_default_but_flagged_in_the_audit(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], SCOPE, pkce=False)
    events = [e for e in ehr.audit() if e["type"] == "authorize" and e.get("client") == client["client_id"]]
    assert events and events[-1]["outcome"] == "success"
    assert any("PKCE" in flag for flag in events[-1].get("flags", [])), events[-1]
    with_pkce = ehr.code_flow(client["client_id"], SCOPE)
    events = [e for e in ehr.audit() if e["type"] == "authorize" and e.get("client") == client["client_id"]]
    assert not events[-1].get("flags"), events[-1]
    assert flow.access_token != with_pkce.access_token


def test_no_pkce_is_refused_under_strict(strict_ehr):
    client = strict_ehr.public_client()
    params = strict_ehr.authorize_error(client["client_id"], SCOPE, verifier=None)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]


def test_no_pkce_is_refused_for_a_client_registered_with_require_pkce(ehr):
    client = ehr.public_client(require_pkce=True)
    params = ehr.authorize_error(client["client_id"], SCOPE, verifier=None)
    assert params["error"] == "invalid_request"
    ehr.code_flow(client["client_id"], SCOPE)  # with PKCE it works


# -- state ----------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["a b  c", "ünïcødé ✓ 東京", "a&b=c&d", "=&?#%25+%2B/;", "x" * 600, ""])
def test_state_is_echoed_byte_for_byte(ehr, state):
    client = ehr.public_client()
    redirect = ehr.authorize(client["client_id"], SCOPE, state=state)
    assert redirect.params["state"] == state
    assert [v for k, v in redirect.pairs if k == "state"] == [state]  # exactly once
    error = ehr.authorize_error(client["client_id"], SCOPE, state=state, aud="http://wrong.example")
    assert error["state"] == state


def test_no_state_sent_no_state_returned(ehr):
    client = ehr.public_client()
    redirect = ehr.authorize(client["client_id"], SCOPE, state=None)
    assert "state" not in redirect.params and redirect.params["code"]


def test_redirect_uri_query_is_kept(ehr):
    uri = "http://app.example/cb?tenant=t1&x=a%20b"
    client = ehr.public_client(redirect_uri=uri)
    flow = ehr.code_flow(client["client_id"], SCOPE, redirect_uri=uri)
    assert flow.body["patient"] == "pat-a"
    redirect = ehr.authorize(client["client_id"], SCOPE, redirect_uri=uri)
    assert redirect.params["tenant"] == "t1" and redirect.params["x"] == "a b" and redirect.params["code"]


# -- POST ------------------------------------------------------------------------------------

def test_authorize_via_post_form_works_cross_site(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], SCOPE, method="POST", state="p ö&=")
    assert flow.body["patient"] == "pat-a"
    # a form posted from another site: foreign Origin and Referer change nothing
    params = _params(ehr, client["client_id"])
    answer = ehr.http.post(ehr.smart["authorization_endpoint"], data=params, allow_redirects=False, timeout=30,
                           headers={"Origin": "https://other.example", "Referer": "https://other.example/x"})
    assert answer.status_code == 302 and "code=" in answer.headers["Location"]
