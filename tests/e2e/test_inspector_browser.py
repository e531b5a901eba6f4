"""The protocol inspector in a real browser (headless Chromium through Playwright): an EHR launch
made over HTTP shows up step by step, with decoded token claims and lint findings, and new steps
appear without a reload. Screenshots go to /tmp/shots/views-e2e-*.png."""

from __future__ import annotations


import pytest

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.auth.conftest import Ehr
from tests.e2e.browser import SHOTS, playwright_api

PATIENT = "p00001-diabetes-htn"
SCOPE = "launch openid fhirUser patient/*.rs offline_access"

sync_api = playwright_api()


@pytest.fixture(scope="module")
def ehr():
    with ServerThread(Settings(port=0, auto_approve=True)) as server:
        yield Ehr(server)


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"views-e2e-{name}.png"))


def test_an_ehr_launch_appears_step_by_step_and_new_steps_arrive_live(ehr, browser):
    launch = ehr.launch(patient=PATIENT, user="Practitioner/pr-okafor", app_url="http://app.example/launch")
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], SCOPE, launch=launch["launch"], nonce="n-e2e")
    expect = sync_api.expect
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{ehr.url}/inspector?launch={launch['launch']}")
        steps = page.locator("#steps > li")
        expect(page.get_by_role("heading", name="Protocol inspector")).to_be_visible()
        expect(steps.filter(has_text="Authorization request (EHR launch)")).to_have_count(1)
        expect(page.locator("#live")).to_have_text("Live: new steps appear on their own.")
        lint = page.locator("#findings")
        expect(lint).to_contain_text("http-redirect")
        # so far the only FHIR call is the client's read of fhirUser (verifying the id_token)
        expect(lint).to_contain_text("patient/*.rs grants every resource type, but the app only used Practitioner")
        shot(page, "timeline")

        token_step = steps.filter(has_text="Token request: code exchange")
        summary = token_step.locator("summary").first
        summary.focus()
        page.keyboard.press("Enter")  # keyboard opens a step
        expect(token_step.get_by_text("access_token (response), decoded")).to_be_visible()
        claims = token_step.locator(".token").first.locator("pre").nth(1)
        expect(claims).to_contain_text(f'"patient": "{PATIENT}"')
        expect(claims).to_contain_text(f'"jti": "{flow.access_claims["jti"]}"')
        expect(token_step.locator(".step-http").first).to_contain_text("code_verifier=")
        expect(token_step.locator(".step-spec a").first).to_have_attribute(
            "href", "https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-access-token")
        assert flow.access_token not in page.content()
        token_step.scroll_into_view_if_needed()
        shot(page, "token-decoded")

        page.evaluate("window.notReloaded = true")
        before = steps.count()
        assert ehr.fhir("GET", f"Observation?patient={PATIENT}&_count=1", flow.access_token).status_code == 200
        assert ehr.fhir("GET", "Patient/p00002-newborn", flow.access_token).status_code == 403
        expect(steps).to_have_count(before + 2, timeout=10_000)
        assert page.evaluate("window.notReloaded") is True
        refused = steps.last
        expect(refused).to_contain_text("FHIR read Patient/p00002-newborn refused")
        expect(refused.locator(".step-reason")).to_contain_text("Why:")
        expect(lint).to_contain_text("only used Observation, Patient, Practitioner")  # findings update live too
        expect(page.locator("#step-count")).to_have_text(str(before + 2))
        refused.scroll_into_view_if_needed()
        shot(page, "live")

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{ehr.url}/inspector")
        expect(steps.first).to_be_visible()
        shot(page, "phone")
    finally:
        context.close()


def test_the_inspector_reads_without_javascript(ehr, browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{ehr.url}/inspector")
        expect = sync_api.expect
        expect(page.locator("#steps > li").first).to_be_visible()
        expect(page.locator("#live")).to_have_text("Reload the page for new steps.")
        page.locator("#steps > li summary").first.click()
        expect(page.locator("#steps > li .step-body").first).to_be_visible()
    finally:
        context.close()
