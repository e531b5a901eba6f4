"""The built-in sample app (ROOT/sample-app) in headless Chromium, against a real mockehr.

It does the whole SMART App Launch itself (discovery, PKCE, the code exchange, FHIR
reads, the refresh grant), so these tests drive it only as a person would: open a
launch URL, click through the auth pages, read what the app shows. Screenshots go to
/tmp/shots/sample-app-*.png.
"""

from __future__ import annotations


import pytest
import requests

from mockehr.server import ServerThread
from tests.helpers import authorized_session
from tests.e2e.browser import SHOTS, playwright_api

PATIENT = "p00001-diabetes-htn"
PATIENT_NAME = "James Thomas Mckinney"
USER = "Practitioner/pr-okafor"
CLIENT_ID = "mockehr-sample-app"

sync_api = playwright_api()
expect = sync_api.expect


class Tab:
    """A fresh browser context and page that records script errors (the app must not throw)."""

    def __init__(self, browser, width: int = 1280, height: int = 800):
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.script_errors: list[str] = []
        self.page.on("pageerror", lambda error: self.script_errors.append(str(error)))

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"sample-app-{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser):
    opened = Tab(browser)
    yield opened
    opened.close()
    assert opened.script_errors == [], "uncaught errors in the sample app"


def mint_launch(ehr: ServerThread, **fields) -> str:
    body = {"patient": PATIENT, "app_url": f"{ehr.url}/sample-app", **fields}
    answer = requests.post(f"{ehr.url}/admin/launches", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["launch_url"]


def audit(ehr: ServerThread, kind: str) -> list[dict]:
    events = requests.get(f"{ehr.url}/admin/audit", timeout=30).json()
    return [e for e in events if e["type"] == kind]


def expect_summary(page, name: str) -> None:
    expect(page.locator("#patient-name")).to_have_text(name)
    expect(page.locator("#status")).to_contain_text("Launched for patient")


def test_ehr_launch_shows_tokens_id_token_and_summary_then_refreshes(auto_server, tab):
    page = tab.page
    page.goto(mint_launch(auto_server, user=USER))

    expect_summary(page, PATIENT_NAME)
    banner = page.locator("#patient-banner")
    expect(banner).to_contain_text("17919231")  # the MRN
    born = auto_server.app.extensions["mockehr.store"].read("Patient", PATIENT).resource["birthDate"]
    expect(banner).to_contain_text(born)  # as served (the dataset's dates are shifted to today)
    vitals = page.locator("#vitals tbody tr")
    expect(vitals).to_have_count(10)  # _count=10, newest first
    expect(page.locator("#vitals")).to_contain_text("mmHg")
    dates = [vitals.nth(i).locator("td").first.inner_text() for i in range(10)]
    assert dates == sorted(dates, reverse=True), "vitals are newest first (_sort=-date)"
    expect(page.locator("#meds")).to_contain_text("lisinopril 10 MG Oral Tablet")
    expect(page.locator("#allergies")).to_contain_text("Penicillin g")
    expect(page.locator("#allergies")).to_contain_text("criticality high")

    expect(page.locator("#token-patient")).to_have_text(PATIENT)
    expect(page.locator("#token-scope")).to_contain_text("launch patient/*.rs")
    access = page.locator("#token-access_token")
    expect(access).to_contain_text("…")  # shortened, never shown whole
    claims = page.locator("#id-token-claims")
    expect(claims).to_contain_text('"fhirUser"')
    expect(claims).to_contain_text(USER)
    expect(page.locator("#id-token-header")).to_contain_text('"alg": "RS256"')
    expect(page.locator("#id-token-checks li.bad")).to_have_count(0)
    expect(page.locator("#step-list")).to_contain_text("code_challenge_method")
    assert page.url == f"{auto_server.url}/sample-app", "the code is wiped from the address bar"
    tab.shot("ehr-launch")

    before = access.inner_text()
    page.get_by_role("button", name="Use the refresh token").click()
    expect(page.locator("#refresh-note")).to_contain_text("New access token")
    expect(access).not_to_have_text(before)
    expect(page.locator("#step-list")).to_contain_text("Refreshed the access token")
    tab.shot("refreshed")

    tokens = [e for e in audit(auto_server, "token") if e.get("client") == CLIENT_ID]
    grants = [(e.get("grant_type"), e.get("outcome")) for e in tokens]
    assert ("authorization_code", "success") in grants and ("refresh_token", "success") in grants, tokens


def test_ehr_launch_with_login_and_consent_clicked(server, tab):
    page = tab.page
    page.goto(mint_launch(server))  # no user in the launch: the server asks who is signing in
    expect(page.get_by_role("heading", name="Who are you?")).to_be_visible()
    page.get_by_role("button", name="Dr. Chidi Okafor").click()
    expect(page.get_by_role("heading", name=f"Allow {CLIENT_ID} to access {PATIENT_NAME}'s record?")).to_be_visible()
    tab.shot("consent")
    page.get_by_role("button", name="Allow access").click()

    expect_summary(page, PATIENT_NAME)
    expect(page.locator("#id-token-claims")).to_contain_text(USER)
    expect(page.locator("#vitals tbody tr")).to_have_count(10)
    expect(page.get_by_role("button", name="Use the refresh token")).to_be_enabled()


def test_standalone_launch_picks_a_patient(server, tab):
    page = tab.page
    page.goto(f"{server.url}/sample-app")
    expect(page.get_by_role("heading", name="Standalone launch")).to_be_visible()
    expect(page.locator("#start-iss")).to_have_text(f"{server.url}/fhir")
    expect(page.get_by_label("Scopes to ask for")).to_have_value(
        "openid fhirUser launch/patient patient/*.rs offline_access")
    tab.shot("standalone-start")
    page.get_by_role("button", name="Start standalone launch").click()

    page.get_by_role("button", name="Dr. Chidi Okafor").click()
    expect(page.get_by_role("heading", name="Choose a patient")).to_be_visible()
    page.get_by_label("Search by name, MRN or id").fill("romero")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Willie Daniel Romero").click()
    page.get_by_role("button", name="Allow access").click()

    expect_summary(page, "Willie Daniel Romero")
    expect(page.locator("#token-patient")).to_have_text("p00003-child-asthma")
    expect(page.locator("#token-scope")).to_contain_text("launch/patient")
    expect(page.locator("#step-list")).to_contain_text("Standalone launch")
    expect(page.locator("#errors")).to_be_hidden()
    tab.shot("standalone-summary")


def test_phone_width_has_no_sideways_scrolling(auto_server, browser):
    phone = Tab(browser, width=390, height=844)
    try:
        phone.page.goto(mint_launch(auto_server, user=USER))
        expect_summary(phone.page, PATIENT_NAME)
        phone.shot("phone")
        overflow = phone.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
    finally:
        phone.close()
    assert phone.script_errors == []


def test_runs_inside_a_same_origin_ehr_frame(auto_server, tab):
    """The simulated EHR frame shows apps in an iframe: the app's headers must allow that (same origin)."""
    page = tab.page
    frame_page = f"{auto_server.url}/test-ehr-frame"  # answered by the browser itself, on mockehr's origin
    page.route(frame_page, lambda route: route.fulfill(status=200, content_type="text/html", body=(
        '<h1>EHR</h1><iframe id="app" title="app" style="width:1200px;height:700px" src="'
        + mint_launch(auto_server, user=USER) + '"></iframe>')))
    page.goto(frame_page)
    app = page.frame_locator("#app")
    expect(app.locator("#patient-name")).to_have_text(PATIENT_NAME)
    expect(app.locator("#vitals tbody tr")).to_have_count(10)


def test_deny_shows_access_denied(server, tab):
    page = tab.page
    page.goto(mint_launch(server, user=USER))
    page.get_by_role("button", name="Deny").click()

    errors = page.get_by_role("alert")
    expect(errors).to_be_visible()
    expect(errors.locator(".error-code")).to_have_text("access_denied")
    expect(errors).to_contain_text("the user denied the request")
    expect(errors).to_contain_text("OAuth error redirect")
    expect(page.locator("#patient")).to_be_hidden()
    expect(page.locator("#tokens")).to_be_hidden()
    tab.shot("access-denied")


def test_simulated_invalid_scope_shows_invalid_scope(auto_server, tab):
    page = tab.page
    page.goto(mint_launch(auto_server, user=USER, sim_error="auth_invalid_scope"))
    errors = page.get_by_role("alert")
    expect(errors.locator(".error-code")).to_have_text("invalid_scope", timeout=5000)
    expect(errors).to_contain_text("Simulated error")
    tab.shot("sim-invalid-scope")


def test_simulated_token_error_shows_the_token_endpoints_error(auto_server, tab):
    page = tab.page
    page.goto(mint_launch(auto_server, user=USER, sim_error="token_invalid_token"))
    errors = page.get_by_role("alert")
    expect(errors.locator(".error-code")).to_have_text("invalid_grant")
    expect(errors).to_contain_text("Token endpoint")
    expect(errors).to_contain_text("Simulated error")
    expect(errors).to_contain_text("HTTP 400")
    expect(page.locator("#tokens")).to_be_hidden()


def test_simulated_expired_refresh_token_shows_invalid_grant_after_a_good_launch(auto_server, tab):
    page = tab.page
    page.goto(mint_launch(auto_server, user=USER, sim_error="token_expired_refresh_token"))
    expect_summary(page, PATIENT_NAME)  # the launch itself works
    page.get_by_role("button", name="Use the refresh token").click()
    errors = page.get_by_role("alert")
    expect(errors.locator(".error-code")).to_have_text("invalid_grant")
    expect(errors).to_contain_text("refresh token has expired")
    tab.shot("refresh-expired")


def test_simulated_invalid_access_token_shows_the_fhir_error(auto_server, tab):
    page = tab.page
    page.goto(mint_launch(auto_server, user=USER, sim_error="request_invalid_token"))
    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("FHIR API (OperationOutcome)")
    expect(errors).to_contain_text("HTTP 401")
    expect(errors).to_contain_text('Bearer error="invalid_token"')  # RFC 6750: the header says why too
    expect(errors).to_contain_text("Simulated error")
    expect(page.locator("#tokens")).to_be_visible()  # the token exchange itself worked
    tab.shot("fhir-invalid-token")


def test_fhir_error_shows_the_operation_outcome(auto_server, tab):
    """A standalone launch with too narrow a scope: the Observation search answers 403."""
    page = tab.page
    page.goto(f"{auto_server.url}/sample-app")
    page.get_by_label("Scopes to ask for").fill("openid fhirUser launch/patient patient/Patient.rs")
    page.get_by_role("button", name="Start standalone launch").click()

    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("FHIR API (OperationOutcome)")
    expect(errors.locator(".error-code").first).to_have_text("forbidden")
    expect(errors).to_contain_text("HTTP 403")
    expect(errors.locator(".error-code")).to_have_count(3)  # one per search: vitals, medications, allergies
    expect(page.locator("#patient-name")).to_have_text(PATIENT_NAME)  # the Patient read itself was allowed
    expect(page.locator("#vitals")).to_contain_text("Not loaded (forbidden)")
    tab.shot("fhir-error")


def test_answer_without_a_pending_request_is_refused(auto_server, tab):
    page = tab.page
    page.goto(f"{auto_server.url}/sample-app?code=stolen&state=guessed")
    expect(page.locator(".error-code")).to_have_text("no_pending_request")
    assert page.url == f"{auto_server.url}/sample-app"


def test_patient_data_is_shown_as_text_not_markup(auto_server, tab):
    session = authorized_session(auto_server.url)
    evil = '<img src=x onerror="window.pwned=1">'
    created = session.post(f"{auto_server.url}/fhir/Patient", json={
        "resourceType": "Patient", "name": [{"family": evil, "given": ["<b>Bold</b>"]}], "gender": "other"},
        headers={"Content-Type": "application/fhir+json"}, timeout=30)
    assert created.status_code == 201, created.text
    page = tab.page
    page.goto(mint_launch(auto_server, user=USER, patient=created.json()["id"]))
    expect_summary(page, f"<b>Bold</b> {evil}")
    assert page.locator("#patient-name img, #patient-name b").count() == 0
    assert page.evaluate("window.pwned") is None
