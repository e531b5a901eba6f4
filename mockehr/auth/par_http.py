"""Pushed authorization requests (RFC 9126) over HTTP: the PAR endpoint, and what the authorize
endpoint does with a request_uri. The records are mockehr.auth.par's.

PAR endpoint (`POST /auth/par`): the client authenticates as at the token endpoint (a public
client sends its client_id; an unknown one is registered on the spot, as at the authorize
endpoint, unless --strict), the request is checked as the authorize endpoint checks it
(redirect_uri, response_type, scope, aud, PKCE, launch, dpop_jkt), and the answer is 201
`{"request_uri", "expires_in"}`; errors are OAuth JSON (400, or 401 invalid_client). A DPoP proof
sent with the push binds the code to its key, as `dpop_jkt` would (RFC 9449 10.1).

Authorize endpoint: `client_id` + `request_uri` stand for the pushed request, whose parameters
alone count (RFC 9126 4). A request_uri is good once and for 60 s; a reused or expired one is
answered like any other authorize error (a redirect to the pushed, verified redirect_uri, with
the pushed state), an unknown or another client's one with the error page. `serve --require-par`
and the client metadata `require_pushed_authorization_requests` refuse requests not pushed.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from authlib.oauth2.rfc6749.errors import InvalidClientError
from flask import Response, request

from mockehr.auth import authorize, dpop_http
from mockehr.auth.model import redact
from mockehr.auth.par import request_params
from mockehr.auth.server import ALL_AUTH_METHODS

PAR_PATH = "/auth/par"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _Refused(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


# -- the PAR endpoint ---------------------------------------------------------------------------
def push(service) -> Response:
    """POST /auth/par."""
    form = request.form.to_dict()
    client_id = form.get("client_id") or _basic_client_id()
    refused = dpop_http.endpoint_proof(service)  # a DPoP header must hold a valid proof (binds the code)
    if refused is not None:
        body = orjson.loads(refused.get_data())
        service.audit.record("par", "failure", client=client_id, error=body["error"],
                             reason=body["error_description"])
        return refused
    try:
        client = _authenticated_client(service, form, client_id)
        params = request_params(form, client.client_id)
        _bind_to_proof_key(params)
        _validate(service, client, params)
    except _Refused as exc:
        service.audit.record("par", "failure", client=client_id, error=exc.error, reason=exc.description)
        return _error(service, exc)
    record = service.pushed.push(client.client_id, params)
    service.audit.record("par", client=client.client_id, request_uri=redact(record.request_uri),
                         scope=params.get("scope"), redirect_uri=params.get("redirect_uri"),
                         dpop_jkt=params.get("dpop_jkt"), expires_in=service.pushed.lifetime)
    answer = {"request_uri": record.request_uri, "expires_in": service.pushed.lifetime}
    headers = {**_NO_STORE, **dpop_http.nonce_headers(service)}
    return Response(orjson.dumps(answer), 201, headers, content_type="application/json")


def _basic_client_id() -> str | None:
    auth = request.authorization
    return auth.username if auth and auth.type == "basic" else None


def _has_credentials(form: dict) -> bool:
    return bool(request.authorization) or any(name in form for name in ("client_secret", "client_assertion"))


def _authenticated_client(service, form: dict, client_id: str | None):
    """The client, authenticated as at the token endpoint (RFC 9126 2); an unknown public client_id
    is registered on the spot unless --strict, as the authorize endpoint does."""
    if "request_uri" in form:
        raise _Refused("invalid_request", "request_uri must not be pushed: the PAR endpoint issues request_uri "
                       "values (RFC 9126 2.1)")
    if "request" in form:
        raise _Refused("invalid_request", "request objects (the request parameter, RFC 9101) are not supported "
                       "here; push the authorization request's parameters themselves")
    if not client_id:
        raise _Refused("invalid_client", "no client: send client_id (public clients) or authenticate as at the "
                       "token endpoint", 401)
    if service.state.clients.get(client_id) is None and not service.strict and not _has_credentials(form):
        try:
            _, redirect_uri = authorize.check_client(form, None, False)
            service.auto_register(client_id, redirect_uri)
        except authorize.PageError as exc:
            raise _Refused("invalid_request", str(exc)) from None
    try:
        client = service.server.authenticate_client(service.server.create_oauth2_request(request),
                                                    ALL_AUTH_METHODS, "token")
    except InvalidClientError as exc:
        known = service.state.clients.get(client_id)
        why = exc.get_error_description() or "client authentication failed"
        if known is None:
            why = f"unknown client_id '{client_id}'" + (" (this server runs with --strict: register the app first)"
                                                         if service.strict else "")
        elif known.metadata.token_endpoint_auth_method != "none":
            why = (f"client '{client_id}' must authenticate with {known.metadata.token_endpoint_auth_method}, as at "
                   f"the token endpoint ({why})")
        raise _Refused("invalid_client", why, 401) from None
    if form.get("client_id") and form["client_id"] != client.client_id:
        raise _Refused("invalid_request", f"client_id '{form['client_id']}' is not the client that authenticated "
                       f"('{client.client_id}')")
    return client


def _bind_to_proof_key(params: dict) -> None:
    """RFC 9449 10.1: a proof sent with the push binds the code to its key, as dpop_jkt does."""
    jkt = dpop_http.proof_jkt()
    if jkt is None:
        return
    if params.get("dpop_jkt") not in (None, jkt):
        raise _Refused("invalid_request", f"dpop_jkt {params['dpop_jkt']} is not the thumbprint of the DPoP proof's "
                       f"key ({jkt}); send one or make them agree")
    params["dpop_jkt"] = jkt


def _validate(service, client, params: dict) -> None:
    """Everything the authorize endpoint checks, answered as PAR errors (RFC 9126 2.3)."""
    try:
        _, redirect_uri = authorize.check_client(params, client, service.strict)
        authorize.check_request(params, client, redirect_uri, authorize.Policy(service.where().fhir_base,
                                                                               service.strict),
                                service.state.launch)
    except authorize.PageError as exc:
        raise _Refused("invalid_request", str(exc)) from None
    except authorize.RedirectError as exc:
        raise _Refused(exc.error, exc.description) from None


def _error(service, exc: _Refused) -> Response:
    headers = {**_NO_STORE, **dpop_http.nonce_headers(service)}
    if exc.status == 401:
        safe = exc.description.replace('"', "'").encode("ascii", "backslashreplace").decode()
        headers["WWW-Authenticate"] = f'Basic realm="mockehr", error="invalid_client", error_description="{safe}"'
    body = {"error": exc.error, "error_description": exc.description}
    return Response(orjson.dumps(body), exc.status, headers, content_type="application/json")


# -- the authorize endpoint ---------------------------------------------------------------------
@dataclass(frozen=True)
class Resolved:
    """An authorize request's parameters: its own, or the pushed ones its request_uri stands for."""

    params: dict
    pushed: bool = False
    problem: str | None = None  # the request_uri was reused or has expired: refused with invalid_request


def resolve(service, params: dict) -> Resolved:
    """Before the client checks: swap in the pushed request; PageError where no redirect is safe."""
    request_uri = params.get("request_uri")
    client_id = params.get("client_id")
    if request_uri is None:
        if dpop_http.setting("require_par") and client_id and service.state.clients.get(client_id) is None:
            raise authorize.PageError(f"This server runs with --require-par: authorization requests must be pushed "
                                      f"to {service.root_url()}{PAR_PATH} first (which also registers an unknown "
                                      "public client), then sent here as client_id and request_uri.")
        return Resolved(params)
    if not client_id:
        raise authorize.PageError("The request has a request_uri but no client_id; send both (RFC 9126 4).")
    taken = service.pushed.take(request_uri, client_id)
    if taken.record is None:
        raise authorize.PageError(f"{taken.problem or f'request_uri {request_uri} is not known here'}: push the "
                                  f"authorization request to {service.root_url()}{PAR_PATH} and use the request_uri "
                                  "it answers (once, within its expires_in).")
    return Resolved(dict(taken.record.params), True, taken.problem)


def check(service, client, resolved: Resolved) -> None:
    """After the client checks: RedirectError(invalid_request) for a reused or expired request_uri, or for a
    request that was not pushed when the server (--require-par) or the client requires PAR."""
    if resolved.problem:
        raise authorize.RedirectError("invalid_request", resolved.problem)
    if resolved.pushed:
        return
    endpoint = f"{service.root_url()}{PAR_PATH}"
    if dpop_http.setting("require_par"):
        raise authorize.RedirectError("invalid_request", f"this server runs with --require-par: push the "
                                      f"authorization request to {endpoint}, then send only client_id and "
                                      "request_uri here")
    if client.metadata.extra.get("require_pushed_authorization_requests") is True:
        raise authorize.RedirectError("invalid_request", f"client '{client.client_id}' was registered with "
                                      f"require_pushed_authorization_requests: push the authorization request to "
                                      f"{endpoint}, then send only client_id and request_uri here")
