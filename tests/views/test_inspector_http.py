"""ROOT/inspector over real HTTP: a launch's steps with decoded tokens, lint, polling, guard, escaping."""

from __future__ import annotations

import json
import re

import pytest
import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.auth.conftest import Ehr

PATIENT = "p00001-diabetes-htn"
SCOPE = "launch openid fhirUser patient/*.rs offline_access"


@pytest.fixture(scope="module")
def ehr():
    with ServerThread(Settings(port=0, auto_approve=True)) as server:
        yield Ehr(server)


@pytest.fixture(scope="module")
def session(ehr):
    """One EHR launch, a few FHIR calls, one token in a URL: what the tests below look at."""
    launch = ehr.launch(patient=PATIENT, user="Practitioner/pr-okafor", app_url="http://app.example/launch")
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], SCOPE, launch=launch["launch"], nonce="n-1")
    assert ehr.fhir("GET", f"Patient/{PATIENT}", flow.access_token).status_code == 200
    assert ehr.fhir("GET", f"Observation?patient={PATIENT}&_count=2", flow.access_token).status_code == 200
    assert requests.get(f"{ehr.fhir_base}/Patient/{PATIENT}", params={"access_token": flow.access_token},
                        timeout=30).status_code == 401
    return {"launch": launch["launch"], "client": client["client_id"], "flow": flow}


def events(ehr, **params) -> dict:
    answer = requests.get(f"{ehr.url}/inspector/events", params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json" and answer.headers["Cache-Control"] == "no-store"
    return answer.json()


def test_the_launch_shows_step_by_step_with_tokens_decoded(ehr, session):
    steps = events(ehr, launch=session["launch"])["steps"]
    kinds = [s["kind"] for s in steps]
    assert kinds[:3] == ["launch", "authorize", "token"] and kinds.count("fhir") >= 3
    assert steps[0]["title"] == f"EHR launch created for Patient/{PATIENT}" and steps[0]["status"] == 201
    authorize = steps[1]
    assert authorize["title"] == "Authorization request (EHR launch)" and authorize["client"] == session["client"]
    assert any("obtain-authorization-code" in link["url"] for link in authorize["spec"])
    token = steps[2]
    labels = [t["label"] for t in token["tokens"]]
    assert labels == ["access_token (response)", "id_token (response)"]
    claims = json.loads(token["tokens"][0]["claims"])
    assert claims["patient"] == PATIENT and claims["client_id"] == session["client"]
    assert claims["jti"] == session["flow"].access_claims["jti"]
    assert json.loads(token["tokens"][1]["claims"])["nonce"] == "n-1"
    refused = steps[-1]
    assert refused["status"] == 401 and refused["outcome"] == "failure" and "access token" in refused["reason"]


def test_no_usable_token_or_secret_reaches_the_inspector(ehr, session):
    flow = session["flow"]
    text = json.dumps(events(ehr)) + requests.get(f"{ehr.url}/inspector", timeout=30).text
    for secret in (flow.access_token, flow.body["id_token"], flow.refresh_token):
        assert secret not in text
        if secret.count(".") == 2:
            assert secret.rsplit(".", 1)[1] not in text  # no signature
    assert flow.refresh_token[:12] not in text and flow.refresh_token[:6] + "…" in text


def test_lint_flags_what_the_app_did(ehr, session):
    findings = {f["rule"]: f for f in events(ehr, launch=session["launch"])["findings"]}
    assert {"http-redirect", "token-in-url", "scope-unused", "offline-unused"} <= set(findings)
    assert findings["scope-unused"]["client"] == session["client"]
    assert all(f["launch"] == session["launch"] for f in findings.values())


def test_polling_answers_only_newer_steps(ehr, session):
    first = events(ehr)
    assert events(ehr, since=first["last"])["steps"] == []
    ehr.fhir("GET", "Condition?patient=" + PATIENT, session["flow"].access_token)
    fresh = events(ehr, since=first["last"])
    assert [s["path"] for s in fresh["steps"]] == ["/fhir/Condition"] and fresh["last"] > first["last"]
    bad = requests.get(f"{ehr.url}/inspector/events", params={"since": "x"}, timeout=30)
    assert bad.status_code == 400 and "since" in bad.json()["error"]


def test_filters_by_client_and_launch(ehr, session):
    other = ehr.public_client()
    ehr.code_flow(other["client_id"], "launch/patient patient/Patient.rs")
    mine = events(ehr, client=session["client"])["steps"]
    assert mine and all(s["client"] == session["client"] for s in mine)
    theirs = events(ehr, client=other["client_id"])["steps"]
    assert [s["kind"] for s in theirs] == ["registration", "authorize", "token"]
    assert theirs[1]["launch"] == f"standalone #{theirs[1]['id']}"
    page = requests.get(f"{ehr.url}/inspector", params={"client": other["client_id"]}, timeout=30).text
    assert f'<option value="{other["client_id"]}" selected>' in page
    assert page.count('class="step step-') == 3


def test_fault_firings_show_on_the_step_they_hit(ehr, session):
    added = requests.post(f"{ehr.url}/admin/faults", json={"spec": "throttle:path=/fhir/Condition,count=1"},
                          timeout=30)
    assert added.status_code == 201, added.text
    before = events(ehr)["last"]
    assert ehr.fhir("GET", "Condition", session["flow"].access_token).status_code == 429
    step = events(ehr, since=before)["steps"][-1]
    assert step["fault"] and step["status"] == 429 and step["outcome"] == "failure"
    assert "A configured fault fired here (throttle:path=/fhir/Condition,count=1)." in step["explain"]
    assert "retry after 1 s" in step["reason"] and '"type": "fault"' in step["events"]


def test_the_page_reads_without_javascript(ehr, session):
    page = requests.get(f"{ehr.url}/inspector", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "Protocol inspector" in html and "Token request: code exchange" in html
    assert "access_token (response), decoded" in html and "&#34;patient&#34;: &#34;p00001-diabetes-htn&#34;" in html
    assert "http-redirect" in html and 'src="/static/inspector.js"' in html
    since = int(re.search(r'data-since="(\d+)"', html).group(1))
    assert since == events(ehr)["last"]  # the page's own requests are not captured: nothing came after it


def test_everything_an_app_sends_is_escaped(ehr):
    evil = '<script>alert("x")</script>'
    requests.get(ehr.smart["authorization_endpoint"], allow_redirects=False, timeout=30,
                 params={"response_type": "code", "client_id": evil, "redirect_uri": "http://app.example/<b>cb",
                         "scope": "launch/patient <img src=x onerror=alert(1)>", "aud": ehr.fhir_base, "state": evil})
    html = requests.get(f"{ehr.url}/inspector", timeout=30).text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_guarded_like_the_control_api():
    with ServerThread(Settings(port=0, admin_token="s3cret-admin-token")) as server:
        page = requests.get(f"{server.url}/inspector", timeout=30)
        assert page.status_code == 401 and "Authorization: Bearer" in page.text
        assert page.headers["Content-Type"].startswith("text/html")
        wrong = requests.get(f"{server.url}/inspector/events", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 403 and wrong.json() == {"error": "wrong admin token"}
        right = requests.get(f"{server.url}/inspector/events",
                             headers={"Authorization": "Bearer s3cret-admin-token"}, timeout=30)
        assert right.status_code == 200
        assert "s3cret-admin-token" not in right.text  # the admin token is redacted too
        app = server.app
    far = app.test_client().get("/inspector", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert far.status_code == 401  # an admin token is set: needed from anywhere


def test_remote_callers_are_refused_without_an_admin_token(ehr):
    far = ehr.server.app.test_client().get("/inspector/events", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert far.status_code == 403 and "loopback" in far.get_json()["error"]


def test_the_audit_trail_keeps_its_shape(ehr, session):
    audit = ehr.audit()
    assert all({"id", "time", "type", "outcome"} <= set(e) for e in audit)
    assert [e["id"] for e in audit] == sorted(e["id"] for e in audit)
    assert not any("method" in e and "req_headers" in e for e in audit)  # exchanges stay out of /admin/audit
    assert any(e.get("request_id") for e in audit if e["type"] == "token")
