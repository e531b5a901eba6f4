"""Following a launch through its steps. Pure.

The steps of one app session share no single id, so `trace` follows the
handles the protocol passes along: the launch id (admin launch -> authorize),
the pending sign-in request (authorize -> login pages -> consent), the code
(redirect -> token request; kept as its redacted prefix), the access token's
jti (token response -> FHIR calls) and the refresh token's prefix (token
response -> refresh). Each step gets `client`, `launch` (the EHR launch id,
or "standalone #N" for a standalone authorization) and `grant` ("gN", N the
step that issued it); `grants` sums up what each grant asked for and did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mockehr.views import explain


@dataclass
class Grant:
    grant_id: str
    client: str | None
    launch: str | None
    scope: str
    step: int  # the token step that created it
    refresh_issued: bool = False
    refreshes: int = 0
    fhir_calls: int = 0
    types: set = field(default_factory=set)  # resource types its FHIR calls touched ("*": all)


@dataclass
class Trace:
    grants: dict = field(default_factory=dict)  # grant id -> Grant
    codes: dict = field(default_factory=dict)  # redacted code -> (launch, client)
    requests: dict = field(default_factory=dict)  # sign-in request id -> (launch, client)
    jtis: dict = field(default_factory=dict)  # access token jti -> grant id
    refresh: dict = field(default_factory=dict)  # redacted refresh token -> grant id
    used_refresh: dict = field(default_factory=dict)  # redacted refresh token -> times presented
    used_codes: dict = field(default_factory=dict)  # redacted code -> times exchanged


def trace(steps: list[dict]) -> Trace:
    """Annotate `steps` (oldest first) in place with client, launch and grant; answer the trace."""
    t = Trace()
    for step in steps:
        kind = step["kind"]
        if kind == "authorize":
            _authorize(step, t)
        elif kind in ("login", "second-factor", "picker", "consent"):
            _page(step, t)
        elif kind == "token":
            _token(step, t)
        elif kind == "launch":
            pass  # the launch id came with its audit event
        else:
            _bearer_call(step, t)
    return t


def params(step: dict) -> dict:
    return {**dict(step["query"]), **dict(step["form"] or [])}


def _authorize(step: dict, t: Trace) -> None:
    p = params(step)
    step["launch"] = p.get("launch") or f"standalone #{step['id']}"
    step["client"] = step["client"] or p.get("client_id")
    _follow_redirect(step, t)


def _follow_redirect(step: dict, t: Trace) -> None:
    """Remember where the redirect leads: the login pages (request=...) or back to the app (code=...)."""
    where = step["location"]
    pair = (step["launch"], step["client"])
    if where.get("code"):
        t.codes[where["code"]] = pair
    if where.get("request"):
        t.requests[where["request"]] = pair


def _page(step: dict, t: Trace) -> None:
    request_id = params(step).get("request")
    launch, client = t.requests.get(request_id, (None, None))
    step["launch"] = launch
    step["client"] = step["client"] or client
    _follow_redirect(step, t)


def _token(step: dict, t: Trace) -> None:
    p = params(step)
    grant_type = p.get("grant_type")
    step["client"] = step["client"] or p.get("client_id") or basic_user(step) or _assertion_issuer(step)
    grant = None
    if grant_type == "authorization_code":
        code = p.get("code")
        t.used_codes[code] = t.used_codes.get(code, 0) + 1
        launch, client = t.codes.get(code, (None, None))
        step["launch"], step["client"] = launch, step["client"] or client
    elif grant_type == "refresh_token":
        presented = p.get("refresh_token")
        t.used_refresh[presented] = t.used_refresh.get(presented, 0) + 1
        grant = t.grants.get(t.refresh.get(presented))
        if grant is not None:
            step["launch"], step["client"] = grant.launch, step["client"] or grant.client
            if step["outcome"] == "success":
                grant.refreshes += 1
    body = step["resp_json"] if isinstance(step["resp_json"], dict) else {}
    if step["outcome"] != "success" or "access_token" not in body:
        return
    if grant is None:
        grant = Grant(f"g{step['id']}", step["client"], step["launch"], body.get("scope", ""), step["id"])
        t.grants[grant.grant_id] = grant
    step["grant"] = grant.grant_id
    for token in step["tokens"]:
        jti = token["claims"].get("jti")
        if jti and token["header"].get("typ") == "at+jwt":
            t.jtis[jti] = grant.grant_id
    if body.get("refresh_token"):
        t.refresh[body["refresh_token"]] = grant.grant_id
        grant.refresh_issued = True


def _bearer_call(step: dict, t: Trace) -> None:
    """FHIR, userinfo, introspection, revocation: find the grant through the token they carry."""
    grant = None
    for token in step["tokens"]:
        grant = t.grants.get(t.jtis.get(token["claims"].get("jti")))
        if grant is not None:
            break
    if grant is None:
        grant = t.grants.get(t.refresh.get(params(step).get("token")))
    if grant is None:
        step["client"] = step["client"] or basic_user(step)
        return
    step["grant"] = grant.grant_id
    step["launch"] = grant.launch
    step["client"] = step["client"] or grant.client
    if step["kind"] == "fhir" and any(tok["label"].startswith("access token") for tok in step["tokens"]):
        grant.fhir_calls += 1
        grant.types |= explain.fhir_types(step["method"], step["path"], step["query"])


def basic_user(step: dict) -> str | None:
    header = step["req_headers"].get("Authorization", "")
    if header.lower().startswith("basic ") and ":" in header:
        return header[6:].split(":", 1)[0] or None
    return None


def _assertion_issuer(step: dict) -> str | None:
    for token in step["tokens"]:
        if token["label"].startswith("client_assertion"):
            return token["claims"].get("iss")
    return None
