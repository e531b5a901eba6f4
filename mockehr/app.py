"""create_app(settings): wires the store, the FHIR API and the pages together."""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from flask import Flask, Response, request
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

_EXPOSED = "Location, ETag, Last-Modified, Content-Location, Retry-After, X-Progress, Link"


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
    app.extensions["mockehr.fhir"] = FHIRService(store, settings.default_page_size, settings.max_page_size)
    app.config["MOCKEHR_ROOT_URL"] = lambda: root_url(settings)
    app.config["MOCKEHR_CAPABILITY_SECURITY"] = capability_security
    app.config["MOCKEHR_PAGE_SIZE"] = settings.default_page_size
    app.config["MOCKEHR_MAX_PAGE_SIZE"] = settings.max_page_size
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
    _install_error_handlers(app)
    return app


def root_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return request.url_root.rstrip("/")


def _install_cors(app: Flask) -> None:
    """Browser apps call us from their own origin: open CORS, preflight included."""

    @app.before_request
    def preflight():
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Authorization, Content-Type")
            response.headers["Access-Control-Max-Age"] = "86400"
            return response
        return None

    @app.after_request
    def cors(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        response.headers["Access-Control-Expose-Headers"] = _EXPOSED
        response.headers.add("Vary", "Origin")
        return response


def _install_error_handlers(app: Flask) -> None:
    def is_fhir() -> bool:
        return request.path == "/fhir" or request.path.startswith("/fhir/")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not is_fhir():
            return error
        code = "not-found" if error.code == 404 else "not-supported" if error.code == 405 else "invalid"
        return http.outcome_response([Problem("error", code, error.description or error.name)], error.code)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = f"internal error ({type(error).__name__}); this is a mockehr bug, please report it"
        if is_fhir():
            return http.outcome_response([Problem("fatal", "exception", message)], 500)
        return Response(message, status=500, mimetype="text/plain")
