"""The faults at work in the app: the request hook, the one-shot faults, and the fault answers.

This is the part of fault injection that touches Flask; what fires when is
decided by the pure FaultBoard. Answers keep each protocol's error shape:
FHIR paths get an OperationOutcome, OAuth endpoints an RFC 6749 error (the
authorize endpoint as a redirect when the redirect_uri is one the client
registered), anything else plain text.
"""

from __future__ import annotations

import time

import orjson
from flask import Flask, Response, g, request

from mockehr.faults.board import FaultBoard, Firing

# The control API stays reachable whatever the faults say (else a path=/* fault locks you out).
_EXEMPT = ("/admin/", "/static/")
DRIP_INTERVAL = 0.1  # seconds between the slices of a slow-body answer

_FHIR_CODES = {429: "throttled", 503: "transient", 504: "timeout", 401: "login", 403: "forbidden",
               404: "not-found", 409: "conflict", 412: "conflict"}


def apply_one_shots(board: FaultBoard, auth) -> None:
    """rotate-keys and revoke-all act once, right after they are added (and at serve start)."""
    for firing in board.take_one_shots():
        action = firing.action
        if action.get("rotate_keys"):
            kid = auth.keys.rotate(keep_old=action["keep_old"])
            auth.fault_fired(firing, kid=kid)
        elif action.get("revoke_all"):
            auth.fault_fired(firing, revoked=auth.state.revoke_all())


def install(app: Flask, board: FaultBoard, auth) -> None:
    @app.before_request
    def request_faults():
        path = request.path
        if request.method == "OPTIONS" or path.startswith(_EXEMPT):
            return None
        firings = board.on_request(request.method, path)
        if not firings:
            return None
        for firing in firings:
            auth.fault_fired(firing, path=path, method=request.method)
        delay = sum(f.action.get("sleep_ms", 0) for f in firings)
        if delay:
            time.sleep(delay / 1000)
        drip = next((f.action["bytes_per_second"] for f in firings if "bytes_per_second" in f.action), None)
        if drip:
            g.mockehr_drip = drip
        answer = next((f for f in firings if "status" in f.action or "drop" in f.action), None)
        if answer is None:
            return None
        if answer.action.get("drop"):
            return _drop(answer)
        return fault_response(answer, auth)

    @app.after_request
    def slow_body(response: Response) -> Response:
        rate = g.pop("mockehr_drip", None)
        if rate and not response.is_streamed:
            body = response.get_data()
            response.response = _dripped(body, rate)
            response.headers["Content-Length"] = str(len(body))  # known length: the server streams it
        return response


def _dripped(body: bytes, bytes_per_second: int):
    step = max(1, int(bytes_per_second * DRIP_INTERVAL))
    for start in range(0, len(body), step):
        if start:
            time.sleep(step / bytes_per_second)
        yield body[start:start + step]


def _drop(firing: Firing) -> Response:
    if "mockehr.socket" in request.environ:
        request.environ["mockehr.drop"] = True  # the server closes the connection without answering
        return Response(status=204)
    # Another WSGI server (e.g. Flask's test client) cannot drop the connection: say so in a 503.
    return Response(f"fault {firing.fault_id} ({firing.spec.text}) would drop this connection; this server "
                    "cannot, so it answers 503\n", status=503, mimetype="text/plain")


def fault_response(firing: Firing, auth) -> Response:
    status = firing.action["status"]
    why = _reason(firing, status)
    headers = {"Retry-After": str(firing.action["retry_after"])} if "retry_after" in firing.action else {}
    path = request.path
    fhir = path == "/fhir" or path.startswith("/fhir/")
    if status == 401:  # RFC 9110 15.5.2: a 401 says how to authenticate
        headers["WWW-Authenticate"] = (f'Bearer error="invalid_token", error_description="{why}"' if fhir
                                       else 'Basic realm="mockehr"')
    if fhir:
        code = _FHIR_CODES.get(status, "exception" if status >= 500 else "processing")
        outcome = {"resourceType": "OperationOutcome",
                   "issue": [{"severity": "error", "code": code, "diagnostics": why}]}
        return Response(orjson.dumps(outcome), status=status, headers=headers,
                        content_type="application/fhir+json; charset=utf-8")
    if path.startswith("/auth/"):
        error = _oauth_error(status)
        if path == "/auth/authorize":
            redirect = _authorize_redirect(auth, error, why)
            if redirect is not None:
                return redirect
        body = {"error": error, "error_description": why}
        return Response(orjson.dumps(body), status=status, content_type="application/json",
                        headers={**headers, "Cache-Control": "no-store", "Pragma": "no-cache"})
    return Response(why + "\n", status=status, headers=headers, mimetype="text/plain")


def _reason(firing: Firing, status: int) -> str:
    kind = firing.spec.kind
    if kind == "throttle":
        what = f"too many requests; retry after {firing.action['retry_after']} s"
    elif kind == "jwks-down":
        what = "the JWKS endpoint is down"
    else:
        what = f"answering {status}"
    return f"simulated by fault {firing.fault_id} ({firing.spec.text}): {what}"


def _oauth_error(status: int) -> str:
    if status in (429, 503):
        return "temporarily_unavailable"
    if status >= 500:
        return "server_error"
    return {401: "invalid_client", 403: "access_denied"}.get(status, "invalid_request")


def _authorize_redirect(auth, error: str, why: str) -> Response | None:
    """RFC 6749 4.1.2.1: authorize errors go back to the app, but only to a redirect_uri we can trust."""
    from mockehr.auth.routes import authorization_redirect

    client = auth.state.clients.get(request.values.get("client_id"))
    redirect_uri = request.values.get("redirect_uri")
    if client is None or not redirect_uri or not client.check_redirect_uri(redirect_uri):
        return None
    return authorization_redirect(redirect_uri, request.values.get("state"), auth.where().issuer,
                                  error=error, error_description=why)
