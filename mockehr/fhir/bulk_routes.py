"""Bulk Data export over HTTP: kick-off, status, cancel and file routes on the FHIR blueprint.

    GET|POST /fhir/$export, /fhir/Patient/$export, /fhir/Group/ID/$export   kick-off -> 202 + Content-Location
    GET      /fhir/$export-status/JOB                                       202 running, 200 manifest, 500 failed
    DELETE   /fhir/$export-status/JOB                                       cancel -> 202; then 404
    GET      /fhir/$export-files/JOB/FILE                                   the NDJSON file, streamed from disk

Every call needs a bearer token (the blueprint's before_request); status, cancel and files
answer only the client that started the export. The bulk faults fire here: transient-error
at a status poll, file-expired at a download, file-generation-failed and
some-file-generation-failed at the kick-off (they shape how the job ends).
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Callable

from flask import Blueprint, Response, current_app, g, request

from mockehr.fhir import bulk, http
from mockehr.fhir.bulk_files import FileChunks
from mockehr.fhir.bulk_jobs import BulkExports, ExportJob
from mockehr.fhir.outcome import FHIRError, information
from mockehr.fhir.service import check_id

EXTENSION = "mockehr.bulk"


def exports() -> BulkExports:
    return current_app.extensions[EXTENSION]


def install(app) -> BulkExports:
    """The app's export jobs (once per app, when the FHIR blueprint is registered)."""
    settings = app.extensions.get("mockehr.settings")
    store = app.extensions["mockehr.store"]
    manager = BulkExports(store, getattr(settings, "data_dir", None), getattr(settings, "bulk_delay", 0.0),
                          clock=getattr(store, "_clock", None))
    app.extensions[EXTENSION] = manager
    return manager


def register(bp: Blueprint, fhir_base: Callable[[], str]) -> None:
    bp.record_once(lambda state: install(state.app))

    @bp.route("/$export", methods=["GET", "POST"])
    def export_system():
        return _kickoff("system", fhir_base())

    @bp.route("/Patient/$export", methods=["GET", "POST"])
    def export_patients():
        return _kickoff("patient", fhir_base())

    @bp.route("/Group/<gid>/$export", methods=["GET", "POST"])
    def export_group(gid: str):
        return _kickoff("group", fhir_base(), gid)

    @bp.get("/$export-status/<job_id>")
    def export_status(job_id: str):
        return _status(job_id)

    @bp.delete("/$export-status/<job_id>")
    def export_cancel(job_id: str):
        _owned(job_id)
        exports().cancel(job_id)
        return http.json_response(information(f"export {job_id} is cancelled and its files removed; its status URL "
                                              "now answers 404"), 202)

    @bp.get("/$export-files/<job_id>/<name>")
    def export_file(job_id: str, name: str):
        return _file(job_id, name)


# ---- kick-off --------------------------------------------------------------------------------

def _kickoff(level: str, base: str, gid: str | None = None) -> Response:
    lenient = bulk.check_headers(request.headers.get("Accept"), request.headers.get("Prefer"))
    post = request.method == "POST"
    pairs = list(request.args.items(multi=True))
    if post and request.get_data(cache=True).strip():
        pairs += bulk.pairs_from_parameters(http.read_json_body(request))
    req = bulk.parse_kickoff(level, pairs, group=gid, lenient=lenient, post=post)
    token = g.mockehr_token
    guard = current_app.extensions["mockehr.guard"]
    allowed = bulk.authorize(req, token.scopes.contexts(), token.user, lambda rtype: guard.decide(token, "r", rtype))
    patients = _patients(req, gid)
    fail_all, fail_some = _event("file-generation-failed"), _event("some-file-generation-failed")
    query = request.query_string.decode("latin-1")
    request_url = f"{base}{request.path[len('/fhir'):]}" + (f"?{query}" if query and not post else "")
    job = exports().start(token.client_id, req, allowed, request_url, base, patients,
                          fail_all and _fired(fail_all, "fails the whole export"),
                          fail_some and _fired(fail_some, "fails every second file"))
    for firing in (fail_all, fail_some):
        if firing is not None:
            _audit_fault(firing, job=job.id)
    status_url = f"{base}/$export-status/{job.id}"
    what = ", ".join(job.types)
    return http.json_response(information(f"export {job.id} started ({what}); poll {status_url}"), 202,
                              {"Content-Location": status_url})


def _patients(req: bulk.ExportRequest, gid: str | None) -> list[str] | None:
    """The patients a Group or Patient export covers (None: every patient, counted when the job runs)."""
    store = current_app.extensions["mockehr.store"]
    members = None
    if gid is not None:
        check_id(gid)
        version = store.read("Group", gid)
        if version is None or version.deleted:
            raise FHIRError(404, "not-found", f"Group/{gid} is not known to this server"
                            + (" (it was deleted)" if version is not None else ""))
        members = bulk.group_patients(version.resource)
    if req.patients is None:
        return members
    if members is not None:
        outside = [p for p in req.patients if p not in members]
        if outside:
            raise FHIRError(400, "invalid", f"patient: {', '.join('Patient/' + p for p in outside)} "
                            f"{'is' if len(outside) == 1 else 'are'} not a member of Group/{gid}", "patient")
    else:
        unknown = [p for p in req.patients if p not in store.index("Patient").ids]
        if unknown:
            raise FHIRError(400, "invalid", f"patient: {', '.join('Patient/' + p for p in unknown)} "
                            f"{'is' if len(unknown) == 1 else 'are'} not known to this server", "patient")
    return list(req.patients)


# ---- status and files ---------------------------------------------------------------------------

def _owned(job_id: str, types: list[str] | None = None) -> ExportJob:
    """The job, if the caller's client started it and its token still may read `types`
    (default: every type the export holds)."""
    job = exports().get(job_id)
    if job is None:
        gone = exports().why_gone(job_id)
        why = f"export {job_id} is gone: {gone[1]}" if gone else f"no export {job_id} is known to this server"
        raise FHIRError(404, "not-found", why + "; start a new one with $export")
    token = g.mockehr_token
    if token.client_id != job.client_id:
        raise FHIRError(403, "forbidden", f"export {job_id} was started by another client; only that client may "
                        "poll it, cancel it or fetch its files")
    guard = current_app.extensions["mockehr.guard"]
    for wanted in job.types if types is None else types:
        decision = guard.decide(token, "r", wanted)
        if not (decision.allowed and decision.patient is None):
            scope = decision.missing_scope or f"system/{wanted}.r"
            raise FHIRError(403, "forbidden", f"this token may not read {wanted}, which export {job_id} holds: "
                            f"{decision.reason or 'its scopes are limited to one patient'}",
                            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})
    return job


def _status(job_id: str) -> Response:
    job = _owned(job_id)
    firing = _event("transient-error")
    if firing is not None:
        _audit_fault(firing, job=job_id)
        raise FHIRError(500, "transient", f"{_fired(firing, 'a transient failure')}: this status poll failed, the "
                        "export goes on; poll again", headers={"Retry-After": "1"})
    if job.state == "running":
        fraction, left = exports().progress(job)
        progress = bulk.progress_text(fraction, job.activity)
        body = information(f"export {job_id} is running: {progress}")
        return http.json_response(body, 202, {"X-Progress": progress, "Retry-After": str(bulk.retry_after(left))},
                                  mimetype="application/json")
    if job.state == "failed":
        raise FHIRError(500, "processing", f"export {job_id} failed: {job.failure}; start a new one")
    return http.json_response(job.manifest(), 200, {"Expires": formatdate(job.expires, usegmt=True)},
                              mimetype="application/json")


def _file(job_id: str, name: str) -> Response:
    job = exports().get(job_id)
    gone = exports().why_gone(job_id) if job is None else None
    if gone and gone[0] == "expired":
        raise FHIRError(410, "deleted", f"the files of export {job_id} are gone: {gone[1]}; export again")
    job = _owned(job_id, [])
    written = job.file(name) if job.state == "completed" else None
    if written is None:
        raise FHIRError(404, "not-found", f"export {job_id} has no file {name}; its manifest lists its files")
    _owned(job_id, [] if written.type == "OperationOutcome" else [written.type])
    firing = _event("file-expired")
    if firing is not None:
        _audit_fault(firing, job=job_id, file=name)
        raise FHIRError(410, "deleted", f"{_fired(firing, 'the file expired')}: {name} of export {job_id} is no "
                        "longer available; export again")
    try:
        chunks = FileChunks(exports().files.root() / job_id / name)
    except FileNotFoundError:
        raise FHIRError(404, "not-found", f"{name} of export {job_id} is no longer on disk") from None
    return Response(chunks, 200, headers={"Content-Length": str(chunks.size)}, content_type=bulk.NDJSON)


# ---- faults ---------------------------------------------------------------------------------------

def _event(kind: str):
    return current_app.extensions["mockehr.faults"].on_event(kind)


def _fired(firing, what: str) -> str:
    return f"simulated by fault {firing.fault_id} ({firing.spec.text}): {what}"


def _audit_fault(firing, **details) -> None:
    current_app.extensions["mockehr.auth"].fault_fired(firing, path=request.path, method=request.method, **details)
