"""Capture: every HTTP exchange, redacted and bounded, for the protocol inspector.

`install(app)` adds request hooks that record each exchange (but static
files, the teaching views themselves, reads of the audit trail and CORS
preflights) into the audit
log's exchange ring, and make audit events recorded during a request carry
its `request_id`.

Nothing usable is kept: JWTs lose their signature (the inspector decodes
header and claims; without the signature the token is worthless), opaque
secrets (client secrets, codes, refresh tokens, verifiers, CSRF tokens,
cookies, passwords) keep their first 6 characters. The FHIR read path is hot,
so FHIR bodies are kept as bounded raw bytes and parsed only when someone
opens the inspector; the rarer /auth and /admin bodies are scrubbed here.
"""

from __future__ import annotations

import base64
import itertools
import logging
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from flask import Flask, Response, g, has_app_context, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("mockehr")

BODY_LIMIT = 8 * 1024  # bytes of a body kept
PARSE_LIMIT = 64 * 1024  # larger /auth and /admin bodies are not parsed, only sized
SKIP = ("/static/", "/inspector", "/patients", "/favicon.ico")
TRAIL = "/admin/audit"  # reading the trail (mockehr audit --follow polls it) is not a step of its own

REQUEST_HEADERS = ("Accept", "Content-Type", "Authorization", "Origin", "Prefer", "If-Match", "If-None-Match",
                   "If-None-Exist", "If-Modified-Since", "Cookie", "DPoP")
RESPONSE_HEADERS = ("Content-Type", "Location", "WWW-Authenticate", "ETag", "Last-Modified", "Cache-Control",
                    "Retry-After", "Set-Cookie")
# Form, query and JSON fields whose values are secrets (JWT-looking values of any field lose their signature).
SECRET_FIELDS = frozenset({"client_secret", "refresh_token", "code", "code_verifier", "password", "csrf_token",
                           "registration_access_token", "access_token", "id_token", "client_assertion", "token",
                           "assertion", "subject_token", "admin_token"})
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})  # in a JWK (has "kty"): private parts
FHIR_SECRET_FIELDS = frozenset({"access_token"})  # `code` is a search parameter on /fhir
TEXT_TYPES = ("application/json", "application/fhir+json", "application/x-www-form-urlencoded", "text/plain",
              "application/jwk-set+json", "application/scim+json")
FORM = "application/x-www-form-urlencoded"


# -- redaction (pure) -------------------------------------------------------------
def redact(value: str) -> str:
    """What the inspector may show of a secret: as mockehr.auth.model.redact does."""
    return value[:6] + "…" if len(value) > 12 else "…"


def looks_like_jwt(value: str) -> bool:
    return value.startswith("eyJ") and value.count(".") == 2


def unsigned(jwt: str) -> str:
    """header.payload of a JWS: enough to decode, useless as a credential."""
    return jwt.rsplit(".", 1)[0]


class Scrubber:
    """Redacts one exchange's fields, collecting the unsigned JWTs it meets in `jwts`."""

    def __init__(self, secret_fields: frozenset = SECRET_FIELDS):
        self.secret_fields = secret_fields
        self.jwts: list[list[str]] = []  # [where, header.payload]
        self.facts: dict = {}

    def value(self, name: str, value: str, where: str) -> str:
        if looks_like_jwt(value):
            self.jwts.append([f"{where} {name}", unsigned(value)])
            return redact(value)
        if name in self.secret_fields and value:
            if name == "code_verifier":
                self.facts["code_verifier"] = {"length": len(value), "distinct": len(set(value))}
            return redact(value)
        return value

    def pairs(self, pairs, where: str) -> list[tuple[str, str]]:
        return [(k, self.value(k, v, where)) for k, v in pairs]

    def query(self, query: str, where: str) -> str:
        if not query:
            return ""
        return urlencode(self.pairs(parse_qsl(query, keep_blank_values=True), where))

    def json(self, value, where: str, name: str = ""):
        if isinstance(value, dict):
            if "kty" in value:  # a JWK: keep the public half only
                return {k: "…" if k in PRIVATE_JWK_MEMBERS else self.json(v, where, k) for k, v in value.items()}
            return {k: self.json(v, where, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v, where, name) for v in value]
        if isinstance(value, str):
            return self.value(name, value, where)
        return value

    def url(self, url: str, where: str) -> str:
        parts = urlsplit(url)
        if not parts.query:
            return url
        return urlunsplit(parts._replace(query=self.query(parts.query, where)))

    def authorization(self, header: str) -> str:
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer":
            return f"{scheme} {self.value('access_token', credentials, 'Authorization: Bearer')}"
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(credentials, validate=True).decode().partition(":")
            except ValueError:
                return f"{scheme} (not valid base64)"
            return f"{scheme} {user}:{redact(secret)} (base64-decoded)"
        return f"{scheme} {redact(credentials)}"


def cookie_names(header: str) -> str:
    return "; ".join(f"{part.split('=', 1)[0].strip()}=…" for part in header.split(";") if part.strip())


def set_cookie(header: str) -> str:
    name, _, rest = header.partition("=")
    attributes = rest.split(";", 1)
    return f"{name}=…" + (f";{attributes[1]}" if len(attributes) > 1 else "")


def body_record(data: bytes, mimetype: str, size: int, scrub: Scrubber | None, where: str) -> dict | None:
    """A body as kept: raw bytes (parsed later), scrubbed JSON, or a note of its size and type."""
    if not size:
        return None
    if not mimetype.startswith(TEXT_TYPES) and not mimetype.endswith("+json"):
        return {"note": f"{size} bytes of {mimetype or 'unknown type'} (not kept)", "size": size}
    if scrub is None:
        return {"raw": data[:BODY_LIMIT], "size": size, "mime": mimetype}
    if size > PARSE_LIMIT:
        return {"note": f"{size} bytes (too large to keep)", "size": size}
    if mimetype == FORM:
        return {"form": scrub.query(data.decode("utf-8", "replace"), where), "size": size}
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {"note": f"{size} bytes, not JSON (not kept: it may hold secrets)", "size": size}
    try:
        return {"json": scrub.json(parsed, where), "size": size}
    except RecursionError:  # a hostile body nested deeper than the scrubber walks: not kept (it may hold secrets)
        return {"note": f"{size} bytes of JSON nested too deeply to keep", "size": size}


# -- the hooks ------------------------------------------------------------------------
class Capture:
    def __init__(self, audit):
        self.audit = audit
        self._ids = itertools.count(1)

    def begin(self) -> None:
        req = request._get_current_object()  # one proxy lookup, not one per attribute (this is the hot path)
        path = req.path
        if req.method == "OPTIONS" or path.startswith(SKIP) or path == TRAIL:
            return
        g.mockehr_capture = {"request_id": f"r{next(self._ids)}", "start": time.time(), "method": req.method,
                             "path": path}

    def finish(self, response: Response) -> Response:
        """Record the exchange (after_request runs for every answer, error pages included)."""
        pending = g.pop("mockehr_capture", None)  # events recorded after this are no longer its own
        if pending is None:
            return response
        pending["ms"] = (time.time() - pending["start"]) * 1000
        try:
            pending.update(_snapshot(request._get_current_object(), response, pending["path"]))
        except Exception:  # the inspector must never break the request it watches
            log.exception("capture failed on %s %s", pending["method"], pending["path"])
            pending.update(query="", status=response.status_code,
                           resp_body={"note": "capture failed (a mockehr bug; see the server log)"})
        self.audit.record_exchange(pending)
        return response


# WSGI environ keys of the request headers kept, and the response headers kept (lower case).
_ENVIRON_HEADERS = tuple(("CONTENT_TYPE" if n == "Content-Type" else "HTTP_" + n.upper().replace("-", "_"), n)
                         for n in REQUEST_HEADERS)
_KEPT_RESPONSE_HEADERS = frozenset(n.lower() for n in RESPONSE_HEADERS)


def _snapshot(req, response: Response, path: str) -> dict:
    """Request and response of the running exchange, redacted. Cheap on /fhir: no parsing there."""
    environ = req.environ
    fhir = path == "/fhir" or path.startswith("/fhir/")
    scrub = Scrubber(FHIR_SECRET_FIELDS if fhir else SECRET_FIELDS)
    query = environ.get("QUERY_STRING", "")
    if query and (not fhir or "access_token" in query):
        query = scrub.query(query, "query")
    headers = []
    for key, name in _ENVIRON_HEADERS:
        value = environ.get(key)
        if value is not None:
            if name == "Authorization":
                value = scrub.authorization(value)
            elif name == "Cookie":
                value = cookie_names(value)
            elif name == "DPoP":
                value = redact(value)
            headers.append((name, value))
    kept = []
    for name, value in response.headers.items():
        lower = name.lower()
        if lower in _KEPT_RESPONSE_HEADERS:
            if lower == "location":
                value = scrub.url(value, "Location")
            elif lower == "set-cookie":
                value = set_cookie(value)
            kept.append((name, value))
    dropped = environ.get("mockehr.drop")  # a drop fault: the client gets no answer at all
    record = {"query": query, "req_headers": headers, "req_body": _request_body(req, environ, scrub, fhir),
              "status": 0 if dropped else response.status_code, "resp_headers": kept,
              "resp_body": _response_body(response, scrub, fhir)}
    if scrub.jwts:
        record["jwts"] = scrub.jwts
    if scrub.facts:
        record["facts"] = scrub.facts
    return record


def _mimetype(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _request_body(req, environ: dict, scrub: Scrubber, fhir: bool) -> dict | None:
    size = int(environ.get("CONTENT_LENGTH") or 0) if (environ.get("CONTENT_LENGTH") or "0").isdigit() else 0
    if not size:
        return None
    mimetype = _mimetype(environ.get("CONTENT_TYPE"))
    if mimetype == FORM:  # the handler parsed it already (the raw stream is gone)
        try:
            form = req.form
        except HTTPException:  # too large to parse (413): the handler answered that already
            return {"note": f"{size} bytes of form data (too large to keep)", "size": size}
        return {"form": urlencode(scrub.pairs(form.items(multi=True), "form")), "size": size}
    if size > PARSE_LIMIT:
        return {"note": f"{size} bytes (too large to keep)", "size": size}
    try:
        data = req.get_data(cache=True)
    except HTTPException:  # the client sent less than its Content-Length (the handler answered that already)
        return {"note": f"{size} bytes announced, fewer received", "size": size}
    return body_record(data, mimetype, size, None if fhir else scrub, "request body")


def _response_body(response: Response, scrub: Scrubber, fhir: bool) -> dict | None:
    if not response.is_sequence:
        return {"note": "streamed body (not kept)"}
    data = response.get_data()
    return body_record(data, _mimetype(response.content_type), len(data), None if fhir else scrub, "response body")


def current_request_id() -> str | None:
    if not has_app_context():
        return None
    pending = g.get("mockehr_capture")
    return pending["request_id"] if pending else None


def install(app: Flask) -> Capture:
    """Record every exchange of `app`; install before other hooks so that early answers are seen too."""
    audit = app.extensions["mockehr.audit"]
    capture = Capture(audit)
    audit.request_id = current_request_id
    app.extensions["mockehr.capture"] = capture
    app.before_request(capture.begin)
    app.after_request(capture.finish)
    return capture
