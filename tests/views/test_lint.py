"""Client lint: one test per rule, on timelines built the way capture records them (pure)."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from mockehr.lint import lint, resource_scopes
from mockehr.views.inspect_timeline import build_steps
from mockehr.views.inspect_trace import trace

BASE = "https://ehr.example/fhir"
REDIRECT = "https://app.example/cb"


def unsigned_jwt(claims: dict, typ: str = "at+jwt") -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': typ})}.{part(claims)}"


class Timeline:
    """Exchanges and events shaped as mockehr.capture and mockehr.audit store them."""

    def __init__(self):
        self.exchanges: list[dict] = []
        self.events: list[dict] = []
        self.next_id = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def event(self, type_: str, outcome: str = "success", request_id: str | None = None, **fields) -> dict:
        event = {"id": self._id(), "time": "2026-01-01T00:00:00.000Z", "type": type_, "outcome": outcome, **fields}
        if request_id:
            event["request_id"] = request_id
        self.events.append(event)
        return event

    def exchange(self, method: str, path: str, *, query: dict | None = None, form: dict | None = None,
                 status: int = 200, resp: dict | None = None, location: str | None = None, headers=(),
                 jwts=(), facts: dict | None = None, events=()) -> dict:
        request_id = f"r{len(self.exchanges) + 1}"
        for type_, outcome, fields in events:
            self.event(type_, outcome, request_id, **fields)
        x = {"request_id": request_id, "start": 1767225600.0, "ms": 1.0, "method": method, "path": path,
             "query": urlencode(query or {}), "req_headers": [list(h) for h in headers],
             "req_body": {"form": urlencode(form), "size": 10} if form else None, "status": status,
             "resp_headers": [["Location", location]] if location else [],
             "resp_body": {"json": resp, "size": 10} if resp is not None else None, "jwts": list(jwts),
             "id": self._id()}
        if facts:
            x["facts"] = facts
        self.exchanges.append(x)
        return x

    # -- protocol steps ----------------------------------------------------------------
    def discovery(self):
        return self.exchange("GET", "/fhir/.well-known/smart-configuration", resp={"issuer": BASE})

    def authorize(self, client: str = "app", *, launch: str | None = None, code: str = "abcdef…", drop=(),
                  status: int = 302, failure: str | None = None, **params):
        query = {"response_type": "code", "client_id": client, "redirect_uri": REDIRECT,
                 "scope": "launch/patient patient/*.rs", "state": "st", "aud": BASE,
                 "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
        if launch:
            query["launch"] = launch
        query.update(params)
        for name in drop:
            query.pop(name)
        events = [("authorize", "failure", {"client": client, "reason": failure})] if failure else \
            [("authorize", "success", {"client": client})]
        where = f"{query['redirect_uri']}?error=invalid_request" if failure else f"{query['redirect_uri']}?code={code}"
        return self.exchange("GET", "/auth/authorize", query=query, status=status, location=where, events=events)

    def token(self, form: dict, *, jti: str = "j1", scope: str = "launch/patient patient/*.rs",
              refresh: str | None = None, status: int = 200, headers=(), facts: dict | None = None):
        resp, jwts = None, []
        if status == 200:
            resp = {"access_token": "eyJhbG…", "token_type": "Bearer", "scope": scope, "expires_in": 3600}
            if refresh:
                resp["refresh_token"] = refresh
            jwts = [["response body access_token", unsigned_jwt({"jti": jti, "scope": scope, "client_id": "app"})]]
        else:
            resp = {"error": "invalid_grant", "error_description": "no"}
        outcome = "success" if status == 200 else "failure"
        return self.exchange("POST", "/auth/token", form=form, status=status, resp=resp, headers=headers, jwts=jwts,
                             facts=facts, events=[("token", outcome, {"grant_type": form.get("grant_type")})])

    def code_token(self, client: str = "app", code: str = "abcdef…", **kwargs):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client,
                "code_verifier": "dBjftJ…"}
        facts = kwargs.pop("facts", {"code_verifier": {"length": 43, "distinct": 30}})
        form.update(kwargs.pop("form", {}))
        return self.token(form, facts=facts, **kwargs)

    def fhir(self, path: str, jti: str = "j1", query: dict | None = None, status: int = 200, header: bool = True):
        jwts = [["Authorization: Bearer access_token", unsigned_jwt({"jti": jti})]] if header else \
            [["query access_token", unsigned_jwt({"jti": jti})]]
        return self.exchange("GET", path, query=query, status=status, jwts=jwts,
                             events=[("fhir", "success" if status < 400 else "failure", {})])

    def findings(self) -> list[dict]:
        steps = build_steps(self.exchanges, self.events)
        return lint(steps, trace(steps), BASE)

    def rules(self) -> set[str]:
        return {f["rule"] for f in self.findings()}


def good_flow() -> Timeline:
    t = Timeline()
    t.discovery()
    t.authorize(launch="L1")
    t.code_token()
    t.fhir("/fhir/Observation", query={"patient": "p1"})
    return t


def test_a_well_behaved_app_gets_no_findings():
    t = Timeline()
    t.discovery()
    t.authorize(launch="L1", scope="launch patient/Observation.rs")
    t.code_token(scope="launch patient/Observation.rs")
    t.fhir("/fhir/Observation")
    assert t.findings() == []


def test_no_state():
    t = Timeline()
    t.discovery()
    t.authorize(drop=("state",))
    finding = next(f for f in t.findings() if f["rule"] == "no-state")
    assert finding["severity"] == "warning" and finding["client"] == "app"
    assert finding["spec"]["url"].endswith("rfc6749#section-10.12")


def test_no_aud_and_a_refused_wrong_aud():
    t = Timeline()
    t.discovery()
    t.authorize(drop=("aud",), status=302, failure="aud is missing")
    t.authorize(aud="https://other.example/fhir", failure="aud 'https://other.example/fhir' is not this server's")
    t.authorize(aud=BASE + "/")  # accepted by the server: trailing slash, same base
    rules = [f["rule"] for f in t.findings()]
    assert "no-aud" in rules and "aud-differs" in rules and rules.count("aud-differs") == 1


def test_no_pkce_and_plain_pkce():
    t = Timeline()
    t.discovery()
    t.authorize(drop=("code_challenge", "code_challenge_method"))
    t.authorize(code_challenge_method="plain")
    t.authorize(client="other", drop=("code_challenge_method",))
    findings = t.findings()
    assert [(f["rule"], f["client"]) for f in findings if f["rule"] == "no-pkce"] == [("no-pkce", "app")]
    plain = {f["client"]: f for f in findings if f["rule"] == "pkce-plain"}
    assert plain["app"]["severity"] == "error" and "is plain" in plain["app"]["message"]
    assert "missing (which means plain)" in plain["other"]["message"]


def test_verifier_that_is_the_challenge_itself_looks_plain():
    t = Timeline()
    t.discovery()
    t.authorize(launch="L1", code_challenge="plainplainplainplainplainplainplainplain123")
    t.code_token(form={"code_verifier": "plainp…"}, status=400)
    assert "pkce-plain" in t.rules()


def test_weak_verifiers():
    t = Timeline()
    t.discovery()
    t.authorize(launch="L1")
    t.code_token(facts={"code_verifier": {"length": 20, "distinct": 15}})
    t.authorize(launch="L2", code="zzzzzz…")
    t.code_token(code="zzzzzz…", facts={"code_verifier": {"length": 64, "distinct": 3}})
    weak = [f for f in t.findings() if f["rule"] == "weak-verifier"]
    assert [f["severity"] for f in weak] == ["error", "warning"]
    assert "20 characters" in weak[0]["message"] and "3 different" in weak[1]["message"]


def test_scope_broader_than_used_with_a_wildcard_and_with_named_types():
    t = good_flow()  # patient/*.rs, only Observation read
    finding = next(f for f in t.findings() if f["rule"] == "scope-unused")
    assert "patient/*.rs" in finding["message"] and "Observation" in finding["message"]
    assert finding["launch"] == "L1" and finding["severity"] == "info"
    t = Timeline()
    t.discovery()
    scope = "launch patient/Observation.rs patient/Condition.rs patient/Patient.r"
    t.authorize(launch="L1", scope=scope)
    t.code_token(scope=scope)
    t.fhir("/fhir/Patient/p1")
    t.fhir("/fhir/Observation", query={"patient": "p1"})
    finding = next(f for f in t.findings() if f["rule"] == "scope-unused")
    assert "patient/Condition.rs" in finding["message"] and "Observation" not in finding["message"]


def test_scope_use_is_not_judged_before_any_fhir_call_nor_after_everything():
    t = Timeline()
    t.discovery()
    t.authorize(launch="L1")
    t.code_token()
    assert "scope-unused" not in t.rules()
    t.fhir("/fhir/Patient/p1/$everything")
    assert "scope-unused" not in t.rules()


def test_offline_access_never_used_then_used():
    t = Timeline()
    t.discovery()
    scope = "launch patient/*.rs offline_access"
    t.authorize(launch="L1", scope=scope)
    t.code_token(scope=scope, refresh="rt0000…")
    t.fhir("/fhir/Patient/p1/$everything")
    assert "offline-unused" in t.rules()
    t.token({"grant_type": "refresh_token", "refresh_token": "rt0000…", "client_id": "app"}, jti="j2",
            scope=scope, refresh="rt1111…")
    assert "offline-unused" not in t.rules()


def test_refresh_token_reuse():
    t = Timeline()
    t.discovery()
    scope = "launch patient/*.rs offline_access"
    t.authorize(launch="L1", scope=scope)
    t.code_token(scope=scope, refresh="rt0000…")
    t.token({"grant_type": "refresh_token", "refresh_token": "rt0000…"}, jti="j2", scope=scope, refresh="rt1111…")
    t.token({"grant_type": "refresh_token", "refresh_token": "rt0000…"}, status=400)
    finding = next(f for f in t.findings() if f["rule"] == "refresh-reuse")
    assert finding["launch"] == "L1" and finding["severity"] == "error"
    fresh = Timeline()
    for _ in range(2):  # no refresh_token at all is a plain error, not a reuse
        fresh.token({"grant_type": "refresh_token"}, status=400)
    assert "refresh-reuse" not in fresh.rules()


def test_code_reuse():
    t = Timeline()
    t.discovery()
    t.authorize(launch="L1")
    t.code_token()
    t.code_token(status=400)
    assert "code-reuse" in t.rules()


def test_token_in_the_query_string():
    t = good_flow()
    t.fhir("/fhir/Patient/p1", query={"access_token": "eyJhbG…"}, header=False, status=401)
    finding = next(f for f in t.findings() if f["rule"] == "token-in-url")
    assert finding["spec"]["url"].endswith("rfc6750#section-2.3")


def test_client_credentials_in_header_and_body():
    t = Timeline()
    t.discovery()
    t.authorize(launch="L1")
    basic = [("Authorization", "Basic app:s3cr3t… (base64-decoded)")]
    t.code_token(form={"client_secret": "s3cr3t…"}, headers=basic)
    finding = next(f for f in t.findings() if f["rule"] == "double-client-auth")
    assert finding["client"] == "app" and finding["severity"] == "error"
    t = Timeline()
    t.discovery()
    t.authorize(launch="L1")
    t.code_token(client="other", headers=[("Authorization", "Basic app:s3cr3t… (base64-decoded)")])
    assert "client-id-mismatch" in t.rules()


def test_http_redirect_uri_except_on_loopback():
    t = Timeline()
    t.discovery()
    t.authorize(redirect_uri="http://app.example/cb")
    t.authorize(client="local", redirect_uri="http://localhost:3000/cb")
    t.authorize(client="local6", redirect_uri="http://[::1]:3000/cb")
    flagged = [f for f in t.findings() if f["rule"] == "http-redirect"]
    assert [f["client"] for f in flagged] == ["app"]


def test_no_discovery_before_authorize():
    t = Timeline()
    t.authorize()
    assert "no-discovery" in t.rules()
    assert "no-discovery" not in good_flow().rules()


def test_secret_in_the_authorization_request():
    t = Timeline()
    t.discovery()
    t.authorize(client_secret="abcdef…")
    assert "secret-in-browser" in t.rules()


def test_v1_scopes():
    t = Timeline()
    t.discovery()
    t.authorize(scope="launch/patient patient/*.read user/Observation.write")
    finding = next(f for f in t.findings() if f["rule"] == "v1-scopes")
    assert "patient/*.read" in finding["message"] and finding["severity"] == "info"


def test_findings_collapse_per_rule_client_and_launch_and_sort_by_severity():
    t = Timeline()
    t.discovery()
    for _ in range(3):
        t.authorize(drop=("state",), launch="L1")
    t.authorize(launch="L1", aud="https://x.example/fhir", failure="aud 'https://x.example/fhir' is not ...")
    findings = t.findings()
    no_state = [f for f in findings if f["rule"] == "no-state"]
    assert len(no_state) == 1 and no_state[0]["count"] == 3
    assert findings[0]["severity"] == "error"


def test_resource_scopes():
    assert resource_scopes("openid patient/Observation.rs?category=x user/*.cruds launch/patient system/Patient.r") \
        == {"Observation": "patient/Observation.rs?category=x", "*": "user/*.cruds", "Patient": "system/Patient.r"}
