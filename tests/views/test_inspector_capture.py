"""Capture: exchanges recorded redacted and bounded; the audit log's compatible extension."""

from __future__ import annotations

import base64

import pytest

from mockehr import capture
from mockehr.app import create_app
from mockehr.audit import AuditLog
from mockehr.capture import Scrubber, body_record
from mockehr.config import Settings

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


# -- redaction (pure) ------------------------------------------------------------------
def test_jwts_lose_their_signature_and_are_kept_for_decoding():
    scrub = Scrubber()
    assert scrub.value("id_token", JWT, "response body") == "eyJhbG…"
    assert scrub.jwts == [["response body id_token", JWT.rsplit(".", 1)[0]]]
    assert scrub.value("anything", JWT, "form") == "eyJhbG…"  # JWT-looking values under any name


def test_opaque_secrets_keep_six_characters_and_verifier_facts_are_noted():
    scrub = Scrubber()
    for name in ("client_secret", "refresh_token", "code", "code_verifier", "csrf_token", "password", "token"):
        assert scrub.value(name, "A" * 10 + "bcdefghijklmnop", "form") == "AAAAAA…", name
    assert scrub.value("code", "short", "form") == "…"
    assert scrub.facts == {"code_verifier": {"length": 25, "distinct": 16}}
    assert scrub.value("scope", "launch openid", "form") == "launch openid"


def test_fhir_secret_fields_leave_search_parameters_alone():
    scrub = Scrubber(capture.FHIR_SECRET_FIELDS)
    query = scrub.query("code=http://loinc.org|1234-5&access_token=opaque-token-value", "query")
    assert query == "code=http%3A%2F%2Floinc.org%7C1234-5&access_token=opaque%E2%80%A6"


def test_json_scrub_walks_nested_values_and_keeps_only_public_jwk_members():
    scrub = Scrubber()
    body = {"access_token": JWT, "refresh_token": "r" * 40, "client_secret": "s" * 40,
            "jwks": {"keys": [{"kty": "RSA", "n": "nnn", "e": "AQAB", "d": "private", "p": "x", "kid": "k1"}]},
            "nested": [{"client_secret": "t" * 20}], "expires_in": 3600}
    clean = scrub.json(body, "response body")
    assert clean["access_token"] == "eyJhbG…" and clean["refresh_token"] == "rrrrrr…"
    assert clean["client_secret"] == "ssssss…" and clean["nested"][0]["client_secret"] == "tttttt…"
    assert clean["jwks"]["keys"][0] == {"kty": "RSA", "n": "nnn", "e": "AQAB", "d": "…", "p": "…", "kid": "k1"}
    assert clean["expires_in"] == 3600


def test_authorization_headers():
    scrub = Scrubber()
    assert scrub.authorization(f"Bearer {JWT}") == "Bearer eyJhbG…"
    assert scrub.jwts[-1][0] == "Authorization: Bearer access_token"
    basic = base64.b64encode(b"my-app:super-secret-value").decode()
    assert scrub.authorization(f"Basic {basic}") == "Basic my-app:super-… (base64-decoded)"
    assert scrub.authorization("Basic !!!") == "Basic (not valid base64)"
    assert scrub.authorization("Bearer admin-token-123456") == "Bearer admin-…"
    assert capture.cookie_names("a=1; mockehr_login=secret") == "a=…; mockehr_login=…"
    assert capture.set_cookie("sid=secret; Path=/; HttpOnly") == "sid=…; Path=/; HttpOnly"


def test_body_records():
    assert body_record(b"", "application/json", 0, None, "x") is None
    assert body_record(b"<html>", "text/html", 6, None, "x") == {"note": "6 bytes of text/html (not kept)", "size": 6}
    big = b"{" + b" " * 20_000 + b"}"
    raw = body_record(big, "application/fhir+json", len(big), None, "x")
    assert len(raw["raw"]) == capture.BODY_LIMIT and raw["size"] == len(big)
    scrub = Scrubber()
    assert body_record(b"a=1&client_secret=abcdefghijklmnop", capture.FORM, 30, scrub, "form")["form"] \
        == "a=1&client_secret=abcdef%E2%80%A6"
    assert "not JSON" in body_record(b"nope", "application/json", 4, scrub, "x")["note"]


# -- the audit log ------------------------------------------------------------------------
def test_audit_log_keeps_its_old_interface():
    audit = AuditLog(clock=lambda: 0.0)
    first = audit.record("token", "failure", client="a", reason=None)
    audit.record("fhir", status=200)
    assert first == {"id": 1, "time": "1970-01-01T00:00:00.000Z", "type": "token", "outcome": "failure", "client": "a"}
    assert [e["id"] for e in audit.events()] == [1, 2] and [e["id"] for e in audit.events(1)] == [2]
    audit.clear()
    assert audit.events() == []


def test_exchanges_share_the_id_counter_and_clear_with_the_events():
    audit = AuditLog()
    audit.record("a")
    exchange = audit.record_exchange({"request_id": "r1"})
    audit.record("b")
    assert exchange["id"] == 2 and [e["id"] for e in audit.events()] == [1, 3]
    assert audit.exchanges() == [exchange] and audit.exchanges(2) == []
    audit.clear()
    assert audit.exchanges() == [] and audit.events() == []


def test_events_carry_the_running_request_id_and_never_a_whole_token():
    audit = AuditLog()
    audit.request_id = lambda: "r7"
    event = audit.record("fhir", path=f"/fhir/Patient/1?access_token={JWT}&_count=1", request_id=None)
    assert event["request_id"] == "r7"
    assert JWT not in event["path"] and "signature" not in event["path"] and event["path"].endswith("&_count=1")
    assert audit.record("x", path="/fhir/Patient/1").get("path") == "/fhir/Patient/1"


def test_rings_are_bounded():
    audit = AuditLog(limit=3, exchange_limit=2)
    for n in range(5):
        audit.record("e", n=n)
        audit.record_exchange({"n": n})
    assert [e["n"] for e in audit.events()] == [2, 3, 4] and [x["n"] for x in audit.exchanges()] == [3, 4]


# -- the hooks, in the real app -------------------------------------------------------------
@pytest.fixture(scope="module")
def app():
    return create_app(Settings(auto_approve=True))


def test_hooks_record_exchanges_with_request_ids_on_their_events(app):
    client = app.test_client()
    audit = app.extensions["mockehr.audit"]
    start = audit.exchanges()[-1]["id"] if audit.exchanges() else 0
    client.get("/fhir/Patient?_count=1", headers={"Authorization": f"Bearer {JWT}"})
    client.get(f"/fhir/Patient/x?access_token={JWT}")
    client.options("/fhir/Patient", headers={"Origin": "http://a", "Access-Control-Request-Method": "GET"})
    client.get("/static/views.css").close()
    client.get("/inspector/events")
    client.get("/patients")
    client.get("/admin/audit")
    first, second = audit.exchanges(start)
    assert first["status"] == 401 and first["req_headers"] == [("Authorization", "Bearer eyJhbG…")]
    assert first["jwts"] == [["Authorization: Bearer access_token", JWT.rsplit(".", 1)[0]]]
    assert second["query"] == "access_token=eyJhbG%E2%80%A6" and JWT not in str(second)
    assert second["resp_body"]["raw"].startswith(b"{") and second["resp_body"]["mime"] == "application/fhir+json"
    event = [e for e in audit.events() if e.get("request_id") == first["request_id"]]
    assert [e["type"] for e in event] == ["fhir"]


def test_auth_bodies_are_scrubbed_when_captured(app):
    client = app.test_client()
    audit = app.extensions["mockehr.audit"]
    answer = client.post("/auth/register", json={"redirect_uris": ["https://app.example/cb"],
                                                 "token_endpoint_auth_method": "client_secret_basic"})
    secret = answer.get_json()["client_secret"]
    client.post("/auth/token", data={"grant_type": "client_credentials", "client_secret": secret,
                                     "client_id": answer.get_json()["client_id"]})
    registration, token = audit.exchanges()[-2:]
    assert registration["resp_body"]["json"]["client_secret"] == secret[:6] + "…"
    assert f"client_secret={secret[:6]}%E2%80%A6" in token["req_body"]["form"]
    assert secret not in str(audit.exchanges())


def test_a_capture_bug_never_breaks_the_request(app, monkeypatch):
    def broken(response):
        raise RuntimeError("boom")

    monkeypatch.setattr(capture, "_snapshot", broken)
    client = app.test_client()
    assert client.get("/fhir/metadata").status_code == 200
    last = app.extensions["mockehr.audit"].exchanges()[-1]
    assert last["path"] == "/fhir/metadata" and "capture failed" in last["resp_body"]["note"]
