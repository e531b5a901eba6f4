"""A real browser (headless Chromium through Playwright) clicks through login, the pickers and
consent as a person would, and ends on the app's redirect_uri with a code."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.e2e.browser import playwright_api

APP = "http://app.example"
REDIRECT = f"{APP}/callback"
LAB = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"

sync_api = playwright_api()


def open_app(browser, javascript: bool = True):
    """A fresh browser context whose visits to the app's redirect_uri are answered locally."""
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 900})
    context.route(f"{APP}/**", lambda route: route.fulfill(status=200, content_type="text/html",
                                                           body="<h1>Back in the app</h1>"))
    return context, context.new_page()


def authorize_url(root: str, scope: str, client_id: str) -> tuple[str, str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(8)
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope,
                       "aud": f"{root}/fhir", "state": state, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    return f"{root}/auth/authorize?{query}", verifier, state


def landed(page, state: str) -> dict:
    page.wait_for_url(f"{APP}/**")
    params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params["state"] == state
    return params


def exchange(root: str, code: str, verifier: str, client_id: str) -> dict:
    answer = requests.post(f"{root}/auth/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id,
        "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_clinician_signs_in_picks_patient_and_encounter_and_allows_laboratory_only(server, browser):
    url, verifier, state = authorize_url(server.url, "launch/patient launch/encounter openid fhirUser "
                                                     "patient/Patient.rs patient/Observation.rs", "browser-app")
    context, page = open_app(browser)
    try:
        page.goto(url)
        expect = sync_api.expect
        expect(page.get_by_role("heading", name="Who are you?")).to_be_visible()
        expect(page.get_by_role("navigation", name="Progress")).to_contain_text("Sign in")
        page.get_by_label("Search by name").fill("okafor")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("button", name="Dr. Chidi Okafor").click()

        expect(page.get_by_role("heading", name="Choose a patient")).to_be_visible()
        page.get_by_label("Search by name, MRN or id").fill("romero")
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Willie Daniel Romero")).to_have_count(1)
        page.get_by_role("button", name="Willie Daniel Romero").click()

        expect(page.get_by_role("heading", name="Choose an encounter")).to_be_visible()
        newest = page.locator("button.choice").first
        newest_text = newest.inner_text()
        newest.click()

        expect(page.get_by_role("heading", name="Allow browser-app to access")).to_be_visible()
        expect(page.locator("dl")).to_contain_text("Willie Daniel Romero")
        everything = page.get_by_label("Read and search your observations: all of them")
        expect(everything).to_be_checked()
        page.get_by_label("Laboratory").check()
        expect(everything).not_to_be_checked()  # the page's script unticks "all of them" for you
        page.get_by_role("button", name="Allow access").click()

        params = landed(page, state)
        expect(page.get_by_role("heading", name="Back in the app")).to_be_visible()
    finally:
        context.close()
    token = exchange(server.url, params["code"], verifier, "browser-app")
    assert token["patient"] == "p00003-child-asthma" and token["encounter"]
    encounter = server.app.extensions["mockehr.store"].read("Encounter", token["encounter"]).resource
    assert encounter["period"]["start"].startswith(newest_text.split()[0]), "the clicked encounter is in the token"
    scopes = token["scope"].split()
    assert LAB in scopes and "patient/Observation.rs" not in scopes


def test_patient_signs_in_without_javascript(server, browser):
    url, verifier, state = authorize_url(server.url, "launch/patient openid fhirUser patient/*.rs "
                                                     "patient/Observation.rs", "no-js-app")
    context, page = open_app(browser, javascript=False)
    try:
        page.goto(url)
        page.get_by_role("button", name="Isaac Pham").click()
        sync_api.expect(page.get_by_role("heading", name="Allow no-js-app to access Isaac Pham's record?")) \
            .to_be_visible()
        page.get_by_label("Read and search your observations: all of them").uncheck()
        page.get_by_label("Laboratory").check()
        page.get_by_role("button", name="Allow access").click()
        params = landed(page, state)
    finally:
        context.close()
    token = exchange(server.url, params["code"], verifier, "no-js-app")
    assert token["patient"] == "p00014-teen"
    assert LAB in token["scope"].split() and "patient/Observation.rs" not in token["scope"].split()


def test_deny_returns_access_denied_to_the_app(server, browser):
    url, _, state = authorize_url(server.url, "launch/patient patient/*.rs", "denied-app")
    context, page = open_app(browser)
    try:
        page.goto(url)
        page.get_by_role("button", name="Jason Mckinney").click()
        page.get_by_role("button", name="Deny").click()
        params = landed(page, state)
    finally:
        context.close()
    assert params["error"] == "access_denied" and "code" not in params
