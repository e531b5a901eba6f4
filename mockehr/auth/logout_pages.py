"""RP-initiated logout: the `end_session_endpoint` (/auth/logout) and its pages.

OpenID Connect RP-Initiated Logout 1.0, as mockehr applies it:
- `id_token_hint` must be an ID token this server signed (an expired one is fine); else a 400 page
  and nobody is signed out. `client_id`, if sent with it, must be the token's audience.
- With a hint whose session (`sid`) is this browser's session, the session ends at once. Otherwise
  (no hint, a hint without a session, or another session) the user is asked first (section 2: the
  OP MUST ask when the hint does not belong to the current session); the confirmation ends this
  browser's session and the hint's.
- Afterwards the browser goes to `post_logout_redirect_uri` with `state` only if the app (named by
  the hint or client_id) registered that exact URI in `post_logout_redirect_uris`; else it sees the
  "signed out" page, which says why it was not sent back. `logout_hint` is accepted and recorded.
- Ending a session revokes the online_access grants made in it and notifies every app of the
  session that registered a `backchannel_logout_uri` (mockehr.auth.signin.end_session).
"""

from __future__ import annotations

import hmac

from authlib.common.urls import add_params_to_uri
from flask import Blueprint, current_app, redirect, request

from mockehr.auth import signin
from mockehr.auth.keys import JoseError
from mockehr.auth.logout import HintProblem, destination, read_id_token_hint

CARRIED = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint", "ui_locales")


def install(bp: Blueprint, render) -> None:
    """Add /auth/logout to the sign-in pages' blueprint; `render(template, None, status, **values)`."""

    @bp.route("/auth/logout", methods=["GET", "POST"])
    def logout():
        service = current_app.extensions["mockehr.auth"]
        params = {name: request.values.get(name) for name in CARRIED if request.values.get(name)}
        where = service.where()
        try:
            hint = None
            if "id_token_hint" in params:
                try:
                    header, claims = service.keys.verify(params["id_token_hint"])
                except (JoseError, ValueError, TypeError, RecursionError):  # untrusted input into a JOSE parser
                    raise HintProblem("id_token_hint is not a token signed by this server (or the signing keys "
                                      "were rotated since it was issued)") from None
                hint = read_id_token_hint(header, claims, where.issuer)
            client_id = params.get("client_id")
            if hint is not None and client_id and client_id != hint.client_id:
                raise HintProblem(f"client_id '{client_id}' does not match the id_token_hint, which was issued to "
                                  f"'{hint.client_id}'")
            client_id = client_id or (hint.client_id if hint else None)
            client = service.state.clients.get(client_id)
            if client_id and client is None:
                raise HintProblem(f"client_id '{client_id}' is not an app registered here")
        except HintProblem as exc:
            service.audit.record("logout", "failure", client=params.get("client_id"), reason=str(exc))
            return render("auth_error.html", None, status=400, heading="Sign-out refused", message=str(exc),
                          detail="Nobody was signed out, and you are not sent back to the app.")
        registered = client.metadata.extra.get("post_logout_redirect_uris") if client is not None else ()
        target = destination(params.get("post_logout_redirect_uri"), client_id, registered)
        app_name = (client.metadata.client_name or client.client_id) if client is not None else None
        browser = signin.browser_session(service)
        named = service.sessions.by_sid(hint.sid) if hint is not None and hint.sid else None
        ending = [s for s in (browser, named) if s is not None]
        if len(ending) == 2 and ending[0].sid == ending[1].sid:
            ending = ending[:1]
        who = {"client": client_id, "logout_hint": params.get("logout_hint"),
               "id_token_hint": "verified" if hint is not None else None}

        decision = request.form.get("decision") if request.method == "POST" else None
        if decision is None and ending and not (browser is not None and named is not None and browser.sid == named.sid):
            people = [{"ref": s.user, "name": service.tokens.user_claims(s.user).get("name")} for s in ending]
            return render("logout_confirm.html", None, people=people, app_name=app_name,
                          carried=params, csrf=signin.logout_csrf(), action=f"{service.root_url()}/auth/logout",
                          why=_why_ask(hint, named, browser))
        if decision is not None:
            if browser is not None and not hmac.compare_digest(request.form.get("csrf_token", ""),
                                                               signin.logout_csrf()):
                service.audit.record("logout", "failure", **who, reason="confirmation form refused: its CSRF token "
                                     "does not match this browser's session")
                return render("auth_error.html", None, status=400, heading="Form refused (CSRF protection)",
                              message="The sign-out form does not belong to this browser's session.",
                              detail="Nobody was signed out. Reload the app and sign out again.")
            if decision != "logout":
                service.audit.record("logout", "failure", **who, reason="the user chose to stay signed in")
                return _finish(target, params.get("state"), render, app_name, stayed=True)
        reason = "RP-initiated logout" + (f" by {client_id}" if client_id else "") + \
            (" (confirmed by the user)" if decision else " (id_token_hint of this browser's session)")
        for session in ending:
            signin.end_session(service, session, reason, **who)
        if not ending:
            service.audit.record("logout", **who, reason="RP-initiated logout: nobody was signed in (already "
                                 "signed out)")
        return _finish(target, params.get("state"), render, app_name)


def _why_ask(hint, named, browser) -> str:
    if hint is None:
        return "The app did not say which sign-in it means (no id_token_hint)."
    if named is None:
        return "The app's ID token does not belong to a sign-in session that is still open."
    if browser is None:
        return "The app's ID token belongs to a sign-in that is not this browser's."
    return "The app's ID token belongs to another sign-in session than this browser's."


def _finish(target, state: str | None, render, app_name: str | None, stayed: bool = False):
    if target.redirect:
        params = [("state", state)] if state is not None else []
        return redirect(add_params_to_uri(target.redirect, params), 303 if request.method == "POST" else 302)
    return render("signed_out.html", None, status=200, notice=target.notice, app_name=app_name, stayed=stayed)
