"""The patient browser: ROOT/patients (list and search), ROOT/patients/ID (the record by type),
ROOT/patients/ID/TYPE/RID (one resource's JSON). Server-rendered; reads the store directly.

Open like the launcher page (synthetic data, already listed at ROOT/); the FHIR API
itself still wants a token.
"""

from __future__ import annotations

from datetime import date

import orjson
from flask import Blueprint, abort, current_app, render_template, request

from mockehr.fhir.searchparams import RESOURCE_TYPES
from mockehr.paths import launcher_dir
from mockehr.views.patient_summary import group_record, matches, patient_row

LIST_LIMIT = 200  # patients listed at once; the search narrows the rest
GROUP_LIMIT = 50  # rows per resource type before "show all"
GENDERS = ("female", "male", "other", "unknown")


def _root() -> str:
    return current_app.config["MOCKEHR_ROOT_URL"]()


def _store():
    return current_app.extensions["mockehr.store"]


def _patient(pid: str) -> dict:
    version = _store().read("Patient", pid)
    if version is None or version.deleted:
        abort(404, f"There is no patient '{pid}' in the store.")
    return version.resource


def build_blueprint() -> Blueprint:
    bp = Blueprint("patients", __name__, url_prefix="/patients", template_folder=str(launcher_dir() / "templates"))

    @bp.errorhandler(404)
    def not_found(error):
        return render_template("patient_missing.html", root=_root(), active="patients",
                               message=error.description), 404

    @bp.get("")
    def listing():
        q = request.args.get("q", "").strip()
        gender = request.args.get("gender", "")
        gender = gender if gender in GENDERS else ""
        today = date.today()
        rows = sorted((patient_row(p, today) for p in _store().live("Patient")), key=lambda r: r["id"])
        shown = [r for r in rows if matches(r, q, gender)]
        return render_template("patients.html", root=_root(), active="patients", q=q, gender=gender, genders=GENDERS,
                               patients=shown[:LIST_LIMIT], total=len(rows), matched=len(shown), limit=LIST_LIMIT)

    @bp.get("/<pid>")
    def record(pid: str):
        patient = _patient(pid)
        resources = current_app.extensions["mockehr.fhir"].everything(pid, None, None)
        groups = group_record([r for r in resources if (r["resourceType"], r["id"]) != ("Patient", pid)])
        full = request.args.get("all", "")
        for group in groups:
            group["shown"] = group["rows"] if group["type"] == full else group["rows"][:GROUP_LIMIT]
        return render_template("patient.html", root=_root(), active="patients",
                               patient=patient_row(patient, date.today()), groups=groups,
                               total=sum(g["count"] for g in groups))

    @bp.get("/<pid>/<rtype>/<rid>")
    def resource(pid: str, rtype: str, rid: str):
        patient = _patient(pid)
        if rtype not in RESOURCE_TYPES:
            abort(404, f"'{rtype}' is not a resource type this server serves.")
        version = _store().read(rtype, rid)
        if version is None or version.deleted:
            abort(404, f"There is no {rtype}/{rid} in the store.")
        text = orjson.dumps(version.resource, option=orjson.OPT_INDENT_2).decode()
        return render_template("patient_resource.html", root=_root(), active="patients",
                               patient=patient_row(patient, date.today()), rtype=rtype, rid=rid, json=text,
                               version=version.vid)

    return bp
