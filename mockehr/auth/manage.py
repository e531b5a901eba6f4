"""The management page (SMART `management_endpoint`): which apps hold access, and a revoke button each."""

from __future__ import annotations

import hmac
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, redirect, render_template, request

from mockehr.auth.model import new_secret

COOKIE = "mockehr_manage"


def grant_rows(state) -> list[dict]:
    """Live grants, newest first, as the page shows them."""
    rows = []
    for grant in sorted(state.grants.values(), key=lambda g: g.created, reverse=True):
        if grant.revoked:
            continue
        client = state.clients.get(grant.client_id)
        name = (client.metadata.client_name if client else None) or grant.client_id
        rows.append({"grant_id": grant.grant_id, "app": name, "client_id": grant.client_id,
                     "user": grant.context.user or "(backend service)", "patient": grant.context.patient or "",
                     "scope": grant.scope, "refresh": bool(grant.refresh_digest),
                     "since": datetime.fromtimestamp(grant.created, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
    return rows


def build_blueprint() -> Blueprint:
    bp = Blueprint("manage", __name__)

    @bp.get("/auth/manage")
    def manage():
        auth = current_app.extensions["mockehr.auth"]
        csrf = request.cookies.get(COOKIE) or new_secret(16)
        page = render_template("manage.html", grants=grant_rows(auth.state), csrf=csrf,
                               revoked=request.args.get("revoked"))
        response = Response(page, mimetype="text/html")
        response.set_cookie(COOKIE, csrf, httponly=True, samesite="Strict", path="/auth/manage")
        return response

    @bp.post("/auth/manage/revoke")
    def revoke():
        auth = current_app.extensions["mockehr.auth"]
        cookie, field = request.cookies.get(COOKIE, ""), request.form.get("csrf", "")
        if not cookie or not hmac.compare_digest(cookie, field):
            return render_template("auth_error.html", heading="Revocation refused",
                                   message="This form expired or came from another site.",
                                   detail="Reload the management page and try again."), 400
        grant = auth.state.grants.get(request.form.get("grant_id", ""))
        if grant is None:
            return render_template("auth_error.html", heading="Revocation refused", message="There is no such grant.",
                                   detail="It may have been revoked already, or the server was reset."), 404
        auth.state.revoke_grant(grant)
        auth.audit.record("revoke", client=grant.client_id, user=grant.context.user, patient=grant.context.patient,
                          reason="revoked by the user on the management page")
        return redirect(f"{auth.root_url()}/auth/manage?revoked={grant.client_id}", 303)

    return bp
