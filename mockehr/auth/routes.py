"""HTTP for the authorization server: discovery, authorize, token, registration,
userinfo, introspection, revocation, JWKS. Thin: the work is in AuthService."""

from __future__ import annotations

import orjson
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import InvalidClientError, OAuth2Error
from flask import Blueprint, Response, current_app, redirect, render_template, request

from mockehr.auth import authorize, discovery, dpop_http, par_http, signin
from mockehr.auth.model import redact
from mockehr.auth.registration import RegistrationError
from mockehr.auth.service import AuthService
from mockehr.auth.sim_errors import simulated
from mockehr.auth.tokens import InvalidToken

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _auth() -> AuthService:
    return current_app.extensions["mockehr.auth"]


def json_answer(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def oauth_error(error: str, description: str, status: int = 400, headers: dict | None = None) -> Response:
    return json_answer({"error": error, "error_description": description}, status, {**NO_STORE, **(headers or {})})


def build_blueprint() -> Blueprint:
    bp = Blueprint("auth", __name__)

    @bp.get("/fhir/.well-known/smart-configuration")
    def smart_configuration():
        return json_answer(discovery.smart_configuration(_auth().root_url(),
                                                         require_par=dpop_http.setting("require_par")),
                           headers={"Cache-Control": "max-age=60"})

    @bp.get("/fhir/.well-known/openid-configuration")
    def openid_configuration():
        return json_answer(discovery.openid_configuration(_auth().root_url(),
                                                          require_par=dpop_http.setting("require_par")),
                           headers={"Cache-Control": "max-age=60"})

    @bp.get("/auth/jwks")
    def jwks():
        return json_answer(_auth().keys.jwks(), headers={"Cache-Control": "max-age=60"})

    @bp.route("/auth/authorize", methods=["GET", "POST"])
    def authorize_endpoint():
        service = _auth()
        params = request.values.to_dict()
        try:
            pushed = par_http.resolve(service, params)  # client_id + request_uri: the pushed request (RFC 9126 4)
            params = pushed.params
            client, redirect_uri = authorize.check_client(params, service.state.clients.get(params.get("client_id")),
                                                          service.strict)
            if client is None:
                client = service.auto_register(params["client_id"], redirect_uri)
        except authorize.PageError as exc:
            service.audit.record("authorize", "failure", client=params.get("client_id"), reason=str(exc))
            return render_template("auth_error.html", message=str(exc)), 400
        where = service.where()

        def back(**answer) -> Response:
            return authorization_redirect(redirect_uri, params.get("state"), where.issuer, **answer)

        try:
            par_http.check(service, client, pushed)  # a reused or expired request_uri; PAR required but not used
            req = authorize.check_request(params, client, redirect_uri,
                                          authorize.Policy(where.fhir_base, service.strict), service.state.launch)
            sim = simulated(req.sim_error, "authorize")
            if sim is not None and sim.error != "invalid_scope":
                # a bad client_id or redirect_uri is never answered with a redirect (RFC 6749 4.1.2.1)
                service.audit.record("authorize", "failure", client=client.client_id, reason=sim.description)
                return render_template("auth_error.html", message=sim.description), 400
            if sim is not None:
                raise authorize.RedirectError(sim.error, sim.description)
            denial = service.faults.on_event("deny")
            if denial is not None:
                service.fault_fired(denial)
                raise authorize.RedirectError("access_denied", f"the user denied access (simulated by fault "
                                              f"{denial.fault_id}: {denial.spec.text})")
            signin.prepare(service, req, params)  # prompt, max_age, acr_values, claims; the step-up fault
            if not service.auto_approve and req.oidc.none:
                ctx, scope = signin.silently(service, req)  # prompt=none: the session, or login_required & co
                return back(code=service.issue_code(req, ctx, scope))
            if not service.auto_approve:
                return authorize_in_pages(req)
            ctx = service.auto_context(req)
            scope = authorize.granted_scope(req, ctx)
            if not scope:  # a token with an empty scope grants nothing (and Inferno refuses it)
                raise authorize.RedirectError("invalid_scope", f"none of the requested scopes "
                                              f"({req.scopes.text()}) can be granted in this context; patient/ "
                                              "scopes need a patient: ask for launch/patient too")
            signin.auto(service, req, ctx)  # the session (sid, auth_time, amr, acr); acr_values met at once
        except authorize.RedirectError as exc:
            service.audit.record("authorize", "failure", client=client.client_id, error=exc.error,
                                 reason=exc.description)
            return back(error=exc.error, error_description=exc.description)
        return back(code=service.issue_code(req, ctx, scope))

    def authorize_in_pages(req: authorize.AuthorizeRequest) -> Response:
        """Park the validated request and send the browser to the login page."""
        pending = _auth().state.add_pending(req)
        return redirect(f"{_auth().root_url()}/auth/login?request={pending.request_id}", 302)

    @bp.post("/auth/par")
    def pushed_authorization_request():
        return par_http.push(_auth())  # RFC 9126

    @bp.post("/auth/token")
    def token():
        service = _auth()
        # a DPoP header must hold a valid proof (RFC 9449 5); its key then binds the tokens
        response = dpop_http.endpoint_proof(service) or service.server.create_token_response(request)
        response.headers.update({**NO_STORE, **dpop_http.nonce_headers(service)})
        outcome = "success" if response.status_code == 200 else "failure"
        detail = {}
        if outcome == "failure":
            body = orjson.loads(response.get_data() or b"{}")
            detail = {"error": body.get("error"), "reason": body.get("error_description")}
        service.audit.record("token", outcome, grant_type=request.form.get("grant_type"),
                             client=request.form.get("client_id") or _basic_client_id(), **detail,
                             **(dpop_http.audit_detail() if outcome == "success" else {}))
        return response

    @bp.post("/auth/register")
    def register():
        service = _auth()
        body = request.get_json(silent=True)
        if body is None:
            return oauth_error("invalid_client_metadata", "send the client metadata as a JSON object "
                               "(Content-Type: application/json)")
        try:
            client, secret, metadata = service.register_client(body)
        except RegistrationError as exc:
            return oauth_error(exc.error, exc.description)
        answer = {"client_id": client.client_id, "client_id_issued_at": int(client.created)}
        if secret:
            answer.update({"client_secret": secret, "client_secret_expires_at": 0})
        answer.update(metadata.to_response())
        return json_answer(answer, 201, NO_STORE)

    @bp.route("/auth/userinfo", methods=["GET", "POST"])
    def userinfo():
        service = _auth()
        try:
            access = service.authenticate_bearer(request.headers.get("Authorization"))
        except InvalidToken as exc:
            return dpop_http.challenge_response(exc) or _bearer_error(str(exc))  # DPoP tokens: a DPoP challenge
        if not access.scopes.openid or not access.user:
            return _bearer_error("the access token was not issued with scope openid for a user",
                                 error="insufficient_scope", status=403)
        claims = {"sub": access.claims["sub"],  # the access token's: pairwise for subject_type=pairwise clients
                  **service.tokens.identity_claims(service.where(), access.user, access.scopes)}
        return json_answer(claims, headers=NO_STORE)

    @bp.post("/auth/introspect")
    def introspect():
        service = _auth()
        try:
            service.authenticate_caller()
        except InvalidToken as exc:
            return _bearer_error(str(exc))
        except OAuth2Error as exc:
            return _client_auth_error(exc, "introspect: send registered client credentials or Authorization: "
                                      "Bearer <access token>")
        return json_answer(service.introspect(request.form.get("token", "")), headers=NO_STORE)

    @bp.post("/auth/revoke")
    def revoke():
        service = _auth()
        try:
            oauth_request = service.server.create_oauth2_request(request)
            client = service.server.authenticate_client(oauth_request, ["none", "client_secret_basic",
                                                                        "client_secret_post", "private_key_jwt"],
                                                        "revocation")
        except InvalidClientError as exc:
            return _client_auth_error(exc, "client authentication failed")
        token_value = request.form.get("token")
        if not token_value:
            return oauth_error("invalid_request", "token is missing")
        revoked = service.revoke(token_value, client.client_id)
        service.audit.record("revoke", client=client.client_id, token=redact(token_value),
                             outcome_detail="revoked" if revoked else "unknown token (nothing to do)")
        return Response(status=200, headers=NO_STORE)

    @bp.get("/auth/smart-style.json")
    def smart_style():
        return json_answer(SMART_STYLE, headers={"Cache-Control": "max-age=3600"})

    return bp


SMART_STYLE = {
    "color_background": "#f6f8fb", "color_error": "#b3261e", "color_highlight": "#0b6bcb",
    "color_modal_backdrop": "", "color_success": "#1e7b34", "color_text": "#1d2433",
    "dim_border_radius": "8px", "dim_font_size": "16px", "dim_spacing_size": "16px",
    "font_family_body": "system-ui, sans-serif", "font_family_heading": "system-ui, sans-serif",
}


def authorization_redirect(redirect_uri: str, state: str | None, issuer: str, **answer) -> Response:
    """The redirect that ends every authorization request: code or error, state echoed, iss (RFC 9207)."""
    params = [(k, v) for k, v in answer.items() if v is not None]
    if state is not None:
        params.append(("state", state))
    params.append(("iss", issuer))
    return redirect(add_params_to_uri(redirect_uri, params), 302)


def _basic_client_id() -> str | None:
    auth = request.authorization
    return auth.username if auth and auth.type == "basic" else None


def _client_auth_error(exc: OAuth2Error, fallback: str) -> Response:
    """401 for a caller that did not authenticate; a 401 must name how to (RFC 9110 15.5.2)."""
    description = exc.get_error_description() or fallback
    safe = description.replace('"', "'")
    header = f'Basic realm="mockehr", error="invalid_client", error_description="{safe}"'
    return oauth_error("invalid_client", description, 401, {"WWW-Authenticate": header})


def _bearer_error(description: str, error: str = "invalid_token", status: int = 401) -> Response:
    safe = description.replace('"', "'")
    header = f'Bearer error="{error}", error_description="{safe}"'
    return oauth_error(error, description, status, {"WWW-Authenticate": header})


