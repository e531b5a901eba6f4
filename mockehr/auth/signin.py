"""The HTTP side of sign-in sessions, prompt / max_age, step-up and the end of a session.

The authorize endpoint (routes.py) and the sign-in pages (pages.py) call these; the decisions are
pure functions of sessions.py and stepup.py, the logout token is logout.py's, delivery is
backchannel.py's. This module reads and sets the session cookie, audits, and ends sessions.

The session cookie is `mockehr_session` (HttpOnly, SameSite=Lax, path /auth): a random secret
whose digest names the session. It is set on whatever response finishes the request that signed
the browser in (a page, or the redirect back to the app), by an after-request hook.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from flask import Response, g, request

from mockehr.auth import consent
from mockehr.auth.authorize import AuthorizeRequest, RedirectError, granted_scope
from mockehr.auth.backchannel import Delivery
from mockehr.auth.logout import LOGOUT_TOKEN_TYPE, logout_token_claims
from mockehr.auth.model import AuthContext, Grant, digest
from mockehr.auth.scopes import parse_scopes
from mockehr.auth.sessions import Requirements, Session, parse_requirements, reuse_problem
from mockehr.auth.stepup import ACR_VALUES, acr_claim

SESSION_COOKIE = "mockehr_session"
_UNSET = object()


class SignedOut(Exception):
    """The session this sign-in belonged to ended meanwhile (logout in another tab)."""


# -- the cookie ----------------------------------------------------------------
def browser_session(service) -> Session | None:
    """The session of the browser making this request (one started during it counts)."""
    known = g.get("mockehr_session", _UNSET)
    if known is not _UNSET:
        return known
    return service.sessions.by_cookie(request.cookies.get(SESSION_COOKIE))


def _remember(session: Session | None, cookie: str | None) -> None:
    g.mockehr_session = session
    g.mockehr_session_cookie = cookie  # "" clears it


def set_cookie(response: Response) -> Response:
    """after_request: hand the browser its new session cookie, or clear the ended one."""
    cookie = g.pop("mockehr_session_cookie", None)
    if cookie:
        response.set_cookie(SESSION_COOKIE, cookie, path="/auth", httponly=True, samesite="Lax",
                            secure=request.is_secure)
    elif cookie == "":
        response.delete_cookie(SESSION_COOKIE, path="/auth", httponly=True, samesite="Lax", secure=request.is_secure)
    return response


def logout_csrf() -> str:
    """The logout confirmation form's token: derived from the session cookie it protects."""
    return digest(f"logout:{request.cookies.get(SESSION_COOKIE, '')}")


# -- the authorization request ---------------------------------------------------
def prepare(service, req: AuthorizeRequest, params: dict) -> None:
    """prompt, max_age, acr_values and claims (RedirectError if malformed), and the step-up fault."""
    requirements = parse_requirements(params)
    firing = service.faults.on_event("step-up", scopes=req.scopes.text().split())
    if firing is not None:
        service.fault_fired(firing, client=req.client.client_id)
        requirements = dataclasses.replace(requirements, step_up=f"fault {firing.fault_id} ({firing.spec.text}) "
                                                                 "demands a second factor for these scopes")
    if requirements.acr.unknown:
        req.flags.append(f"acr value(s) {', '.join(requirements.acr.unknown)} are unknown here and were ignored; "
                         f"this server supports {', '.join(ACR_VALUES)}")
    req.oidc = requirements


def _requirements(req: AuthorizeRequest) -> Requirements:
    return req.oidc if req.oidc is not None else Requirements()


def _apply(ctx: AuthContext, session: Session, req: AuthorizeRequest) -> None:
    """The context carries the session into the code, the tokens and the id_token (sid, auth_time, amr, acr)."""
    ctx.sid = session.sid
    ctx.auth_time = session.auth_time
    ctx.amr = list(session.amr)
    ctx.acr = acr_claim(_requirements(req).acr, session.level)


def _sign_in(service, user: str, now: int, *, fresh: bool, reason: str) -> Session:
    """The browser's session for `user`: kept as is (same user, not fresh), signed in again, or a new one
    (ending the session of whoever else was signed in in this browser)."""
    session = browser_session(service)
    if session is not None and session.user == user:
        if fresh:
            service.sessions.signed_in_again(session, now)
        return session
    if session is not None:
        end_session(service, session, f"{user} signed in in the same browser ({reason})")
    session, cookie = service.sessions.start(user, now)
    _remember(session, cookie)
    return session


def _known_user(service, req: AuthorizeRequest, ctx: AuthContext, now: int, how: str) -> Session:
    """Sign in a user the request already names (auto-approve's pick, an EHR launch's user)."""
    session = browser_session(service)
    reusable = session is not None and session.user == ctx.user and \
        reuse_problem(session, _requirements(req), None, now) is None
    session = _sign_in(service, ctx.user, now, fresh=not reusable, reason=how)
    return session


def auto(service, req: AuthorizeRequest, ctx: AuthContext) -> None:
    """--auto-approve: the contract's user signs in at once (or keeps this browser's session); an
    acr_values or step-up demand is met automatically (amr gets otp)."""
    if not ctx.user:
        return
    session = _known_user(service, req, ctx, int(service.clock()), "auto-approve")
    if consent.required_level(req) > session.level:
        service.sessions.stepped_up(session)
        service.audit.record("step-up", client=req.client.client_id, user=ctx.user, sid=session.sid,
                             method="auto-approve",
                             reason=_step_up_reason(req) + "; met automatically (--auto-approve)")
    _apply(ctx, session, req)


def _step_up_reason(req: AuthorizeRequest) -> str:
    requirements = _requirements(req)
    if requirements.step_up:
        return requirements.step_up
    return f"the app asked for acr {' or '.join(requirements.acr.values)}"


def on_open(service, req: AuthorizeRequest, ctx: AuthContext, progress: consent.Progress) -> None:
    """The sign-in pages open a request: an EHR launch's user signs in; else this browser's session
    signs the user in (single sign-on: no login page) unless prompt, max_age or login_hint say otherwise."""
    now = int(service.clock())
    if req.launch is not None and req.launch.user:
        _apply(ctx, _known_user(service, req, ctx, now, "EHR launch"), req)
        return
    session = browser_session(service)
    problem = reuse_problem(session, _requirements(req), req.login_hint, now)
    if problem is None:
        consent.choose_user(req, ctx, progress, session.user, session.auth_time)
        _apply(ctx, session, req)
        service.audit.record("login", client=req.client.client_id, user=session.user, method="session", sid=session.sid,
                             reason=f"signed in in this browser since {_iso(session.auth_time)}: single sign-on, "
                                    "no login page")
    elif session is not None:
        progress.notice = f"{session.user} is signed in in this browser, but {problem}: sign in again."


def signed_in(service, req: AuthorizeRequest, ctx: AuthContext, user: str) -> None:
    """The login page's choice: a fresh sign-in (a new session, or the same one with a new auth_time)."""
    session = _sign_in(service, user, int(service.clock()), fresh=True, reason="login page")
    _apply(ctx, session, req)


def stepped_up(service, req: AuthorizeRequest, ctx: AuthContext) -> None:
    """The second-factor page took the right code: the session (and this sign-in) reach level 2."""
    session = live_session(service, ctx)
    service.sessions.stepped_up(session)
    _apply(ctx, session, req)
    service.audit.record("step-up", client=req.client.client_id, user=ctx.user, sid=session.sid,
                         method="second-factor page", reason=_step_up_reason(req) + "; the one-time code was right")


def live_session(service, ctx: AuthContext) -> Session:
    session = service.sessions.by_sid(ctx.sid)
    if session is None:
        raise SignedOut("You signed out (or were signed out) while this sign-in was under way.")
    return session


def remembered(service, req: AuthorizeRequest, ctx: AuthContext, scope: str) -> bool:
    """Whether this app was given at least `scope` for this patient earlier in the session (no prompt=consent)."""
    if _requirements(req).consent:
        return False
    return service.sessions.consented(service.sessions.by_sid(ctx.sid), req.client.client_id, ctx.patient, scope)


def remember(service, req: AuthorizeRequest, ctx: AuthContext, scope: str) -> None:
    session = service.sessions.by_sid(ctx.sid)
    if session is not None:
        service.sessions.remember_consent(session, req.client.client_id, ctx.patient, scope)


def silently(service, req: AuthorizeRequest) -> tuple[AuthContext, str]:
    """prompt=none without --auto-approve: the code at once from the session, or the OIDC error that says
    which page would have been needed (login_required, interaction_required, consent_required)."""
    now = int(service.clock())
    ctx = AuthContext(nonce=req.nonce, sim_error=req.sim_error)
    progress = consent.Progress("prompt=none")
    consent.start(req, ctx, now)
    if req.launch is not None and req.launch.user:
        session = _known_user(service, req, ctx, now, "EHR launch")
    else:
        session = browser_session(service)
        problem = reuse_problem(session, _requirements(req), req.login_hint, now)
        if problem is not None:
            raise RedirectError("login_required", f"prompt=none, but the user must sign in: {problem}")
        consent.choose_user(req, ctx, progress, session.user, session.auth_time)
        service.audit.record("login", client=req.client.client_id, user=session.user, method="session",
                             sid=session.sid, reason="prompt=none: signed in by this browser's session")
    _apply(ctx, session, req)
    if consent.required_level(req) > session.level:
        raise RedirectError("interaction_required", f"prompt=none, but a second factor is needed "
                            f"({_step_up_reason(req)}) and the session has none")
    for step, what in ((consent.PATIENT, "a patient must be chosen on the patient picker"),
                       (consent.ENCOUNTER, "an encounter must be chosen on the encounter picker")):
        if consent.applies(step, req, ctx) and not consent.done(step, ctx, progress, req):
            raise RedirectError("interaction_required", f"prompt=none, but {what}")
    scope = granted_scope(req, ctx)
    if not scope:
        raise RedirectError("invalid_scope", f"none of the requested scopes ({req.scopes.text()}) can be granted "
                            "in this context")
    skip = req.launch is not None and req.launch.skip_consent
    if not skip and not service.sessions.consented(session, req.client.client_id, ctx.patient, scope):
        raise RedirectError("consent_required", f"prompt=none, but the user has not approved {scope} for this app "
                            "in this session")
    return ctx, scope


# -- the end of a session ----------------------------------------------------------
def _online(grant: Grant) -> bool:
    scopes = parse_scopes(grant.scope)
    return grant.online or (scopes.online_access and not scopes.offline_access)


def end_session(service, session: Session, reason: str, **audit_fields) -> None:
    """End the session: revoke its apps' online_access grants, send the back-channel logout tokens
    (in the background), audit it. The browser's cookie is cleared if it was this browser's session."""
    current = browser_session(service)
    ended = service.sessions.end(session.sid)
    if ended is None:
        return
    if current is not None and current.sid == ended.sid:
        _remember(None, "")
    with service.state.lock:
        grants = [grant for grant in service.state.grants.values()
                  if grant.context.sid == ended.sid and not grant.revoked and _online(grant)]
    for grant in grants:
        service.state.revoke_grant(grant)
    where, now = service.where(), int(service.clock())
    deliveries = []
    for client_id in ended.clients:
        client = service.state.clients.get(client_id)
        uri = client.metadata.extra.get("backchannel_logout_uri") if client is not None else None
        if not uri:
            continue
        claims = logout_token_claims(where.issuer, client_id, service.subjects.of(client, ended.user), ended.sid, now)
        token = service.keys.sign(claims, "RS256", typ=LOGOUT_TOKEN_TYPE, forged=service.tokens.forged())
        deliveries.append(Delivery(client_id, uri, token, ended.sid, ended.user))
    service.audit.record("logout", sid=ended.sid, user=ended.user, reason=reason,
                         revoked=[g.grant_id[:8] for g in grants] or None,
                         backchannel=[d.client_id for d in deliveries] or None, **audit_fields)
    service.notifier.send(deliveries)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")

