"""create_app(settings): wires the store, the FHIR API and the pages together."""

from __future__ import annotations

import functools
import logging
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import orjson
from flask import Flask, Response, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from mockehr import admin, capture, pages
from mockehr.audit import AuditLog
from mockehr.auth import manage, pages as auth_pages, routes as auth_routes
from mockehr.auth.service import AuthService
from mockehr.config import Settings
from mockehr.auth.discovery import capability_security
from mockehr.auth.enforce import Guard
from mockehr.directory import build_directory, patient_of_user, user_claims
from mockehr.faults import FaultBoard, hook as fault_hook
from mockehr.fhir import http
from mockehr.fhir.extract import extract
from mockehr.fhir.outcome import Problem
from mockehr.fhir.routes import build_blueprint
from mockehr.fhir.service import FHIRService
from mockehr.paths import seed_data_dir
from mockehr.store import dataset
from mockehr.store.overlay import Overlay
from mockehr.store.store import Store
from mockehr.views import inspector, patients
from mockehr.views import launcher
from mockehr.views import sample_app

log = logging.getLogger("mockehr")

_EXPOSED = ("Location, ETag, Last-Modified, Content-Location, Retry-After, X-Progress, Link, WWW-Authenticate, "
            "DPoP-Nonce")


def load_base(settings: Settings) -> tuple[dict, ...]:
    today = date.today() if settings.time_shift else None
    if settings.dataset_dir is not None:
        return dataset.cached_dataset_dir(Path(settings.dataset_dir).resolve(), today)
    if settings.patients is not None or settings.seed is not None:
        from mockehr.synth import DEFAULT_PATIENTS, DEFAULT_SEED

        patients = DEFAULT_PATIENTS if settings.patients is None else settings.patients
        seed = DEFAULT_SEED if settings.seed is None else settings.seed
        return dataset.cached_generated(patients, seed, today)
    return dataset.cached_dataset_dir(seed_data_dir(), today)


def start_faults(settings: Settings) -> FaultBoard:
    """The faults of --fault (already checked by the CLI; a bad one here raises FaultSpecError)."""
    board = FaultBoard(settings.fault_seed)
    for spec in settings.faults:
        board.add(spec)
    return board


def create_app(settings: Settings | None = None, clock: Callable[[], float] | None = None) -> Flask:
    """clock: the time source of the store, the audit trail and the authorization server (epoch
    seconds; default time.time). MockEHR passes a movable one (`ehr.clock.advance(...)`)."""
    settings = settings or Settings()
    app = Flask("mockehr", static_folder=None)
    # Flask asks inspect.iscoroutinefunction of every hook and view on every request (ten per FHIR call);
    # the answer never changes for a function. Bounded: after_this_request callbacks are new each time.
    app.ensure_sync = functools.lru_cache(maxsize=1024)(app.ensure_sync)
    app.json = _JSONProvider(app)
    app.json.sort_keys = False
    clock = clock or time.time
    store = Store(list(load_base(settings)), Overlay(settings.data_dir), extract, clock)
    audit = AuditLog(clock)
    app.extensions["mockehr.settings"] = settings
    app.extensions["mockehr.store"] = store
    app.extensions["mockehr.audit"] = audit
    capture.install(app)  # first hooks: sees every exchange, faulted ones too
    app.extensions["mockehr.auth"] = auth = AuthService(
        data_dir=settings.data_dir, root_url=lambda: root_url(settings), directory=build_directory(store),
        user_claims=lambda user: user_claims(store, user), audit=audit, auto_approve=settings.auto_approve,
        strict=settings.strict, token_lifetime=settings.access_token_lifetime, clock=clock,
        faults=start_faults(settings))
    app.extensions["mockehr.faults"] = auth.faults
    fault_hook.install(app, auth.faults, auth)
    fault_hook.apply_one_shots(auth.faults, auth)
    app.extensions["mockehr.guard"] = Guard(auth, lambda user: patient_of_user(store, user))
    app.extensions["mockehr.fhir"] = FHIRService(store, settings.default_page_size, settings.max_page_size,
                                                 settings.search_time_budget)
    app.config["MOCKEHR_ROOT_URL"] = lambda: root_url(settings)
    app.config["MOCKEHR_CAPABILITY_SECURITY"] = capability_security
    app.config["MOCKEHR_PAGE_SIZE"] = settings.default_page_size
    app.config["MOCKEHR_MAX_PAGE_SIZE"] = settings.max_page_size
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_size or None  # Werkzeug answers 413 above it
    app.config["MOCKEHR_STARTED"] = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    app.register_blueprint(auth_routes.build_blueprint())
    app.register_blueprint(manage.build_blueprint())
    app.register_blueprint(auth_pages.build_blueprint())
    app.register_blueprint(build_blueprint())
    app.register_blueprint(admin.build_blueprint())
    app.register_blueprint(pages.build_blueprint())
    app.register_blueprint(inspector.build_blueprint())
    app.register_blueprint(patients.build_blueprint())
    app.register_blueprint(launcher.build_blueprint())
    app.register_blueprint(sample_app.build_blueprint())
    _install_cors(app)
    _install_frame_guard(app)
    _install_error_handlers(app)
    return app


class _JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested deeper than Python's recursion limit is a ValueError
    (what request.get_json turns into a 400, or None when silent) instead of a RecursionError (a 500)."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


_ROOTS: dict[tuple, str] = {}  # what url_root answered, by the environ values it reads


def root_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    # Asked several times per request (the issuer, the FHIR base, links); werkzeug rebuilds it each time
    # (IRI decoding, host checks: ~25 us), so remember it per scheme, host and mount point.
    environ = request.environ
    key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
           environ.get("SERVER_PORT"), environ.get("SCRIPT_NAME"))
    root = _ROOTS.get(key)
    if root is None:
        root = request.url_root.rstrip("/")
        if len(_ROOTS) > 256:  # hosts are few; a client inventing Host headers must not grow this
            _ROOTS.clear()
        _ROOTS[key] = root
    return root


def _install_cors(app: Flask) -> None:
    """Browser apps call us from their own origin: open CORS, preflight included."""

    @app.before_request
    def preflight():
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Authorization, Content-Type, DPoP")
            response.headers["Access-Control-Max-Age"] = "86400"
            return response
        return None

    @app.after_request
    def cors(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        response.headers["Access-Control-Expose-Headers"] = _EXPOSED
        response.headers.add("Vary", "Origin")
        return response


# The authorization server's endpoints that answer JSON (the others are pages: authorize, login, consent, ...).
_OAUTH_JSON_PATHS = frozenset({"/auth/token", "/auth/register", "/auth/introspect", "/auth/revoke", "/auth/userinfo",
                               "/auth/par", "/auth/jwks", "/auth/smart-style.json"})


def _describe(error: HTTPException) -> str:
    if error.code == 405:
        methods = getattr(error, "valid_methods", None) or ()
        allowed = " or ".join(sorted(m for m in methods if m not in ("HEAD", "OPTIONS")))
        return f"{request.method} is not allowed on {request.path}" + (f"; use {allowed}" if allowed else "")
    if error.code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return (f"the request body ({request.content_length or 'chunked'} bytes) is larger than this server accepts"
                + (f" ({limit} bytes; MOCKEHR_MAX_BODY_SIZE sets the limit)" if limit else ""))
    return error.description or error.name


def _install_frame_guard(app: Flask) -> None:
    """No page of mockehr can be framed by another site (clickjacking: the launcher's forms, the grant
    management page, error pages); the simulated EHR frame is same-origin. A page that sets its own
    Content-Security-Policy (the auth pages, the sample app) keeps it."""

    @app.after_request
    def frame_guard(response: Response) -> Response:
        if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
            if "X-Frame-Options" not in response.headers:
                response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response


def _install_error_handlers(app: Flask) -> None:
    def is_fhir() -> bool:
        return request.path == "/fhir" or request.path.startswith("/fhir/")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        """Errors raised below the routes (no such method, a body over the size limit, ...) in the shape of
        the protocol the path speaks: FHIR an OperationOutcome, the OAuth endpoints an OAuth error, the
        control API its {"error"}; pages keep Werkzeug's HTML."""
        headers = {"Allow": ", ".join(sorted(error.valid_methods))} if getattr(error, "valid_methods", None) else {}
        description = _describe(error)
        if is_fhir():
            code = {404: "not-found", 405: "not-supported", 413: "too-long"}.get(error.code, "invalid")
            return http.outcome_response([Problem("error", code, description)], error.code, headers)
        if request.path in _OAUTH_JSON_PATHS:
            body = {"error": "invalid_request", "error_description": description}
            return Response(orjson.dumps(body), status=error.code, content_type="application/json",
                            headers={**headers, "Cache-Control": "no-store", "Pragma": "no-cache"})
        if request.path == "/admin" or request.path.startswith("/admin/"):
            return Response(orjson.dumps({"error": description}), status=error.code, content_type="application/json",
                            headers=headers)
        return error

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = f"internal error ({type(error).__name__}); this is a mockehr bug, please report it"
        if is_fhir():
            return http.outcome_response([Problem("fatal", "exception", message)], 500)
        return Response(message, status=500, mimetype="text/plain")
