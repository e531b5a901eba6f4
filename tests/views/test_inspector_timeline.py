"""The timeline (steps from exchanges and events) and the trace that follows a launch (pure)."""

from __future__ import annotations

from mockehr.views.inspect_timeline import SHOWN_BODY, build_steps, public
from mockehr.views.inspect_trace import trace
from tests.views.test_lint import REDIRECT, Timeline, unsigned_jwt


def test_events_join_their_exchange_and_others_stand_alone():
    t = Timeline()
    t.event("fault", spec="rotate-keys")  # outside any request
    x = t.exchange("GET", "/fhir/Patient/1", status=429, events=[("fault", "success", {"spec": "throttle"})])
    steps = build_steps(t.exchanges, t.events)
    assert [s["kind"] for s in steps] == ["fault", "fhir"]
    alone, fhir = steps
    assert alone["title"] == "Fault fired: rotate-keys" and alone["fault"] and alone["request_text"] == ""
    assert fhir["id"] == x["id"] and fhir["fault"] and [e["spec"] for e in fhir["events"]] == ["throttle"]
    assert fhir["outcome"] == "failure"


def test_events_of_a_request_still_running_wait_for_it():
    t = Timeline()
    t.event("fhir", request_id="r9")
    assert build_steps([], t.events) == []  # (or its exchange already left the ring: so does it)


def test_a_step_is_built_once_with_all_its_events():
    t = Timeline()
    t.exchange("GET", "/fhir/Patient/1", status=403, events=[("fhir", "failure", {"reason": "not yours"})])
    step = build_steps(t.exchanges, t.events)[0]
    assert step["reason"] == "not yours" and build_steps(t.exchanges, [])[0] is step  # built once, with them


def test_steps_are_ordered_by_id_so_the_cursor_never_skips_a_slow_request():
    t = Timeline()
    slow = t.exchange("GET", "/fhir/Patient/1")
    fast = t.exchange("GET", "/fhir/Patient/2")
    slow["id"], fast["id"] = 10, 9  # the slow one finished last
    assert [s["path"] for s in build_steps(t.exchanges, t.events)] == ["/fhir/Patient/2", "/fhir/Patient/1"]


def test_a_fault_that_fired_during_a_request_is_named_in_its_explanation():
    t = Timeline()
    t.exchange("GET", "/fhir/Patient/1", status=503,
               events=[("fault", "success", {"kind": "error", "spec": "error:status=503"})])
    step = build_steps(t.exchanges, t.events)[0]
    assert step["fault"] and step["explain"].endswith("A configured fault fired here (error:status=503).")


def test_a_rejection_says_why():
    t = Timeline()
    t.exchange("POST", "/auth/token", status=400, form={"grant_type": "authorization_code"},
               events=[("token", "failure", {"error": "invalid_grant", "reason": "the code was already used"})])
    t.exchange("GET", "/fhir/Patient/2", status=403,
               resp={"resourceType": "OperationOutcome", "issue": [{"diagnostics": "scope patient/Patient.r missing"}]})
    t.exchange("GET", "/auth/authorize", status=302, query={"client_id": "a"},
               location=f"{REDIRECT}?error=access_denied&error_description=the+user+said+no")
    t.exchange("GET", "/auth/userinfo", status=401, resp={"error": "invalid_token", "error_description": "expired"})
    reasons = [s["reason"] for s in build_steps(t.exchanges, t.events)]
    assert reasons == ["invalid_grant: the code was already used", "scope patient/Patient.r missing",
                       "access_denied: the user said no", "invalid_token: expired"]


def test_public_steps_hold_display_text_and_decoded_tokens_only():
    t = Timeline()
    t.code_token(refresh="rt0000…")
    step = public(build_steps(t.exchanges, t.events)[0])
    assert set(step) >= {"id", "time", "kind", "title", "explain", "spec", "reason", "request_text",
                         "response_text", "tokens", "events", "client", "launch"}
    assert "query" not in step and "req_json" not in step
    assert step["request_text"].startswith("POST /auth/token\n") and "code=abcdef…" in step["request_text"]
    assert step["response_text"].startswith("HTTP 200") and '"refresh_token": "rt0000…"' in step["response_text"]
    assert step["tokens"][0]["label"] == "access_token (response)" and '"jti": "j1"' in step["tokens"][0]["claims"]


def test_request_text_lists_query_parameters_decoded():
    t = Timeline()
    t.authorize(scope="launch openid")
    text = build_steps(t.exchanges, t.events)[0]["request_text"]
    assert text.splitlines()[:3] == ["GET /auth/authorize", "  ?response_type=code", "  &client_id=app"]
    assert "  &scope=launch openid" in text


def test_long_and_truncated_bodies_are_cut_with_a_note():
    t = Timeline()
    x = t.exchange("GET", "/fhir/Observation", resp={"entry": ["x" * 100] * 300})
    x["resp_body"] = {"raw": b'{"resourceType": "Bundle", "entry": [', "size": 50_000, "mime": "application/fhir+json"}
    big = t.exchange("GET", "/fhir/Observation", resp={"entry": ["y" * 100] * 300})
    steps = build_steps(t.exchanges, t.events)
    assert steps[0]["response_text"].endswith("(49963 more bytes not kept)")
    assert "more characters)" in steps[1]["response_text"] and len(steps[1]["response_text"]) < SHOWN_BODY + 200
    assert big["_view"] is not None and big["_step"] is steps[1]  # built once, then kept on the exchange


def test_trace_follows_an_ehr_launch_through_the_login_pages_to_fhir_calls():
    t = Timeline()
    t.exchange("POST", "/admin/launches", status=201, resp={"launch": "L1", "iss": "x"},
               events=[("launch", "success", {"launch": "L1", "patient": "p1"})])
    t.exchange("GET", "/auth/authorize", status=302,
               query={"client_id": "app", "launch": "L1", "redirect_uri": REDIRECT},
               location="http://ehr/auth/login?request=REQ1")
    t.exchange("GET", "/auth/login", query={"request": "REQ1"})
    t.exchange("POST", "/auth/consent", form={"request": "REQ1", "decision": "approve"}, status=303,
               location=f"{REDIRECT}?code=cccccc…&state=s")
    t.code_token(code="cccccc…", refresh="rt0000…", scope="launch patient/*.rs offline_access")
    t.fhir("/fhir/Patient/p1", jti="j1")
    t.token({"grant_type": "refresh_token", "refresh_token": "rt0000…"}, jti="j2", refresh="rt1111…")
    t.fhir("/fhir/Observation", jti="j2")
    t.fhir("/fhir/Observation", jti="unknown")
    t.exchange("POST", "/auth/revoke", form={"token": "rt1111…"})
    steps = build_steps(t.exchanges, t.events)
    traced = trace(steps)
    assert [s["launch"] for s in steps] == ["L1"] * 8 + [None, "L1"]
    assert all(s["client"] == "app" for s in steps[1:8]) and steps[8]["client"] is None
    grant = traced.grants[steps[4]["grant"]]
    assert grant.refreshes == 1 and grant.fhir_calls == 2 and grant.types == {"Patient", "Observation"}
    assert steps[6]["grant"] == steps[7]["grant"] == grant.grant_id
    assert (steps[0]["kind"], steps[0]["title"]) == ("launch", "EHR launch created for Patient/p1")


def test_trace_names_standalone_launches_and_backend_clients():
    t = Timeline()
    auth = t.authorize(client="portal")
    assertion = unsigned_jwt({"iss": "backend-1", "sub": "backend-1"}, typ="JWT")
    t.exchange("POST", "/auth/token", form={"grant_type": "client_credentials", "client_assertion": "eyJhbG…"},
               jwts=[["form client_assertion", assertion]], resp={"access_token": "x", "scope": "system/*.rs"})
    steps = build_steps(t.exchanges, t.events)
    trace(steps)
    assert steps[0]["launch"] == f"standalone #{auth['id']}" and steps[0]["client"] == "portal"
    assert steps[1]["client"] == "backend-1" and steps[1]["launch"] is None
