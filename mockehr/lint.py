"""Client lint: what an app did wrong or risky, even where the server let it through. Pure.

`lint(steps, trace, fhir_base)` takes the inspector's traced timeline
(mockehr.views.inspect_timeline + inspect_trace) and answers findings:
{"rule", "severity" (error | warning | info), "client", "launch", "step",
"message", "spec": {"label", "url"}, "count"}. One finding per rule, client
and launch; `count` says how often it happened, `step` where it first did.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mockehr.views.explain import link
from mockehr.views.inspect_trace import Trace, basic_user, params

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
_V1 = (".read", ".write", ".*")
_VERIFIER_MIN, _VERIFIER_MAX = 43, 128


def lint(steps: list[dict], trace: Trace, fhir_base: str) -> list[dict]:
    found: dict[tuple, dict] = {}

    def flag(rule: str, severity: str, step: dict, message: str, spec: str) -> None:
        key = (rule, step.get("client"), step.get("launch"))
        if key in found:
            found[key]["count"] += 1
            return
        found[key] = {"rule": rule, "severity": severity, "client": step.get("client"),
                      "launch": step.get("launch"), "step": step["id"], "message": message, "spec": link(spec),
                      "count": 1}

    discovered = False
    challenges: dict[str, str] = {}  # launch -> code_challenge
    for step in steps:
        kind = step["kind"]
        if kind == "discovery":
            discovered = True
        elif kind == "authorize":
            _authorize(step, flag, fhir_base, discovered)
            challenge = params(step).get("code_challenge")
            if challenge and step.get("launch"):
                challenges[step["launch"]] = challenge
        elif kind == "token":
            _token(step, flag, trace, challenges.get(step.get("launch") or ""))
        if kind in ("fhir", "userinfo") and (_has(step["query"], "access_token") or _has(step["form"], "access_token")):
            flag("token-in-url", "warning", step, "the access token was sent as an access_token parameter; send it "
                 "in the Authorization: Bearer header (URLs end up in logs, history and Referer headers)",
                 "rfc6750-query")
    for grant in trace.grants.values():
        _grant(grant, flag)
    return sorted(found.values(), key=lambda f: (SEVERITY_ORDER[f["severity"]], f["step"]))


def _has(pairs, name: str) -> bool:
    return any(k == name for k, _ in pairs or ())


def _authorize(step: dict, flag, fhir_base: str, discovered: bool) -> None:
    p = params(step)
    if not discovered:
        flag("no-discovery", "info", step, "no .well-known/smart-configuration fetch came before this authorization "
             "request: apps SHALL discover the endpoints instead of hard-coding them", "smart-discovery")
    if "state" not in p:
        flag("no-state", "warning", step, "the authorization request has no state: the app cannot tell its own "
             "redirect from a forged one (CSRF); send an unguessable state and check it on return", "rfc6749-state")
    aud = p.get("aud")
    if not aud:
        flag("no-aud", "error", step, "the authorization request has no aud: SMART apps SHALL name the FHIR server "
             f"they want a token for ({fhir_base}), so a token cannot be phished for another server",
             "smart-authorize")
    elif step["outcome"] == "failure" and aud.rstrip("/") != fhir_base.rstrip("/") and "aud" in (step["reason"] or ""):
        # the server compared aud with its base as the app reached it; trust its verdict, not our own URL
        flag("aud-differs", "error", step, f"aud '{aud}' is not this server's FHIR base {fhir_base}: the app uses "
             "the wrong iss (or kept one from another server)", "smart-authorize")
    method = p.get("code_challenge_method")
    if "code_challenge" not in p:
        flag("no-pkce", "warning", step, "no PKCE: the request has no code_challenge; SMART apps SHALL use PKCE "
             "with S256 so a stolen code is useless", "rfc7636")
    elif method != "S256":
        flag("pkce-plain", "error", step, f"code_challenge_method is {method or 'missing (which means plain)'}: "
             "only S256 protects the code; plain sends the secret itself", "rfc7636-plain")
    redirect = p.get("redirect_uri") or ""
    parts = urlsplit(redirect)
    if parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK_HOSTS:
        flag("http-redirect", "warning", step, f"redirect_uri {redirect} is plain http on a non-loopback host: the "
             "code travels unencrypted; use https (http is fine for localhost only)", "rfc6749-redirect-tls")
    if "client_secret" in p:
        flag("secret-in-browser", "error", step, "client_secret was sent in the authorization request: it passes "
             "through the browser (history, logs); only the token endpoint may see it", "rfc6749-client-auth")
    scope = p.get("scope") or ""
    old = [s for s in scope.split() if "/" in s and s.endswith(_V1)]
    if old:
        flag("v1-scopes", "info", step, f"SMART v1 scopes ({', '.join(old[:3])}{', ...' if len(old) > 3 else ''}): "
             "v2 spells them .rs / .cruds and can narrow them further", "smart-scopes")


def _token(step: dict, flag, trace: Trace, challenge: str | None) -> None:
    p = params(step)
    header_client = basic_user(step)
    if header_client and ("client_secret" in p or "client_assertion" in p):
        flag("double-client-auth", "error", step, "the token request authenticates the client twice (Authorization: "
             "Basic and credentials in the body); a client MUST use one method per request", "rfc6749-client-auth")
    elif header_client and p.get("client_id") and p["client_id"] != header_client:
        flag("client-id-mismatch", "error", step, f"client_id '{p['client_id']}' in the body differs from "
             f"'{header_client}' in the Authorization header", "rfc6749-client-auth")
    grant_type = p.get("grant_type")
    if grant_type == "authorization_code":
        facts = step["facts"].get("code_verifier")
        verifier = p.get("code_verifier") or ""
        if facts and not _VERIFIER_MIN <= facts["length"] <= _VERIFIER_MAX:
            flag("weak-verifier", "error", step, f"the code_verifier is {facts['length']} characters; RFC 7636 "
                 "wants 43 to 128", "rfc7636-verifier")
        elif facts and facts["distinct"] < 8:
            flag("weak-verifier", "warning", step, f"the code_verifier uses only {facts['distinct']} different "
                 "characters: it does not look random (use 32 random bytes, base64url-encoded)", "rfc7636-verifier")
        if challenge and verifier and verifier.rstrip("…") and challenge.startswith(verifier.rstrip("…")):
            flag("pkce-plain", "error", step, "the code_verifier is the code_challenge itself (plain PKCE): anyone "
                 "who saw the authorization request can redeem the code; send SHA-256 of the verifier (S256)",
                 "rfc7636-plain")
        if p.get("code") and trace.used_codes.get(p["code"], 0) > 1 and step["outcome"] == "failure":
            flag("code-reuse", "error", step, "the app exchanged the same authorization code twice; a code is "
                 "single-use (the server revokes what the first exchange issued)", "rfc6749-token")
    presented = p.get("refresh_token")
    if grant_type == "refresh_token" and presented and trace.used_refresh.get(presented, 0) > 1 \
            and step["outcome"] == "failure":
        flag("refresh-reuse", "error", step, "the app presented a refresh token it had already used; refresh "
             "tokens rotate here: store the new one from each response (reuse revokes the grant)", "smart-refresh")


def resource_scopes(scope: str) -> dict[str, str]:
    """Resource type -> the scope granting it ('*' for wildcards), from a scope string."""
    types = {}
    for word in scope.split():
        context, _, rest = word.partition("/")
        if context in ("patient", "user", "system") and "." in rest:
            types.setdefault(rest.split(".", 1)[0], word)
    return types


def _grant(grant, flag) -> None:
    if grant.fhir_calls == 0:
        return  # nothing to compare with yet
    at = {"id": grant.step, "client": grant.client, "launch": grant.launch}
    granted = resource_scopes(grant.scope)
    if granted and "*" not in grant.types:
        if "*" in granted:
            used = ", ".join(sorted(grant.types)) or "nothing"
            flag("scope-unused", "info", at, f"{granted['*']} grants every resource type, but the app only used "
                 f"{used}: ask for those types only (least privilege)", "smart-scopes")
        else:
            unused = sorted(set(granted) - grant.types)
            if unused:
                flag("scope-unused", "info", at, f"granted but never used: {', '.join(granted[t] for t in unused)}; "
                     "ask only for what the app reads or writes", "smart-scopes")
    words = grant.scope.split()
    if "offline_access" in words and grant.refresh_issued and grant.refreshes == 0:
        flag("offline-unused", "info", at, "offline_access was granted but the refresh token was never used (so "
             "far): ask for offline_access only if the app must work after the access token expires",
             "smart-refresh")
