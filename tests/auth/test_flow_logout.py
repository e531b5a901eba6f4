"""RP-initiated logout and back-channel logout over real HTTP: id_token_hint (verified, expired
ones accepted), post_logout_redirect_uri only when registered, state echoed, the confirmation page,
online_access grants revoked at logout (offline_access ones survive), logout tokens delivered to a
receiver that checks them against the JWKS, and a receiver that is down, slow or failing."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

import jwt
import pytest
import requests

from tests.auth.signin_helpers import (REDIRECT, Browser, Clock, Forms, audit, exchange, register,
                                       signed_claims, start_server, wait_for)

ADULT = "p00001-diabetes-htn"
USER = f"Patient/{ADULT}"
SCOPE = "launch/patient openid fhirUser patient/*.rs"
BYE = "http://app.example/signed-out"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


# -- a back-channel logout receiver ------------------------------------------------------
class Receiver:
    """A tiny HTTP server that records every POST (headers and form) and answers `status`."""

    def __init__(self, status: int = 200):
        self.status = status
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                outer.received.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                       "form": {k: v[0] for k, v in parse_qs(body).items()}})
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/backchannel") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
def clock():
    return Clock()


@pytest.fixture(scope="module")
def server(clock):
    running = start_server(clock)
    yield running
    running.stop()


@pytest.fixture
def root(server, clock):
    yield server.url
    clock.offset = 0


def service(server):
    return server.app.extensions["mockehr.auth"]


def sign_in(browser: Browser, client_id: str, scope: str = SCOPE, first: bool = True) -> dict:
    """Sign in (login page on the first app, single sign-on after), consent; the token response with the
    verified id_token claims under "claims"."""
    attempt = browser.authorize(client_id, scope)
    if first:
        assert browser.path == "/auth/login", browser.path
        browser.submit("user", USER)
    assert browser.path == "/auth/consent", browser.path
    browser.submit("decision", "approve")
    token = exchange(browser.root, attempt, browser.code(attempt))
    token["claims"] = signed_claims(browser.root, token["id_token"], client_id)
    return token


def browser_text(answer: requests.Response) -> str:
    return Forms(answer.text).text


def logout(browser: Browser, **params) -> requests.Response:
    return browser.get(f"{browser.root}/auth/logout", **params)


def fhir_status(root: str, token: str) -> int:
    return requests.get(f"{root}/fhir/Patient/{ADULT}", headers={"Authorization": f"Bearer {token}"},
                        timeout=30).status_code


def refresh(root: str, client_id: str, refresh_token: str) -> requests.Response:
    return requests.post(f"{root}/auth/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id})


# -- RP-initiated logout ----------------------------------------------------------------
def test_discovery_advertises_logout(root):
    config = requests.get(f"{root}/fhir/.well-known/openid-configuration", timeout=30).json()
    assert config["end_session_endpoint"] == f"{root}/auth/logout"
    assert config["backchannel_logout_supported"] is True and config["backchannel_logout_session_supported"] is True
    assert config["frontchannel_logout_supported"] is False
    assert "sid" in config["claims_supported"]


def test_logout_with_id_token_hint_goes_back_to_the_registered_uri_with_state(root):
    app = register(root, post_logout_redirect_uris=[BYE])
    assert app["post_logout_redirect_uris"] == [BYE], "the metadata is echoed"
    browser = Browser(root)
    token = sign_in(browser, app["client_id"])
    answer = logout(browser, id_token_hint=token["id_token"], post_logout_redirect_uri=BYE, state="bye-1")
    assert answer.status_code == 302, answer.text[:300]
    location = answer.headers["Location"]
    assert location.split("?")[0] == BYE and dict(parse_qsl(urlsplit(location).query)) == {"state": "bye-1"}
    assert "mockehr_session=;" in answer.headers["Set-Cookie"] and browser.session_cookie is None
    event = [e for e in audit(root, "logout") if e.get("sid") == token["claims"]["sid"]][-1]
    assert event["outcome"] == "success" and event["user"] == USER and event["client"] == app["client_id"]
    assert "RP-initiated logout" in event["reason"] and event["id_token_hint"] == "verified"

    browser.authorize(app["client_id"], SCOPE)
    assert browser.path == "/auth/login", "signed out: the next app shows the login page"
    browser.authorize(app["client_id"], SCOPE, prompt="none")
    assert browser.at_app()["error"] == "login_required"


def test_an_unregistered_post_logout_redirect_uri_ends_on_the_signed_out_page(root):
    app = register(root, post_logout_redirect_uris=[BYE])
    browser = Browser(root)
    token = sign_in(browser, app["client_id"])
    answer = logout(browser, id_token_hint=token["id_token"], post_logout_redirect_uri="http://evil.example/x",
                    state="s")
    assert answer.status_code == 200 and "text/html" in answer.headers["Content-Type"]
    assert "Location" not in answer.headers
    text = " ".join(answer.text.split())
    assert "You are signed out" in text and "http://evil.example/x" in text and "did not register" in text
    assert answer.headers["Cache-Control"] == "no-store"
    assert service_session(root, browser) is None


def service_session(root: str, browser: Browser):
    """Whether this browser is still signed in, as the server sees it (prompt=none answers)."""
    browser.authorize(register(root)["client_id"], SCOPE, prompt="none")
    params = browser.at_app()
    return None if params.get("error") == "login_required" else params


def test_logout_without_a_uri_shows_the_signed_out_page_and_escapes_what_it_echoes(root):
    app = register(root, client_name="<b>Bold</b> app")
    browser = Browser(root)
    token = sign_in(browser, app["client_id"])
    answer = logout(browser, id_token_hint=token["id_token"])
    assert answer.status_code == 200 and "You are signed out" in answer.text
    assert "&lt;b&gt;Bold&lt;/b&gt; app" in answer.text and "<b>Bold</b>" not in answer.text


def test_an_expired_id_token_hint_is_accepted(root, clock):
    app = register(root, post_logout_redirect_uris=[BYE])
    browser = Browser(root)
    token = sign_in(browser, app["client_id"])
    clock.advance(2 * 3600)  # the id_token (1 h) has expired, by the server's clock
    assert token["claims"]["exp"] < clock()
    answer = logout(browser, id_token_hint=token["id_token"], post_logout_redirect_uri=BYE)
    assert answer.status_code == 302 and answer.headers["Location"] == BYE


@pytest.mark.parametrize("tamper", ["bad signature", "not a jwt", "access token", "other issuer"])
def test_a_bad_id_token_hint_signs_nobody_out(root, tamper):
    app = register(root, post_logout_redirect_uris=[BYE])
    browser = Browser(root)
    token = sign_in(browser, app["client_id"])
    hint = {"bad signature": token["id_token"][:-6] + "AAAAAA", "not a jwt": "hello",
            "access token": token["access_token"],
            "other issuer": other_issuer_id_token(token["claims"])}[tamper]
    answer = logout(browser, id_token_hint=hint, post_logout_redirect_uri=BYE)
    assert answer.status_code == 400 and "Sign-out refused" in answer.text and "Location" not in answer.headers
    assert service_session(root, browser) is not None, "still signed in"
    failed = audit(root, "logout")[-1]
    assert failed["outcome"] == "failure" and failed["reason"]


def other_issuer_id_token(claims: dict) -> str:
    """An ID token for the same client and session, signed by a key this server never published."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({**claims, "iss": "http://elsewhere.example/fhir"}, key, algorithm="RS256")


def test_client_id_must_match_the_id_token_hint(root):
    app, other = register(root), register(root)
    browser = Browser(root)
    token = sign_in(browser, app["client_id"])
    answer = logout(browser, id_token_hint=token["id_token"], client_id=other["client_id"])
    assert answer.status_code == 400 and "does not match the id_token_hint" in answer.text
    answer = logout(browser, client_id="no-such-app")
    assert answer.status_code == 400 and "not an app registered here" in answer.text


def test_without_a_hint_the_user_is_asked_first(root):
    app = register(root, post_logout_redirect_uris=[BYE])
    browser = Browser(root)
    sign_in(browser, app["client_id"])
    answer = logout(browser, client_id=app["client_id"], post_logout_redirect_uri=BYE, state="s2")
    assert answer.status_code == 200 and "Sign out of mockehr?" in answer.text and "no id_token_hint" in answer.text
    assert service_session(root, browser) is not None, "asking signs nobody out"

    logout(browser, client_id=app["client_id"], post_logout_redirect_uri=BYE, state="s2")
    stayed = browser.submit("decision", "stay")
    assert stayed.status_code == 303 and stayed.headers["Location"] == f"{BYE}?state=s2"
    assert service_session(root, browser) is not None

    logout(browser, client_id=app["client_id"], post_logout_redirect_uri=BYE, state="s2")
    forged = browser.submit("decision", "logout", csrf_token="forged")
    assert forged.status_code == 400 and "Form refused" in forged.text
    assert service_session(root, browser) is not None

    logout(browser, client_id=app["client_id"], post_logout_redirect_uri=BYE, state="s2")
    done = browser.submit("decision", "logout")
    assert done.status_code == 303 and done.headers["Location"] == f"{BYE}?state=s2"
    assert service_session(root, browser) is None
    assert "confirmed by the user" in audit(root, "logout")[-1]["reason"]


def test_a_hint_from_another_browser_is_confirmed_then_ends_that_session(root):
    app = register(root)
    alice = Browser(root)
    token = sign_in(alice, app["client_id"])
    elsewhere = Browser(root)  # e.g. the app's back end, without the user's cookies
    answer = logout(elsewhere, id_token_hint=token["id_token"])
    assert answer.status_code == 200 and "Sign out of mockehr?" in answer.text
    assert "not this browser's" in browser_text(answer)
    assert service_session(root, alice) is not None
    elsewhere.submit("decision", "logout")
    assert "You are signed out" in elsewhere.response.text
    assert service_session(root, alice) is None, "the hint's session ended"


def test_logout_when_nobody_is_signed_in_just_says_so(root):
    app = register(root, post_logout_redirect_uris=[BYE])
    answer = logout(Browser(root), client_id=app["client_id"], post_logout_redirect_uri=BYE)
    assert answer.status_code == 302 and answer.headers["Location"] == BYE
    assert "nobody was signed in" in audit(root, "logout")[-1]["reason"]


# -- online_access grants end with the session -----------------------------------------
def test_logout_revokes_online_access_grants_and_keeps_offline_ones(root):
    online_app, offline_app, plain_app = register(root), register(root), register(root)
    browser = Browser(root)
    online = sign_in(browser, online_app["client_id"], SCOPE + " online_access")
    offline = sign_in(browser, offline_app["client_id"], SCOPE + " offline_access", first=False)
    plain = sign_in(browser, plain_app["client_id"], first=False)
    assert online["claims"]["sid"] == offline["claims"]["sid"] == plain["claims"]["sid"]
    assert online["refresh_token"] and offline["refresh_token"] and "refresh_token" not in plain
    refreshed = refresh(root, online_app["client_id"], online["refresh_token"])
    assert refreshed.status_code == 200
    online["refresh_token"], online["access_token"] = refreshed.json()["refresh_token"], \
        refreshed.json()["access_token"]

    logout(browser, id_token_hint=online["id_token"])
    assert fhir_status(root, online["access_token"]) == 401, "online_access: the grant ended with the session"
    gone = refresh(root, online_app["client_id"], online["refresh_token"])
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant" and "revoked" in gone.text
    assert fhir_status(root, offline["access_token"]) == 200
    kept = refresh(root, offline_app["client_id"], offline["refresh_token"])
    assert kept.status_code == 200, "offline_access survives logout"
    assert fhir_status(root, plain["access_token"]) == 200, "an access token without a refresh token lives on"
    event = [e for e in audit(root, "logout") if e.get("sid") == online["claims"]["sid"]][-1]
    assert len(event["revoked"]) == 1


# -- back-channel logout -------------------------------------------------------------------
def test_back_channel_logout_tokens_reach_every_app_of_the_session(root, receiver, server):
    first = register(root, backchannel_logout_uri=receiver.url("/first?tenant=a"),
                     backchannel_logout_session_required=True)
    second = register(root, backchannel_logout_uri=receiver.url("/second"), subject_type="pairwise")
    silent = register(root)  # no backchannel_logout_uri: not notified
    browser = Browser(root)
    one = sign_in(browser, first["client_id"])
    two = sign_in(browser, second["client_id"], first=False)
    sign_in(browser, silent["client_id"], first=False)
    assert two["claims"]["sub"] != USER, "pairwise"

    started = time.monotonic()
    answer = logout(browser, id_token_hint=one["id_token"])
    assert answer.status_code == 200 and time.monotonic() - started < 2
    service(server).notifier.wait()
    wait_for(lambda: len(receiver.received) == 2)
    by_path = {r["path"]: r for r in receiver.received}
    assert set(by_path) == {"/first?tenant=a", "/second"}
    for path, app, flow in (("/first?tenant=a", first, one), ("/second", second, two)):
        delivery = by_path[path]
        assert delivery["content_type"] == "application/x-www-form-urlencoded"
        token = delivery["form"]["logout_token"]
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "logout+jwt" and header["alg"] == "RS256" and header["kid"]
        claims = signed_claims(root, token, app["client_id"],
                               require=["iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"])
        assert claims["iss"] == f"{root}/fhir" and claims["aud"] == app["client_id"]
        assert claims["sid"] == flow["claims"]["sid"] and claims["sub"] == flow["claims"]["sub"]
        assert claims["events"] == {EVENT: {}} and "nonce" not in claims
        assert 0 < claims["exp"] - claims["iat"] <= 300
    assert by_path["/first?tenant=a"]["form"]["logout_token"] != by_path["/second"]["form"]["logout_token"]
    delivered = [e for e in audit(root, "backchannel-logout") if e.get("sid") == one["claims"]["sid"]]
    assert sorted(e["client"] for e in delivered) == sorted([first["client_id"], second["client_id"]])
    assert all(e["outcome"] == "success" and e["status"] == 200 for e in delivered)
    event = [e for e in audit(root, "logout") if e.get("sid") == one["claims"]["sid"]][-1]
    assert sorted(event["backchannel"]) == sorted([first["client_id"], second["client_id"]])


def test_a_receiver_that_is_down_is_audited_and_logout_still_completes(root, server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    app = register(root, backchannel_logout_uri=f"http://127.0.0.1:{port}/bc", post_logout_redirect_uris=[BYE])
    browser = Browser(root)
    token = sign_in(browser, app["client_id"])
    answer = logout(browser, id_token_hint=token["id_token"], post_logout_redirect_uri=BYE)
    assert answer.status_code == 302 and answer.headers["Location"] == BYE
    failed = wait_for(lambda: [e for e in audit(root, "backchannel-logout") if e.get("client") == app["client_id"]])
    assert failed[0]["outcome"] == "failure" and "could not deliver the logout token" in failed[0]["reason"]
    assert service_session(root, browser) is None


def test_a_slow_receiver_never_holds_up_the_logout_page(root, server):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts connections, never answers
    notifier = service(server).notifier
    notifier.timeout = 0.5
    try:
        app = register(root, backchannel_logout_uri=f"http://127.0.0.1:{silent.getsockname()[1]}/bc")
        browser = Browser(root)
        token = sign_in(browser, app["client_id"])
        started = time.monotonic()
        answer = logout(browser, id_token_hint=token["id_token"])
        assert answer.status_code == 200 and time.monotonic() - started < 0.4
        failed = wait_for(lambda: [e for e in audit(root, "backchannel-logout")
                                   if e.get("client") == app["client_id"]])
        assert failed[0]["outcome"] == "failure" and "timed out" in failed[0]["reason"]
    finally:
        notifier.timeout = 3.0
        silent.close()


def test_a_receiver_answering_an_error_is_a_failed_delivery(root, server):
    failing = Receiver(status=500)
    try:
        app = register(root, backchannel_logout_uri=failing.url())
        browser = Browser(root)
        token = sign_in(browser, app["client_id"])
        logout(browser, id_token_hint=token["id_token"])
        failed = wait_for(lambda: [e for e in audit(root, "backchannel-logout")
                                   if e.get("client") == app["client_id"]])
        assert failed[0]["outcome"] == "failure" and failed[0]["status"] == 500 and len(failing.received) == 1
    finally:
        failing.close()


def test_signing_in_as_someone_else_notifies_the_old_sessions_apps(root, receiver, server):
    app = register(root, backchannel_logout_uri=receiver.url())
    browser = Browser(root)
    token = sign_in(browser, app["client_id"])
    attempt = browser.authorize(app["client_id"], SCOPE, prompt="login")
    browser.submit("user", "Patient/p00014-teen")
    assert browser.path == "/auth/consent"
    wait_for(lambda: receiver.received)
    claims = signed_claims(root, receiver.received[0]["form"]["logout_token"], app["client_id"])
    assert claims["sid"] == token["claims"]["sid"] and claims["sub"] == USER
    assert attempt.client_id == app["client_id"]


@pytest.mark.parametrize("metadata, message", [
    ({"post_logout_redirect_uris": ["http://app.example/bye#x"]}, "must not contain a fragment"),
    ({"post_logout_redirect_uris": "http://app.example/bye"}, "must be an array of strings"),
    ({"backchannel_logout_uri": "ftp://app.example/bc"}, "must be an absolute http(s) URL"),
    ({"backchannel_logout_uri": "http://app.example/bc#frag"}, "must not contain a fragment"),
    ({"backchannel_logout_session_required": "yes"}, "must be a JSON boolean"),
])
def test_logout_metadata_is_checked_at_registration(root, metadata, message):
    answer = requests.post(f"{root}/auth/register", timeout=30, json={
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", **metadata})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client_metadata"
    assert message in answer.json()["error_description"]
