"""The launcher (ROOT/) in headless Chromium: EHR launches clicked through from the launcher to the
app, deep links that prefill the form, the EHR frame, live updates and copy buttons, and the page
without JavaScript. Screenshots go to /tmp/shots/launcher-*.png."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.e2e.browser import SHOTS, playwright_api

APP = "http://app.example"
ROMERO = "p00003-child-asthma"

sync_api = playwright_api()
expect = sync_api.expect
LAUNCH = re.compile(r"^Launch")


class Tab:
    """A fresh browser context; script errors on any of its pages fail the test."""

    def __init__(self, browser, width: int = 1280, height: int = 800, javascript: bool = True):
        self.context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=javascript)
        self.errors: list[str] = []
        self.context.on("page", lambda page: page.on("pageerror", lambda error: self.errors.append(str(error))))
        self.page = self.context.new_page()

    def shot(self, name: str, page=None) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (page or self.page).screenshot(path=str(SHOTS / f"launcher-{name}.png"), full_page=True)

    def launch(self, button: str | re.Pattern = LAUNCH):
        """Press a button that opens a new tab; answers that tab."""
        with self.context.expect_page() as opened:
            self.page.get_by_role("button", name=button).click()
        new = opened.value
        new.wait_for_load_state()
        return new


@pytest.fixture
def tab(browser):
    opened = Tab(browser)
    yield opened
    opened.context.close()
    assert opened.errors == [], "uncaught script errors"


def deep_link_query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.locator("#deep-link").inner_text()).query,
                                         keep_blank_values=True).items()}


def test_ehr_launch_of_the_sample_app_with_login_and_consent_clicked(server, tab):
    page = tab.page
    page.goto(f"{server.url}/")
    page.get_by_label("Filter patients").fill("romero")
    expect(page.locator("#patient option:not([hidden])")).to_have_count(1)
    expect(page.locator("#patient")).to_have_value(ROMERO)  # the one match is chosen for you
    page.locator("#patient").select_option(ROMERO)
    page.get_by_label("Skip login").uncheck()
    expect(page.locator("#deep-link")).to_contain_text("skip_login=0")  # refreshed without a reload
    assert deep_link_query(page)["patient"] == ROMERO
    tab.shot("ehr-options")

    app = tab.launch()
    expect(app.get_by_role("heading", name="Who are you?")).to_be_visible()
    app.get_by_role("button", name="Dr. Chidi Okafor").click()
    expect(app.get_by_role("heading", name="Allow mockehr-sample-app to access Willie Daniel Romero's record?")) \
        .to_be_visible()
    app.get_by_role("button", name="Allow access").click()
    expect(app.locator("#patient-name")).to_have_text("Willie Daniel Romero")
    expect(app.locator("#token-patient")).to_have_text(ROMERO)
    tab.shot("sample-app-launched", app)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class RoutedApp:
    """A tiny SMART app the browser answers itself at http://app.example: its launch page redirects
    to the authorize endpoint (asking for launch/patient, so the server's picker shows); the
    callback page just says it is back. The test exchanges the code."""

    def __init__(self, context):
        self.verifier, self.challenge = pkce_pair()
        context.route(f"{APP}/launch**", self.launch_page)
        context.route(f"{APP}/callback**", lambda route: route.fulfill(
            status=200, content_type="text/html", body="<h1>Back in the app</h1>"))

    def launch_page(self, route) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(route.request.url).query).items()}
        authorize = query["iss"].removesuffix("/fhir") + "/auth/authorize?" + urlencode({
            "response_type": "code", "client_id": "routed-app", "redirect_uri": f"{APP}/callback", "state": "s1",
            "scope": "launch launch/patient openid fhirUser patient/*.rs", "aud": query["iss"],
            "launch": query["launch"], "code_challenge": self.challenge, "code_challenge_method": "S256"})
        route.fulfill(status=302, headers={"Location": authorize})

    def token(self, root: str, callback_url: str) -> dict:
        code = parse_qs(urlsplit(callback_url).query)["code"][0]
        answer = requests.post(f"{root}/auth/token", timeout=30, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": f"{APP}/callback",
            "client_id": "routed-app", "code_verifier": self.verifier})
        assert answer.status_code == 200, answer.text
        return answer.json()


def test_a_deep_link_prefills_the_form_and_the_user_picks_the_patient_at_sign_in(server, tab):
    app = RoutedApp(tab.context)
    query = {"launch_type": "ehr", "patient": "", "skip_login": "0", "app_url": f"{APP}/launch",
             "intent": "reconcile-medications", "client_id": "routed-app", "fhir_context": "Observation/o1"}
    page = tab.page
    page.goto(f"{server.url}/?{urlencode(query)}")
    expect(page.locator("#patient")).to_have_value("")
    expect(page.get_by_label("Skip login")).not_to_be_checked()
    expect(page.get_by_label("App launch URL")).to_have_value(f"{APP}/launch")
    expect(page.get_by_label("intent")).to_have_value("reconcile-medications")
    expect(page.get_by_label("fhirContext")).to_have_value("Observation/o1")
    expect(page.get_by_label("Scope the app asks for")).to_have_value(
        "launch launch/patient openid fhirUser offline_access patient/*.rs")
    assert deep_link_query(page) == query
    tab.shot("deep-link")

    signin = tab.launch()
    signin.get_by_role("button", name="Dr. Chidi Okafor").click()
    expect(signin.get_by_role("heading", name="Choose a patient")).to_be_visible()
    signin.get_by_label("Search by name, MRN or id").fill("romero")
    signin.keyboard.press("Enter")
    signin.get_by_role("button", name="Willie Daniel Romero").click()
    signin.get_by_role("button", name="Allow access").click()
    signin.wait_for_url(f"{APP}/callback**")
    token = app.token(server.url, signin.url)
    assert (token["patient"], token["intent"], token["fhirContext"]) == \
        (ROMERO, "reconcile-medications", [{"reference": "Observation/o1"}])


def test_the_ehr_frame_shows_the_banner_and_runs_the_app_inside(auto_server, tab):
    page = tab.page
    page.goto(f"{auto_server.url}/?launch_type=portal&patient=p00004-octogenarian")
    frame = tab.launch("Open in EHR frame")
    banner = frame.get_by_role("region", name="Patient")
    expect(banner).to_contain_text("Laura Barnes")
    expect(banner).to_contain_text("Female")
    expect(banner).to_contain_text("MRN")
    expect(frame.locator("header")).to_contain_text("Signed in: Laura Barnes")
    inside = frame.frame_locator("iframe[title='SMART app']")
    expect(inside.locator("#patient-name")).to_have_text("Laura Barnes")  # auto-approve: no framed sign-in page
    tab.shot("ehr-frame", frame)


def test_the_consent_page_works_inside_the_ehr_frame(server, tab):
    """Without auto-approve the app meets the consent page inside the frame: same-origin framing is allowed."""
    tab.page.goto(f"{server.url}/?patient={ROMERO}")
    frame = tab.launch("Open in EHR frame")
    inside = frame.frame_locator("iframe[title='SMART app']")
    inside.get_by_role("button", name="Allow access").click()
    expect(inside.locator("#patient-name")).to_have_text("Willie Daniel Romero")
    tab.shot("ehr-frame-consent", frame)


def test_skip_consent_launches_straight_into_the_app(server, tab):
    tab.page.goto(f"{server.url}/?patient={ROMERO}&skip_consent=1")
    app = tab.launch()
    expect(app.locator("#patient-name")).to_have_text("Willie Daniel Romero")
    expect(app.locator("#token-patient")).to_have_text(ROMERO)


def test_options_follow_the_launch_type_live_and_copy_buttons_copy(auto_server, browser):
    tab = Tab(browser)
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=auto_server.url)
    try:
        page = tab.page
        page.goto(f"{auto_server.url}/")
        expect(page.get_by_role("button", name="Open in EHR frame")).to_be_visible()
        page.get_by_text("Backend service", exact=True).click()
        expect(page.get_by_role("button", name=LAUNCH)).to_be_hidden()
        expect(page.get_by_role("button", name="Open in EHR frame")).to_be_hidden()
        expect(page.get_by_label("Patient", exact=True)).to_be_hidden()
        expect(page.get_by_label("Scope the app asks for")).to_have_value("system/*.rs")
        page.get_by_text("v1 .read").click()
        expect(page.get_by_label("Scope the app asks for")).to_have_value("system/*.read")
        expect(page.locator("#deep-link")).to_contain_text("launch_type=backend")
        assert page.url == page.locator("#deep-link").inner_text(), "the address bar is the link to this launch"
        copy = page.locator("button[data-copy='deep-link']")  # by role it would change name when it says Copied
        expect(copy).to_have_accessible_name("Copy link to this launch")
        copy.click()
        expect(copy).to_contain_text("Copied")
        expect(page.locator("#copy-status")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == page.locator("#deep-link").inner_text()

        page.get_by_role("button", name="Register client with a new key pair").click()
        expect(page.get_by_role("heading", name="Client registered")).to_be_visible()
        expect(page.locator("#reg-private-jwk")).to_contain_text('"d":')
        tab.shot("backend-registered")
    finally:
        tab.context.close()
    assert tab.errors == []


def test_the_launcher_works_without_javascript(server, browser):
    tab = Tab(browser, javascript=False)
    try:
        page = tab.page
        page.goto(f"{server.url}/")
        expect(page.get_by_label("Filter patients")).to_be_hidden()  # the filter needs the script
        page.locator("#patient").select_option(ROMERO)
        page.get_by_role("button", name="Show their encounters").click()
        expect(page.locator("#deep-link")).to_contain_text(f"patient={ROMERO}")
        encounters = page.locator("#encounter option")
        assert encounters.count() > 1 and "No encounter" in encounters.first.inner_text()
        page.get_by_text("Provider standalone launch", exact=True).click()
        page.get_by_role("button", name="Update the page").click()
        expect(page.locator("#deep-link")).to_contain_text("launch_type=provider")
        expect(page.get_by_role("button", name="Open in EHR frame")).to_be_hidden()
        tab.shot("no-javascript")
    finally:
        tab.context.close()


@pytest.mark.parametrize("path", ["/", "/?launch_type=backend"])
def test_no_sideways_scrolling_on_a_phone(auto_server, browser, path):
    tab = Tab(browser, width=390, height=844)
    try:
        tab.page.goto(auto_server.url + path)
        overflow = tab.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
        tab.shot("phone" + ("-backend" if "backend" in path else ""))
    finally:
        tab.context.close()
    assert tab.errors == []
