"""Sign-in sessions over real HTTP: single sign-on across apps, remembered consent, prompt
(none, login, consent, select_account), max_age and auth_time, login_hint, the EHR launch's user,
and --auto-approve (where prompt=none simply succeeds)."""

from __future__ import annotations

import pytest
import requests

from tests.auth.signin_helpers import (REDIRECT, Browser, Clock, audit, exchange, register, signed_claims,
                                       start_server)

ADULT = "p00001-diabetes-htn"
PATIENT_USER = f"Patient/{ADULT}"
DOCTOR = "Practitioner/pr-okafor"
SCOPE = "launch/patient openid fhirUser patient/*.rs"


@pytest.fixture(scope="module")
def clock():
    return Clock()


@pytest.fixture(scope="module")
def server(clock):
    running = start_server(clock)
    yield running
    running.stop()


@pytest.fixture
def root(server):
    return server.url


@pytest.fixture(autouse=True)
def clock_back(clock):
    yield
    clock.offset = 0  # each test starts on time (its browser, and so its session, is its own)


def sign_in(browser: Browser, client_id: str, user: str = PATIENT_USER, scope: str = SCOPE, **extra) -> dict:
    """A full first sign-in: login page, consent, code, token; answers the verified id_token claims."""
    attempt = browser.authorize(client_id, scope, **extra)
    assert browser.path == "/auth/login", browser.path
    browser.submit("user", user)
    assert browser.path == "/auth/consent", browser.path
    browser.submit("decision", "approve")
    token = exchange(browser.root, attempt, browser.code(attempt))
    return signed_claims(browser.root, token["id_token"], client_id)


def approve_to_token(browser: Browser, attempt) -> dict:
    assert browser.path == "/auth/consent", browser.path
    browser.submit("decision", "approve")
    return exchange(browser.root, attempt, browser.code(attempt))


# -- single sign-on -----------------------------------------------------------------
def test_a_second_app_in_the_same_browser_skips_login_but_asks_its_own_consent(root):
    first, second = register(root, client_name="First app"), register(root, client_name="Second app")
    browser = Browser(root)
    claims_one = sign_in(browser, first["client_id"])
    assert browser.session_cookie, "signing in sets the session cookie"
    cookie = next(c for c in browser.http.cookies if c.name == "mockehr_session")
    assert cookie.path == "/auth" and cookie.has_nonstandard_attr("HttpOnly")
    assert claims_one["sub"] == PATIENT_USER and claims_one["sid"] and claims_one["amr"] == ["pwd"]
    assert claims_one["acr"] == "urn:mockehr:loa:1"

    attempt = browser.authorize(second["client_id"], SCOPE)
    assert browser.path == "/auth/consent", "single sign-on: no login page for the second app"
    page = browser.page.text
    assert "Allow Second app to access" in page and "James Thomas Mckinney" in page
    token = approve_to_token(browser, attempt)
    claims_two = signed_claims(root, token["id_token"], second["client_id"])
    assert claims_two["sid"] == claims_one["sid"] and claims_two["auth_time"] == claims_one["auth_time"]
    assert claims_two["sub"] == PATIENT_USER and token["patient"] == ADULT
    sso = [e for e in audit(root, "login") if e.get("client") == second["client_id"]]
    assert sso and sso[-1]["method"] == "session" and sso[-1]["sid"] == claims_one["sid"]
    assert "single sign-on" in sso[-1]["reason"]

    stranger = Browser(root)  # another browser has no session: the login page
    stranger.authorize(second["client_id"], SCOPE)
    assert stranger.path == "/auth/login"


def test_the_same_app_again_skips_consent_unless_prompt_consent_or_more_scopes(root):
    app = register(root)
    browser = Browser(root)
    first = sign_in(browser, app["client_id"])
    attempt = browser.authorize(app["client_id"], SCOPE)
    token = exchange(root, attempt, browser.code(attempt))  # straight back to the app: consent remembered
    assert signed_claims(root, token["id_token"], app["client_id"])["sid"] == first["sid"]
    decided = [e for e in audit(root, "consent") if e.get("client") == app["client_id"]][-1]
    assert decided["decision"] == "skipped: approved earlier in this sign-in session"

    browser.authorize(app["client_id"], SCOPE, prompt="consent")
    assert browser.path == "/auth/consent", "prompt=consent shows the consent page anyway"
    browser.authorize(app["client_id"], SCOPE + " patient/Observation.cruds")
    assert browser.path == "/auth/consent", "more than was approved: asked again"


def test_signing_in_as_someone_else_replaces_the_session(root):
    app = register(root)
    browser = Browser(root)
    first = sign_in(browser, app["client_id"])
    second = sign_in(browser, app["client_id"], "Patient/p00014-teen", prompt="login")
    assert second["sid"] != first["sid"] and second["sub"] == "Patient/p00014-teen"
    ended = [e for e in audit(root, "logout") if e.get("sid") == first["sid"]]
    assert ended and "Patient/p00014-teen signed in in the same browser" in ended[-1]["reason"]


# -- prompt=none ----------------------------------------------------------------------
def test_prompt_none_without_a_session_is_login_required(root):
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], SCOPE, prompt="none")
    params = browser.at_app()
    assert params["error"] == "login_required" and params["state"] == attempt.state
    assert params["iss"] == f"{root}/fhir" and "code" not in params
    assert "nobody is signed in" in params["error_description"]
    failed = [e for e in audit(root, "authorize") if e.get("client") == app["client_id"]][-1]
    assert failed["outcome"] == "failure" and failed["error"] == "login_required" and failed["reason"]


def test_prompt_none_with_a_session_answers_at_once(root):
    app, other = register(root), register(root)
    browser = Browser(root)
    first = sign_in(browser, app["client_id"])
    attempt = browser.authorize(app["client_id"], SCOPE, prompt="none")
    token = exchange(root, attempt, browser.code(attempt))  # no page at all
    claims = signed_claims(root, token["id_token"], app["client_id"])
    assert claims["sid"] == first["sid"] and claims["auth_time"] == first["auth_time"]
    assert claims["nonce"] == attempt.nonce and token["patient"] == ADULT

    browser.authorize(other["client_id"], SCOPE, prompt="none")
    params = browser.at_app()
    assert params["error"] == "consent_required", "another app was never approved in this session"

    browser.authorize(app["client_id"], "launch/patient launch/encounter openid patient/*.rs", prompt="none")
    params = browser.at_app()
    assert params["error"] == "interaction_required" and "encounter" in params["error_description"]


def test_prompt_none_for_a_practitioner_who_must_pick_a_patient_is_interaction_required(root):
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], "openid fhirUser user/*.rs")
    browser.submit("user", DOCTOR)
    exchange(root, attempt, approve_code(browser, attempt))
    browser.authorize(app["client_id"], "launch/patient openid patient/*.rs", prompt="none")
    params = browser.at_app()
    assert params["error"] == "interaction_required" and "patient picker" in params["error_description"]


def approve_code(browser: Browser, attempt) -> str:
    browser.submit("decision", "approve")
    return browser.code(attempt)


@pytest.mark.parametrize("prompt, message", [
    ("none login", "prompt=none cannot be combined"),
    ("none consent", "prompt=none cannot be combined"),
    ("sometimes", "prompt value 'sometimes' is not supported"),
])
def test_bad_prompt_values_are_invalid_request(root, prompt, message):
    browser = Browser(root)
    attempt = browser.authorize(register(root)["client_id"], SCOPE, prompt=prompt)
    params = browser.at_app()
    assert params["error"] == "invalid_request" and message in params["error_description"]
    assert params["state"] == attempt.state


@pytest.mark.parametrize("max_age", ["-1", "soon", "1.5", "99999999999"])
def test_bad_max_age_is_invalid_request(root, max_age):
    browser = Browser(root)
    browser.authorize(register(root)["client_id"], SCOPE, max_age=max_age)
    params = browser.at_app()
    assert params["error"] == "invalid_request" and "max_age" in params["error_description"]


# -- prompt=login, max_age, login_hint --------------------------------------------------
def test_prompt_login_shows_the_login_page_and_renews_auth_time(root, clock):
    app = register(root)
    browser = Browser(root)
    first = sign_in(browser, app["client_id"])
    clock.advance(120)
    attempt = browser.authorize(app["client_id"], SCOPE, prompt="login")
    assert browser.path == "/auth/login", "prompt=login: the login page even with a session"
    assert "prompt=login asks for a fresh sign-in" in browser.page.text
    browser.submit("user", PATIENT_USER)
    code = browser.code(attempt)  # consent was remembered for this app
    claims = signed_claims(root, exchange(root, attempt, code)["id_token"], app["client_id"], verify_iat=False)
    assert claims["sid"] == first["sid"], "the same user signing in again keeps the session"
    assert claims["auth_time"] >= first["auth_time"] + 120

    browser.authorize(app["client_id"], SCOPE, prompt="select_account")
    assert browser.path == "/auth/login"


def test_max_age_asks_for_a_fresh_login_when_the_session_is_older(root, clock):
    app = register(root)
    browser = Browser(root)
    first = sign_in(browser, app["client_id"])
    clock.advance(100)
    attempt = browser.authorize(app["client_id"], SCOPE, max_age="300")
    token = exchange(root, attempt, browser.code(attempt))  # 100 s old <= 300: no login page
    assert signed_claims(root, token["id_token"], app["client_id"], verify_iat=False)["auth_time"] == \
        first["auth_time"], "auth_time is the session's sign-in, not now"

    browser.authorize(app["client_id"], SCOPE, max_age="60", prompt="none")
    params = browser.at_app()
    assert params["error"] == "login_required" and "max_age is 60" in params["error_description"]

    attempt = browser.authorize(app["client_id"], SCOPE, max_age="60")
    assert browser.path == "/auth/login" and "max_age is 60" in browser.page.text
    browser.submit("user", PATIENT_USER)
    claims = signed_claims(root, exchange(root, attempt, browser.code(attempt))["id_token"], app["client_id"],
                           verify_iat=False)
    assert claims["auth_time"] >= first["auth_time"] + 100 and claims["sid"] == first["sid"]

    browser.authorize(app["client_id"], SCOPE, max_age="0")
    assert browser.path == "/auth/login", "max_age=0 always asks for a fresh login"


def test_a_login_hint_naming_someone_else_shows_the_login_page(root):
    app = register(root)
    browser = Browser(root)
    sign_in(browser, app["client_id"])
    browser.authorize(app["client_id"], SCOPE, login_hint="Patient/p00014-teen")
    assert browser.path == "/auth/login" and "Suggested by the app" in browser.page.text
    browser.authorize(app["client_id"], SCOPE, login_hint="Patient/p00014-teen", prompt="none")
    assert browser.at_app()["error"] == "login_required"
    attempt = browser.authorize(app["client_id"], SCOPE, login_hint=PATIENT_USER, prompt="none")
    assert browser.code(attempt)


# -- the EHR launch's user ------------------------------------------------------------
def test_an_ehr_launch_signs_its_user_in_for_later_standalone_apps(root):
    launch = requests.post(f"{root}/admin/launches", timeout=30, json={"patient": ADULT, "user": DOCTOR}).json()
    ehr_app, standalone = register(root), register(root)
    browser = Browser(root)
    attempt = browser.authorize(ehr_app["client_id"], "launch openid fhirUser patient/*.rs", launch=launch["launch"])
    token = approve_to_token(browser, attempt)
    launched = signed_claims(root, token["id_token"], ehr_app["client_id"])
    assert launched["sub"] == DOCTOR and launched["sid"] and browser.session_cookie

    attempt = browser.authorize(standalone["client_id"], "openid fhirUser user/*.rs")
    token = approve_to_token(browser, attempt)
    claims = signed_claims(root, token["id_token"], standalone["client_id"])
    assert claims["sub"] == DOCTOR and claims["sid"] == launched["sid"]

    prompt_none = requests.post(f"{root}/admin/launches", timeout=30, json={"patient": ADULT, "user": DOCTOR}).json()
    attempt = browser.authorize(ehr_app["client_id"], "launch openid fhirUser patient/*.rs",
                                launch=prompt_none["launch"], prompt="none")
    token = exchange(root, attempt, browser.code(attempt))  # same app, same patient: consent remembered
    assert signed_claims(root, token["id_token"], ehr_app["client_id"])["sid"] == launched["sid"]


# -- auto-approve -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def auto(clock):
    running = start_server(clock, auto_approve=True)
    yield running
    running.stop()


def test_auto_approve_prompt_none_simply_succeeds_and_keeps_one_session_per_browser(auto, clock):
    root = auto.url
    app = register(root)
    fresh = Browser(root)
    attempt = fresh.authorize(app["client_id"], SCOPE, prompt="none", login_hint=PATIENT_USER)
    first = signed_claims(root, exchange(root, attempt, fresh.code(attempt))["id_token"], app["client_id"])
    assert first["sub"] == PATIENT_USER and first["sid"] and first["amr"] == ["pwd"]

    attempt = fresh.authorize(app["client_id"], SCOPE, login_hint=PATIENT_USER)
    again = signed_claims(root, exchange(root, attempt, fresh.code(attempt))["id_token"], app["client_id"])
    assert again["sid"] == first["sid"] and again["auth_time"] == first["auth_time"]

    clock.advance(30)
    attempt = fresh.authorize(app["client_id"], SCOPE, login_hint=PATIENT_USER, prompt="login")
    renewed = signed_claims(root, exchange(root, attempt, fresh.code(attempt))["id_token"], app["client_id"],
                            verify_iat=False)
    assert renewed["sid"] == first["sid"] and renewed["auth_time"] >= first["auth_time"] + 30

    attempt = fresh.authorize(app["client_id"], SCOPE)  # the contract's default practitioner: another user
    other = signed_claims(root, exchange(root, attempt, fresh.code(attempt))["id_token"], app["client_id"],
                          verify_iat=False)
    assert other["sub"].startswith("Practitioner/") and other["sid"] != first["sid"]


def test_auto_approve_without_cookies_still_answers_the_contracts_user(auto):
    root = auto.url
    answer = requests.get(f"{root}/auth/authorize", allow_redirects=False, timeout=30, params={
        "response_type": "code", "client_id": "cookieless", "redirect_uri": REDIRECT, "scope": SCOPE,
        "aud": f"{root}/fhir", "login_hint": DOCTOR, "prompt": "none", "state": "s"})
    assert answer.status_code == 302 and "code=" in answer.headers["Location"]
    assert "mockehr_session=" in answer.headers.get("Set-Cookie", "")
