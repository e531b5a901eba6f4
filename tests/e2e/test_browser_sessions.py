"""A real browser (headless Chromium): one sign-in serves two apps (single sign-on), a third app asking
for acr urn:mockehr:loa:2 gets the second-factor page (a wrong code, then the right one), and the
user signs out through the end_session_endpoint. Screenshots go to /tmp/shots/sessions-*.png."""

from __future__ import annotations

import jwt
import pytest
import requests

from tests.e2e.browser import SHOTS, playwright_api
from tests.e2e.test_browser_login import authorize_url, exchange, landed, open_app

sync_api = playwright_api()
LOA2 = "urn:mockehr:loa:2"
SCOPE = "launch/patient openid fhirUser patient/*.rs"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"sessions-{name}.png"), full_page=True)


def id_claims(root: str, token: dict, client_id: str) -> dict:
    key = jwt.PyJWKClient(f"{root}/auth/jwks").get_signing_key_from_jwt(token["id_token"])
    return jwt.decode(token["id_token"], key.key, algorithms=["RS256"], audience=client_id, issuer=f"{root}/fhir")


@pytest.fixture
def app_ids(server):
    def register(name: str) -> str:
        answer = requests.post(f"{server.url}/auth/register", timeout=30, json={
            "client_name": name, "redirect_uris": ["http://app.example/callback"],
            "token_endpoint_auth_method": "none"})
        return answer.json()["client_id"]
    return register


def test_single_sign_on_step_up_and_sign_out(server, browser, app_ids):
    expect = sync_api.expect
    root = server.url
    first, second, third = app_ids("Chart Viewer"), app_ids("Med Reconciler"), app_ids("e-Prescribing")
    context, page = open_app(browser)
    try:
        url, verifier, state = authorize_url(root, SCOPE, first)
        page.goto(url)
        expect(page.get_by_role("heading", name="Who are you?")).to_be_visible()
        page.get_by_role("button", name="James Thomas Mckinney").click()
        expect(page.get_by_role("heading", name="Allow Chart Viewer to access")).to_be_visible()
        page.get_by_role("button", name="Allow access").click()
        one = id_claims(root, exchange(root, landed(page, state)["code"], verifier, first), first)

        url, verifier, state = authorize_url(root, SCOPE, second)
        page.goto(url)  # same browser: no login page, straight to this app's own consent
        expect(page.get_by_role("heading", name="Allow Med Reconciler to access")).to_be_visible()
        expect(page.locator("dl")).to_contain_text("James Thomas Mckinney")
        shot(page, "1-sso-consent")
        page.get_by_role("button", name="Allow access").click()
        two = id_claims(root, exchange(root, landed(page, state)["code"], verifier, second), second)
        assert two["sid"] == one["sid"] and two["auth_time"] == one["auth_time"]

        url, verifier, state = authorize_url(root, SCOPE, third)
        page.goto(url + f"&acr_values={LOA2}")
        expect(page.get_by_role("heading", name="Verify it's you")).to_be_visible()
        expect(page.get_by_role("navigation", name="Progress")).to_contain_text("Verify")
        expect(page.get_by_text("the code is always 123456")).to_be_visible()
        shot(page, "2-second-factor")
        code = page.get_by_label("One-time code")
        expect(code).to_be_focused()
        code.fill("111111")
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("alert")).to_contain_text("That code is not right")
        shot(page, "3-wrong-code")
        page.get_by_label("One-time code").fill("123456")
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("heading", name="Allow e-Prescribing to access")).to_be_visible()
        page.get_by_role("button", name="Allow access").click()
        three = id_claims(root, exchange(root, landed(page, state)["code"], verifier, third), third)
        assert three["sid"] == one["sid"] and three["acr"] == LOA2 and three["amr"] == ["pwd", "otp"]

        page.goto(f"{root}/auth/logout?client_id={third}")  # no id_token_hint: the user is asked
        expect(page.get_by_role("heading", name="Sign out of mockehr?")).to_be_visible()
        shot(page, "4-confirm-sign-out")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
        shot(page, "5-signed-out")

        url, _, _ = authorize_url(root, SCOPE, first)
        page.goto(url)
        expect(page.get_by_role("heading", name="Who are you?")).to_be_visible()
    finally:
        context.close()
