"""Step-up authentication over real HTTP: acr_values (and the claims request) asking for
urn:mockehr:loa:2 show the second-factor page after login; a wrong code re-shows it; the id_token
carries acr and amr; the session keeps the second factor; the step-up fault demands it for chosen
scopes; --auto-approve meets it at once."""

from __future__ import annotations

import json
import re

import pytest
import requests

from tests.auth.signin_helpers import Browser, audit, exchange, register, signed_claims, start_server

USER = "Patient/p00001-diabetes-htn"
SCOPE = "launch/patient openid fhirUser patient/*.rs"
LOA1, LOA2 = "urn:mockehr:loa:1", "urn:mockehr:loa:2"


@pytest.fixture(scope="module")
def server():
    running = start_server()
    yield running
    running.stop()


@pytest.fixture
def root(server):
    yield server.url
    requests.delete(f"{server.url}/admin/faults", timeout=30)


def finish(browser: Browser, attempt) -> dict:
    """Consent (if shown), code, token; the verified id_token claims."""
    if browser.path == "/auth/consent":
        browser.submit("decision", "approve")
    token = exchange(browser.root, attempt, browser.code(attempt))
    return signed_claims(browser.root, token["id_token"], attempt.client_id)


def test_discovery_lists_the_acr_values(root):
    config = requests.get(f"{root}/fhir/.well-known/openid-configuration", timeout=30).json()
    assert config["acr_values_supported"] == [LOA1, LOA2]
    assert {"acr", "amr"} <= set(config["claims_supported"])
    assert config["prompt_values_supported"] == ["none", "login", "consent", "select_account"]


def test_acr_values_loa2_shows_the_second_factor_page_after_login(root):
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], SCOPE, acr_values=LOA2)
    browser.submit("user", USER)
    assert browser.path == "/auth/second-factor"
    page = browser.page.text
    assert "Verify it's you" in page and "the code is always 123456" in page and LOA2 in page
    steps = re.findall(r'<li class="step step-(\w+)".*?>.*?(Sign in|Verify|Allow access)', browser.response.text, re.S)
    assert steps == [("done", "Sign in"), ("current", "Verify"), ("todo", "Allow access")]

    wrong = browser.submit(otp="654321")
    assert wrong.status_code == 400 and "That code is not right" in wrong.text
    assert 'aria-invalid="true"' in wrong.text and 'role="alert"' in wrong.text
    browser.submit(otp="123 456")  # spaces are fine
    assert browser.path == "/auth/consent"
    claims = finish(browser, attempt)
    assert claims["acr"] == LOA2 and claims["amr"] == ["pwd", "otp"]
    steps = [e for e in audit(root, "step-up") if e.get("client") == app["client_id"]]
    assert [e["outcome"] for e in steps] == ["failure", "success"]
    assert steps[0]["reason"] == "the one-time code was wrong" and LOA2 in steps[1]["reason"]


def test_without_acr_values_there_is_no_second_factor(root):
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], SCOPE)
    browser.submit("user", USER)
    assert browser.path == "/auth/consent"
    claims = finish(browser, attempt)
    assert claims["acr"] == LOA1 and claims["amr"] == ["pwd"]
    browser.get(f"{root}/auth/second-factor", request="whatever")
    assert browser.response.status_code == 400, "no such request"


def test_a_list_of_acceptable_values_needs_only_the_lowest(root):
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], SCOPE, acr_values=f"{LOA1} {LOA2}")
    browser.submit("user", USER)
    assert finish(browser, attempt)["acr"] == LOA1


def test_unknown_acr_values_are_ignored_and_flagged(root):
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], SCOPE, acr_values="urn:example:gold")
    browser.submit("user", USER)
    assert "urn:example:gold are unknown here and were ignored" in browser.page.text
    assert finish(browser, attempt)["acr"] == LOA1


def test_the_session_keeps_the_second_factor(root):
    app, other = register(root), register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], SCOPE)
    browser.submit("user", USER)
    first = finish(browser, attempt)
    assert first["amr"] == ["pwd"]

    attempt = browser.authorize(app["client_id"], SCOPE, acr_values=LOA2, prompt="none")
    params = browser.at_app()
    assert params["error"] == "interaction_required" and "second factor" in params["error_description"]

    attempt = browser.authorize(app["client_id"], SCOPE, acr_values=LOA2)
    assert browser.path == "/auth/second-factor", "step-up on top of the session: no login page"
    browser.submit(otp="123456")
    stepped = finish(browser, attempt)  # consent was remembered
    assert stepped["sid"] == first["sid"] and stepped["amr"] == ["pwd", "otp"] and stepped["acr"] == LOA2

    attempt = browser.authorize(other["client_id"], SCOPE, acr_values=LOA2)
    assert browser.path == "/auth/consent", "the session already has the second factor"
    assert finish(browser, attempt)["acr"] == LOA2
    attempt = browser.authorize(app["client_id"], SCOPE)  # no acr asked: the level reached
    assert finish(browser, attempt)["acr"] == LOA2


def test_the_claims_request_can_make_acr_essential(root):
    app = register(root)
    browser = Browser(root)
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": [LOA2]}}})
    attempt = browser.authorize(app["client_id"], SCOPE, claims=essential)
    browser.submit("user", USER)
    assert browser.path == "/auth/second-factor"
    browser.submit(otp="123456")
    assert finish(browser, attempt)["acr"] == LOA2

    unknown = json.dumps({"id_token": {"acr": {"essential": True, "value": "urn:example:gold"}}})
    browser.authorize(app["client_id"], SCOPE, claims=unknown)
    params = browser.at_app()
    assert params["error"] == "unmet_authentication_requirements" and "urn:example:gold" in \
        params["error_description"]
    for bad in ("{nope", "[1]", json.dumps({"id_token": {"acr": {"values": "x"}}})):
        browser.authorize(app["client_id"], SCOPE, claims=bad)
        params = browser.at_app()
        assert params["error"] == "invalid_request" and "claims" in params["error_description"]


def test_the_second_factor_form_is_csrf_protected(root):
    app = register(root)
    browser = Browser(root)
    browser.authorize(app["client_id"], SCOPE, acr_values=LOA2)
    browser.submit("user", USER)
    refused = browser.submit(otp="123456", csrf_token="forged")
    assert refused.status_code == 400 and "Form refused" in refused.text


# -- the step-up fault ------------------------------------------------------------------------
def test_the_step_up_fault_demands_a_second_factor_for_chosen_scopes(root):
    added = requests.post(f"{root}/admin/faults", json={"spec": "step-up:scope=patient/MedicationRequest.*,count=1"},
                          timeout=30)
    assert added.status_code == 201, added.text
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], "launch/patient openid patient/Observation.rs")
    browser.submit("user", USER)
    assert browser.path == "/auth/consent", "Observation is not a chosen scope"
    assert finish(browser, attempt)["acr"] == LOA1

    attempt = browser.authorize(app["client_id"], "launch/patient openid patient/MedicationRequest.rs")
    assert browser.path == "/auth/second-factor"
    assert "step-up:scope=patient/MedicationRequest.*" in browser.page.text
    browser.submit(otp="123456")
    assert finish(browser, attempt)["acr"] == LOA2
    fired = [e for e in audit(root, "fault") if e.get("fault_kind") == "step-up"]
    assert len(fired) == 1 and fired[0]["client"] == app["client_id"]
    listed = requests.get(f"{root}/admin/faults", timeout=30).json()
    assert listed[0]["spent"] is True and listed[0]["fired"] == 1

    fresh = Browser(root)  # spent: another browser is not asked for a second factor
    attempt = fresh.authorize(app["client_id"], "launch/patient openid patient/MedicationRequest.rs")
    fresh.submit("user", USER)
    assert fresh.path == "/auth/consent"


def test_a_bad_step_up_fault_spec_is_refused(root):
    answer = requests.post(f"{root}/admin/faults", json={"spec": "step-up:scope=patinet/MedicationRequest.*"},
                           timeout=30)
    assert answer.status_code == 400 and "did you mean 'patient/MedicationRequest.*'?" in answer.json()["error"]


# -- auto-approve ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def auto():
    running = start_server(auto_approve=True, faults=("step-up:scope=user/*",))
    yield running
    running.stop()


def test_auto_approve_meets_acr_values_at_once(auto):
    root = auto.url
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], SCOPE, acr_values=LOA2, login_hint=USER)
    claims = signed_claims(root, exchange(root, attempt, browser.code(attempt))["id_token"], app["client_id"])
    assert claims["acr"] == LOA2 and claims["amr"] == ["pwd", "otp"]
    stepped = [e for e in audit(root, "step-up") if e.get("client") == app["client_id"]]
    assert stepped[-1]["method"] == "auto-approve" and "met automatically" in stepped[-1]["reason"]

    attempt = browser.authorize(app["client_id"], SCOPE, login_hint=USER, prompt="none")
    assert signed_claims(root, exchange(root, attempt, browser.code(attempt))["id_token"],
                         app["client_id"])["amr"] == ["pwd", "otp"], "the session keeps it"


def test_auto_approve_meets_the_step_up_fault_too(auto):
    root = auto.url
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], "openid fhirUser user/Patient.rs")
    claims = signed_claims(root, exchange(root, attempt, browser.code(attempt))["id_token"], app["client_id"])
    assert claims["acr"] == LOA2 and claims["amr"] == ["pwd", "otp"]
    assert [e for e in audit(root, "fault") if e.get("fault_kind") == "step-up"]
