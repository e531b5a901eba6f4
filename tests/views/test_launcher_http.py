"""The launcher over real HTTP (mockehr.server.ServerThread): a launch made on the page carries its
context into the token response, and the client configuration it shows works when pasted as is."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.views.test_launcher_pages import Page

PATIENT = "p00003-child-asthma"
REDIRECT = "http://app.test/callback"


@pytest.fixture(scope="module")
def server():
    with ServerThread(Settings(port=0, auto_approve=True)) as running:
        yield running


def launcher_post(server, path: str, data: dict, status: int) -> requests.Response:
    answer = requests.post(server.url + path, data=data, allow_redirects=False, timeout=30)
    assert answer.status_code == status, answer.text[:3000]
    return answer


def run_snippet(code: str, **names) -> str:
    """Execute a snippet from the page as a user would after pasting it; answers what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<launcher snippet>", "exec"), dict(names))  # noqa: S102 - the page's own snippet
    return printed.getvalue()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_the_context_chosen_on_the_launcher_reaches_the_apps_token_response(server):
    page = Page(requests.get(f"{server.url}/?" + urlencode({"patient": PATIENT}), timeout=30).text)
    encounter = page.options("encounter")[1]
    answer = launcher_post(server, "/launcher/launch", {
        "action": "launch", "patient": PATIENT, "encounter": encounter, "practitioner": "pr-okafor",
        "app_url": "http://app.test/launch", "intent": "summary", "fhir_context": "Observation/o1",
        "need_patient_banner": "0", "smart_style_url": "http://style.test/s.json"}, 303)
    launch = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert launch["iss"] == [server.fhir_base]
    verifier, challenge = pkce()
    authorize = requests.get(f"{server.url}/auth/authorize", allow_redirects=False, timeout=30, params={
        "response_type": "code", "client_id": "launcher-http-app", "redirect_uri": REDIRECT, "state": "s1",
        "scope": "launch openid fhirUser patient/*.rs", "aud": launch["iss"][0], "launch": launch["launch"][0],
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert authorize.status_code == 302, authorize.text
    code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
    token = requests.post(f"{server.url}/auth/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "launcher-http-app",
        "code_verifier": verifier}).json()
    assert (token["patient"], token["encounter"], token["need_patient_banner"], token["smart_style_url"],
            token["intent"], token["fhirContext"]) == \
        (PATIENT, encounter, False, "http://style.test/s.json", "summary", [{"reference": "Observation/o1"}])


@pytest.mark.parametrize("key_alg", ["ES384", "RS384"])
def test_the_backend_snippet_shown_after_registration_gets_a_token_and_reads_patients(server, key_alg):
    answer = launcher_post(server, "/launcher/register", {"launch_type": "backend", "key_alg": key_alg}, 201)
    page = Page(answer.text)
    printed = run_snippet(page.text("snippet-backend-python"))
    token_line, fhir_line = printed.strip().splitlines()
    assert "'access_token':" in token_line and "'scope': 'system/*.rs'" in token_line
    assert fhir_line == "200 25"


def test_the_backend_snippet_with_a_client_secret_gets_a_token(server):
    answer = launcher_post(server, "/launcher/register", {"launch_type": "backend", "client_type": "symmetric"}, 201)
    printed = run_snippet(Page(answer.text).text("snippet-backend-python"))
    assert "'access_token':" in printed and "'token_type': 'Bearer'" in printed


def test_the_python_fhirclient_snippet_of_a_standalone_launch_builds_a_working_authorize_url(server):
    page = Page(requests.get(f"{server.url}/?" + urlencode({"launch_type": "patient", "client_id": "py-snippet-app",
                                                            "app_url": REDIRECT}), timeout=30).text)
    printed = run_snippet(page.text("snippet-fhirclient-py"))
    authorize_url = printed.strip().splitlines()[0]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    assert authorize_url.startswith(f"{server.url}/auth/authorize?")
    assert (query["client_id"], query["redirect_uri"], query["aud"]) == ("py-snippet-app", REDIRECT, server.fhir_base)
    # fhirclient adds launch/patient itself in a standalone launch, so compare the sets
    assert set(query["scope"].split()) == {"launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"}
    back = requests.get(authorize_url, allow_redirects=False, timeout=30)  # auto-approve answers with a code
    assert back.status_code == 302 and "code=" in back.headers["Location"]


def test_the_python_fhirclient_snippet_of_an_ehr_launch_carries_the_launch(server):
    page = Page(requests.get(f"{server.url}/?" + urlencode({"client_id": "py-ehr-app", "app_url": REDIRECT}),
                             timeout=30).text)
    minted = launcher_post(server, "/launcher/launch", {"action": "launch", "app_url": REDIRECT}, 303)
    launch = parse_qs(urlsplit(minted.headers["Location"]).query)["launch"][0]
    authorize_url = run_snippet(page.text("snippet-fhirclient-py"), launch=launch).strip().splitlines()[0]
    assert parse_qs(urlsplit(authorize_url).query)["launch"] == [launch]
