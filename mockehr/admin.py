"""The control API (/admin): EHR launches and the audit trail.

Loopback callers only, unless the server has an --admin-token, in which case
every call needs `Authorization: Bearer <token>` from anywhere.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

import orjson
from flask import Blueprint, Response, current_app, request

from mockehr.auth.service import AuthService
from mockehr.auth.sim_errors import check_sim_error
from mockehr.faults import FaultSpecError
from mockehr.faults.hook import apply_one_shots


class AdminError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _answer(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json")


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # a dual-stack socket: ::ffff:127.0.0.1
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check_admin_caller() -> None:
    token = current_app.extensions["mockehr.settings"].admin_token
    if token:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise AdminError(401, "the control API needs Authorization: Bearer <admin token>")
        if not hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            raise AdminError(403, "wrong admin token")
    elif not _is_loopback(request.remote_addr):
        raise AdminError(403, "the control API answers loopback callers only; start mockehr with --admin-token "
                         "to reach it from elsewhere")


def _json_object() -> dict:
    body = request.get_json(force=True, silent=True)  # curl -d sends no JSON content type; accept it
    if body is None and request.get_data().strip():
        raise AdminError(400, "the body is not JSON")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise AdminError(400, "the body must be a JSON object")
    return body


def _absolute_url(name: str, value: str) -> None:
    """Apps are sent to app_url and read smart_style_url: both must be absolute http(s) URLs."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise AdminError(400, f"{name} '{value}' must be an absolute http(s) URL")


def _check_fhir_context(context: object) -> None:
    shape = "fhirContext must be a list of objects like {\"reference\": \"Encounter/123\"}"
    if not isinstance(context, list):
        raise AdminError(400, shape)
    for index, item in enumerate(context):
        if not isinstance(item, dict) or not {"reference", "canonical", "identifier"} & set(item):
            raise AdminError(400, f"{shape}; fhirContext[{index}] has no reference, canonical or identifier")
        for name in ("reference", "canonical", "type", "role"):
            if name in item and not isinstance(item[name], str):
                raise AdminError(400, f"fhirContext[{index}].{name} must be a string")


def _launch_fields(body: dict, exists, encounter_patient=lambda encounter: None) -> dict:
    """Validated context for a launch; AdminError names what is wrong.

    `encounter_patient(id)` answers the patient id an encounter belongs to (None if unknown)."""
    known = {"patient", "encounter", "user", "app_url", "need_patient_banner", "smart_style_url", "intent",
             "fhirContext", "sim_error", "skip_consent"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise AdminError(400, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name in ("patient", "encounter", "user", "app_url", "intent"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise AdminError(400, f"{name} must be a string")
    patient = body.get("patient")
    if patient and not exists("Patient", patient.removeprefix("Patient/")):
        raise AdminError(400, f"patient '{patient}' is not in the FHIR store")
    encounter = body.get("encounter")
    if encounter and not exists("Encounter", encounter.removeprefix("Encounter/")):
        raise AdminError(400, f"encounter '{encounter}' is not in the FHIR store")
    if encounter and patient:
        owner = encounter_patient(encounter.removeprefix("Encounter/"))
        if owner and owner != patient.removeprefix("Patient/"):
            raise AdminError(400, f"encounter '{encounter}' is an encounter of Patient/{owner}, not of the "
                             f"launch's patient '{patient}'")
    user = body.get("user")
    _check_user(user, exists)
    banner = body.get("need_patient_banner", True)
    if not isinstance(banner, bool):
        raise AdminError(400, "need_patient_banner must be true or false")
    style = body.get("smart_style_url", True)
    if not isinstance(style, (bool, str)):
        raise AdminError(400, "smart_style_url must be a URL, or true/false for the server's own style")
    if isinstance(style, str):
        _absolute_url("smart_style_url", style)
    if body.get("app_url") is not None:
        _absolute_url("app_url", body["app_url"])
    context = body.get("fhirContext", [])
    _check_fhir_context(context)
    sim_error = body.get("sim_error")
    if sim_error is not None and not isinstance(sim_error, str):
        raise AdminError(400, "sim_error must be a string, the name of a simulated error")
    if problem := check_sim_error(sim_error):
        raise AdminError(400, problem)
    skip_consent = body.get("skip_consent", False)
    if not isinstance(skip_consent, bool):
        raise AdminError(400, "skip_consent must be true or false")
    return {"sim_error": sim_error, "skip_consent": skip_consent, "patient": patient.removeprefix("Patient/") if patient else None,
            "encounter": encounter.removeprefix("Encounter/") if encounter else None,
            "user": user, "app_url": body.get("app_url"), "need_patient_banner": banner,
            "smart_style_url": style, "intent": body.get("intent"), "fhir_context": context}


def _encounter_patient(encounter_id: str) -> str | None:
    version = current_app.extensions["mockehr.store"].read("Encounter", encounter_id)
    if version is None or version.deleted:
        return None
    reference = (version.resource.get("subject") or {}).get("reference", "")
    return reference.removeprefix("Patient/") if reference.startswith("Patient/") else None


def with_query(url: str, params: dict) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def mint_launch(body: dict) -> dict:
    """Validate `body` (the POST /admin/launches fields), store the launch, audit it.

    Answers {"launch", "iss", "launch_url"?}; AdminError(400) names a bad field.
    Also used by the launcher page, which is not behind the admin guard."""
    auth: AuthService = current_app.extensions["mockehr.auth"]
    fields = _launch_fields(body, auth.directory.exists, _encounter_patient)
    root = auth.root_url()
    if fields["smart_style_url"] is True:
        fields["smart_style_url"] = f"{root}/auth/smart-style.json"
    elif fields["smart_style_url"] is False:
        fields["smart_style_url"] = None
    launch = auth.state.add_launch(**fields)
    iss = f"{root}/fhir"
    answer = {"launch": launch.launch_id, "iss": iss}
    if launch.app_url:
        answer["launch_url"] = with_query(launch.app_url, {"launch": launch.launch_id, "iss": iss})
    auth.audit.record("launch", patient=launch.patient, user=launch.user, encounter=launch.encounter,
                      app_url=launch.app_url, launch=launch.launch_id, sim_error=launch.sim_error)
    return answer


def reset_state(app) -> None:
    """Back to the start: data, clients, launches, tokens, bulk exports, the audit trail, the --fault faults
    (reseeded, so a `rate` pattern repeats). POST /admin/reset and MockEHR.reset()."""
    settings = app.extensions["mockehr.settings"]
    auth: AuthService = app.extensions["mockehr.auth"]
    app.extensions["mockehr.store"].reset()
    auth.reset()
    app.extensions["mockehr.audit"].clear()
    if "mockehr.bulk" in app.extensions:
        app.extensions["mockehr.bulk"].cancel_all()
    auth.faults.reset()
    for spec in settings.faults:
        auth.faults.add(spec)
    apply_one_shots(auth.faults, auth)


def _check_user(user: str | None, exists) -> None:
    if user:
        rtype, _, rid = user.partition("/")
        if rtype not in ("Practitioner", "Patient", "RelatedPerson") or not exists(rtype, rid):
            raise AdminError(400, f"user '{user}' must be Practitioner/ID, Patient/ID or RelatedPerson/ID of a "
                             "resource in the store")


def _fault(fault_id: str) -> dict:
    return next(f for f in current_app.extensions["mockehr.faults"].list() if f["id"] == fault_id)


def _token_fields(body: dict, exists) -> dict:
    known = {"client_id", "scope", "patient", "user", "encounter"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise AdminError(400, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name in known:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise AdminError(400, f"{name} must be a string")
    if not body.get("scope"):
        raise AdminError(400, "scope is required, e.g. \"patient/*.rs\" (with \"patient\") or \"system/*.rs\"")
    patient = (body.get("patient") or "").removeprefix("Patient/") or None
    encounter = (body.get("encounter") or "").removeprefix("Encounter/") or None
    if patient and not exists("Patient", patient):
        raise AdminError(400, f"patient '{patient}' is not in the FHIR store")
    if encounter and not exists("Encounter", encounter):
        raise AdminError(400, f"encounter '{encounter}' is not in the FHIR store")
    user = body.get("user")
    _check_user(user, exists)
    return {"client_id": body.get("client_id") or "mockehr-cli", "scope": body["scope"], "patient": patient,
            "user": user, "encounter": encounter}


def build_blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/admin")

    @bp.before_request
    def guard():
        check_admin_caller()

    @bp.errorhandler(AdminError)
    def admin_error(error: AdminError):
        return _answer({"error": error.message}, error.status)

    @bp.post("/launches")
    def launches():
        return _answer(mint_launch(_json_object()), 201)

    @bp.get("/audit")
    def audit():
        since = request.args.get("since", "0")
        if not since.isdigit():
            raise AdminError(400, f"since must be an event id (a whole number), not {since[:40]!r}")
        return _answer(current_app.extensions["mockehr.audit"].events(int(since)))

    @bp.post("/reset")
    def reset():
        reset_state(current_app)
        return _answer({"reset": True})

    @bp.get("/faults")
    def list_faults():
        return _answer(current_app.extensions["mockehr.faults"].list())

    @bp.post("/faults")
    def add_fault():
        spec = _json_object().get("spec")
        if not isinstance(spec, str):
            raise AdminError(400, 'send {"spec": "KIND[:key=value,...]"}, e.g. {"spec": "throttle:every=2"}')
        auth: AuthService = current_app.extensions["mockehr.auth"]
        try:
            fault_id = auth.faults.add(spec)
        except FaultSpecError as exc:
            raise AdminError(400, str(exc)) from None
        auth.audit.record("fault", "added", fault=fault_id, spec=spec)
        apply_one_shots(auth.faults, auth)
        return _answer(_fault(fault_id), 201)

    @bp.delete("/faults")
    def clear_faults():
        board = current_app.extensions["mockehr.faults"]
        cleared = len(board.list())
        board.clear()
        current_app.extensions["mockehr.audit"].record("fault", "cleared", count=cleared)
        return _answer({"cleared": cleared})

    @bp.delete("/faults/<fault_id>")
    def remove_fault(fault_id: str):
        if not current_app.extensions["mockehr.faults"].remove(fault_id):
            raise AdminError(404, f"no fault {fault_id!r}; GET /admin/faults lists them")
        current_app.extensions["mockehr.audit"].record("fault", "removed", fault=fault_id)
        return _answer({"removed": fault_id})

    @bp.post("/tokens")
    def tokens():
        """A token minted directly (for curl experiments), by the token endpoint's own code."""
        auth: AuthService = current_app.extensions["mockehr.auth"]
        try:
            answer = auth.mint_direct(**_token_fields(_json_object(), auth.directory.exists))
        except ValueError as exc:
            raise AdminError(400, str(exc)) from None
        return _answer(answer)

    @bp.post("/keys/rotate")
    def rotate_keys():
        body = _json_object()
        keep_old = body.get("keep_old", False)
        if not isinstance(keep_old, bool):
            raise AdminError(400, "keep_old must be true or false")
        auth: AuthService = current_app.extensions["mockehr.auth"]
        kid = auth.keys.rotate(keep_old=keep_old)
        auth.audit.record("keys", kid=kid, keep_old=keep_old)
        return _answer({"kid": kid})

    return bp
