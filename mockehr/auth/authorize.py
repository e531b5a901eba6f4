"""The authorization request: checks in the order the specs give them, and
the launch context it resolves to.

Two kinds of failure: `PageError` (bad or unknown client, bad redirect_uri:
we must not redirect, RFC 6749 4.1.2.1) and `RedirectError` (everything else:
sent back to the verified redirect_uri with error, error_description, state).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mockehr.auth.dpop import is_thumbprint
from mockehr.auth.model import AuthContext, Client, Launch
from mockehr.auth.scopes import ScopeError, ScopeSet, parse_scopes, within_registration

_CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


class PageError(Exception):
    """Shown as an HTML page; never redirected."""


@dataclass
class RedirectError(Exception):
    error: str
    description: str


@dataclass
class AuthorizeRequest:
    """A validated authorization request, waiting for the user (or auto-approve)."""

    client: Client
    redirect_uri: str
    state: str | None
    scopes: ScopeSet
    challenge: str | None
    challenge_method: str | None
    nonce: str | None
    login_hint: str | None
    launch: Launch | None
    prompt: str | None = None
    flags: list[str] = field(default_factory=list)  # things the audit trail should point out
    oidc: object = None  # sessions.Requirements: prompt, max_age, acr (set by signin.prepare)
    dpop_jkt: str | None = None  # the DPoP key thumbprint the code is bound to (RFC 9449 10)

    @property
    def is_ehr_launch(self) -> bool:
        return self.launch is not None

    @property
    def sim_error(self) -> str | None:
        """The simulated error this launch (or, failing that, this client) asks for."""
        if self.launch is not None and self.launch.sim_error:
            return self.launch.sim_error
        return self.client.metadata.extra.get("sim_error")


@dataclass(frozen=True)
class Policy:
    fhir_base: str
    strict: bool


def check_client(params: dict, client: Client | None, strict: bool) -> tuple[Client | None, str]:
    """(known client or None to auto-register, verified redirect_uri); PageError when we must not redirect."""
    client_id = params.get("client_id")
    redirect_uri = params.get("redirect_uri")
    if not client_id:
        raise PageError("The request has no client_id, so there is no app to send you back to.")
    if client is None:
        if strict:
            raise PageError(f"Unknown client_id '{client_id}'. This server runs with --strict: register the "
                            "app first (registration endpoint, or `mockehr clients add`).")
        if not redirect_uri:
            raise PageError(f"Unknown client_id '{client_id}' and no redirect_uri: send a redirect_uri so the "
                            "app can be registered on the spot.")
        problem = redirect_uri_problem(redirect_uri)
        if problem:
            raise PageError(f"redirect_uri '{redirect_uri}' {problem}.")
        return None, redirect_uri
    if not redirect_uri:
        default = client.get_default_redirect_uri()
        if default is None:
            raise PageError(f"Client '{client_id}' has several registered redirect URIs; the request must name one.")
        return client, default
    if not client.check_redirect_uri(redirect_uri):
        registered = ", ".join(client.metadata.redirect_uris) or "none"
        raise PageError(f"redirect_uri '{redirect_uri}' is not registered for client '{client_id}' "
                        f"(registered: {registered}); it must match exactly.")
    return client, redirect_uri


def redirect_uri_problem(uri: str) -> str | None:
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. "http://[::1/cb"
        return "is not a valid URI"
    if not parts.scheme:
        return "is not an absolute URI"
    if parts.fragment:
        return "must not contain a fragment"
    if parts.scheme in ("http", "https") and not parts.netloc:
        return "has no host"
    return None


def check_request(params: dict, client: Client, redirect_uri: str, policy: Policy,
                  find_launch) -> AuthorizeRequest:
    """Everything after the client checks; RedirectError names what is wrong."""
    response_type = params.get("response_type")
    if response_type != "code":
        raise RedirectError("unsupported_response_type",
                            f"response_type must be 'code' (got {response_type!r}); SMART uses the code flow only")
    try:
        scopes = parse_scopes(params.get("scope") or "")
    except ScopeError as exc:
        raise RedirectError("invalid_scope", str(exc)) from None
    if not scopes.text():
        raise RedirectError("invalid_scope", "scope is missing: SMART apps must ask for scopes")
    aud = params.get("aud")
    if not aud:
        raise RedirectError("invalid_request", f"aud is missing; it must be the FHIR base URL {policy.fhir_base}")
    if aud.rstrip("/") != policy.fhir_base:
        raise RedirectError("invalid_request", f"aud '{aud}' is not this server's FHIR base URL {policy.fhir_base}")
    flags: list[str] = []
    scopes = _within_registered_scope(scopes, client, policy.strict, flags)
    challenge, method = _check_pkce(params, client, policy.strict, flags)
    launch = None
    launch_id = params.get("launch")
    if launch_id:
        launch = find_launch(launch_id)
        if launch is None:
            raise RedirectError("invalid_request", f"launch '{launch_id}' is unknown or has expired; "
                                "start the EHR launch again")
    elif scopes.launch:
        raise RedirectError("invalid_request", "scope asks for 'launch' (an EHR launch) but there is no launch "
                            "parameter; standalone apps ask for launch/patient instead")
    dpop_jkt = params.get("dpop_jkt")
    if dpop_jkt is not None and not is_thumbprint(dpop_jkt):
        raise RedirectError("invalid_request", "dpop_jkt must be the base64url SHA-256 JWK thumbprint (RFC 7638) of "
                            "the client's DPoP key: 43 characters of A-Z a-z 0-9 - _")
    return AuthorizeRequest(client, redirect_uri, params.get("state"), scopes, challenge, method,
                            params.get("nonce"), params.get("login_hint"), launch, params.get("prompt"), flags,
                            dpop_jkt=dpop_jkt)


def _within_registered_scope(scopes: ScopeSet, client: Client, strict: bool, flags: list[str]) -> ScopeSet:
    """A client registered with a `scope` (RFC 7591) gets at most that: the rest is dropped (and
    flagged), or refused under --strict; nothing left -> invalid_scope."""
    registered = getattr(client.metadata, "scope", None)
    if not registered:
        return scopes
    kept, dropped = within_registration(scopes, parse_scopes(registered))
    if not dropped:
        return scopes
    beyond = f"scope {' '.join(dropped)} goes beyond what client '{client.client_id}' registered ('{registered}')"
    if strict or not kept.text():
        raise RedirectError("invalid_scope", beyond)
    flags.append(f"{beyond}; granted the registered part only: {kept.text()}")
    return kept


def _check_pkce(params: dict, client: Client, strict: bool, flags: list[str]) -> tuple[str | None, str | None]:
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if method:
            raise RedirectError("invalid_request", "code_challenge_method without a code_challenge")
        if strict or getattr(client.metadata, "require_pkce", False):
            why = "this server runs with --strict" if strict else "this client was registered with require_pkce"
            raise RedirectError("invalid_request", f"PKCE is required ({why}): send code_challenge with "
                                "code_challenge_method=S256")
        flags.append("no PKCE: the request carries no code_challenge (SMART apps SHALL use PKCE S256)")
        return None, None
    if method == "plain" or method is None:
        raise RedirectError("invalid_request", "code_challenge_method must be S256; 'plain' is not supported "
                            "(SMART App Launch 2 forbids it)" if method else
                            "code_challenge_method is missing (which means 'plain'); send S256")
    if method != "S256":
        raise RedirectError("invalid_request", f"code_challenge_method '{method}' is not supported; use S256")
    if not _CHALLENGE.fullmatch(challenge):
        raise RedirectError("invalid_request", "code_challenge must be 43-128 characters of A-Z a-z 0-9 - . _ ~ "
                            "(the base64url SHA-256 of the verifier)")
    return challenge, method


@dataclass(frozen=True)
class Directory:
    """What the authorize flow may look up in the FHIR data (injected: auth never imports fhir)."""

    exists: object  # (type, id) -> bool
    first_patient: object  # () -> id | None
    default_practitioner: object  # () -> id | None
    latest_encounter: object  # (patient id) -> id | None


def auto_context(req: AuthorizeRequest, directory: Directory, now: int) -> AuthContext:
    """The context --auto-approve picks, exactly as the contract orders it."""
    launch = req.launch
    user = _hinted_user(req.login_hint, directory) or (launch.user if launch else None)
    if user is None:
        default = directory.default_practitioner()
        user = f"Practitioner/{default}" if default else None
    ctx = AuthContext(user=user, nonce=req.nonce, auth_time=now, sim_error=req.sim_error)
    if launch:
        apply_launch(ctx, launch)
    if ctx.patient is None and user and user.startswith("Patient/"):
        ctx.patient = user.split("/", 1)[1]
    if ctx.patient is None and req.scopes.launch_patient:
        ctx.patient = directory.first_patient()
    if ctx.encounter is None and req.scopes.launch_encounter and ctx.patient:
        ctx.encounter = directory.latest_encounter(ctx.patient)
    return ctx


def apply_launch(ctx: AuthContext, launch: Launch) -> None:
    """Copy what an EHR launch fixes into the context (auto-approve and the login pages alike)."""
    ctx.patient, ctx.encounter = launch.patient, launch.encounter
    ctx.fhir_context, ctx.intent = list(launch.fhir_context), launch.intent
    ctx.need_patient_banner = launch.need_patient_banner
    ctx.smart_style_url = launch.smart_style_url
    ctx.launch_id = launch.launch_id


def _hinted_user(hint: str | None, directory: Directory) -> str | None:
    if not hint:
        return None
    rtype, _, rid = hint.partition("/")
    if rtype in ("Practitioner", "Patient") and rid and directory.exists(rtype, rid):
        return hint
    raise RedirectError("invalid_request", f"login_hint '{hint}' is not a known Practitioner/ID or Patient/ID")


def granted_scope(req: AuthorizeRequest, ctx: AuthContext, approved: ScopeSet | None = None) -> str:
    """The scope string the grant gets: what was asked (or approved on the consent page) and can be honoured."""
    scopes = approved or req.scopes
    words = []
    for token in scopes.text().split():
        if token.startswith("system/"):
            continue  # backend-services scopes are for client_credentials only
        if token.startswith("patient/") and not ctx.patient:
            continue
        if token.startswith("user/") and not ctx.user:
            continue
        if token == "launch/patient" and not ctx.patient:
            continue
        if token == "launch/encounter" and not ctx.encounter:
            continue
        if token == "launch" and not req.is_ehr_launch:
            continue
        if token in ("openid", "fhirUser", "profile", "email") and not ctx.user:
            continue
        words.append(token)
    return " ".join(words)
