"""A simulated EHR around an app: ROOT/ehr?launch=ID (or ?launch_url=URL).

The page looks like an EHR chart: a header with the signed-in user, a patient
banner (name, age, sex, date of birth, MRN) and the app in an <iframe> with the
attributes real EHRs give embedded SMART apps.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Response, current_app, render_template, request

from mockehr.admin import with_query
from mockehr.auth import consent
from mockehr.auth.model import Launch
from mockehr.pages import age_text
from mockehr.paths import launcher_dir

# What an embedded SMART app may do: run scripts on its own origin, submit forms, open popups
# (some apps authorize in one) and dialogs, download files; never navigate the EHR page itself.
IFRAME_SANDBOX = ("allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox "
                  "allow-modals allow-downloads")
IFRAME_ALLOW = "clipboard-read; clipboard-write; fullscreen; camera; microphone; geolocation"
SEX = {"male": "Male", "female": "Female", "other": "Other", "unknown": "Unknown"}


class FrameError(Exception):
    def __init__(self, status: int, heading: str, message: str):
        super().__init__(message)
        self.status, self.heading, self.message = status, heading, message


def banner_facts(patient: dict, today: date) -> dict:
    """The patient banner: name, age, sex, date of birth and MRN (the id when there is no MR identifier)."""
    died = patient.get("deceasedDateTime")
    until = date.fromisoformat(died[:10]) if died and len(died) >= 10 else today
    mrn = consent.mrn(patient)
    return {"id": patient["id"], "name": consent.person_name(patient), "age": age_text(patient.get("birthDate"), until),
            "sex": SEX.get(patient.get("gender", ""), "Sex unknown"), "birthDate": patient.get("birthDate", ""),
            "mrn": mrn or patient["id"], "mrn_label": "MRN" if mrn else "Id",
            "deceased": bool(died or patient.get("deceasedBoolean"))}


def launch_id_of(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("launch")
    return values[-1] if values else None


def check_app_url(url: str) -> None:
    """Only http(s) pages go into the frame (never javascript: or data: URLs from a query string)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise FrameError(400, "Cannot open this app", f"launch_url '{url}' must be an absolute http(s) URL.")


def build_blueprint() -> Blueprint:
    bp = Blueprint("ehr_frame", __name__, template_folder=str(launcher_dir() / "templates"))

    @bp.errorhandler(FrameError)
    def frame_error(exc: FrameError):
        page = render_template("launcher_error.html", root=_root(), heading=exc.heading, message=exc.message)
        return Response(page, status=exc.status, mimetype="text/html")

    @bp.get("/ehr")
    def frame():
        auth = current_app.extensions["mockehr.auth"]
        iss = f"{_root()}/fhir"
        launch_id = request.args.get("launch", "").strip()
        app_url = request.args.get("launch_url", "").strip()
        if launch_id:
            launch = auth.state.launch(launch_id)
            if launch is None:
                raise FrameError(404, "Launch not found", f"Launch '{launch_id}' is unknown or has expired (a launch "
                                 "works for an hour). Start it again from the launcher.")
            if not launch.app_url:
                raise FrameError(400, "Cannot open this app", f"Launch '{launch_id}' names no app_url to open.")
            app_url = with_query(launch.app_url, {"launch": launch_id, "iss": iss})
        elif app_url:
            check_app_url(app_url)
            known = launch_id_of(app_url)
            launch = auth.state.launch(known) if known else None
        else:
            raise FrameError(400, "Nothing to open", "Open the EHR frame from the launcher, or give it "
                             "?launch=LAUNCH_ID or ?launch_url=URL.")
        return Response(render_template("ehr_frame.html", root=_root(), app_url=app_url, launch=launch,
                                        **_chart(launch), sandbox=IFRAME_SANDBOX, allow=IFRAME_ALLOW), mimetype="text/html")

    return bp


def _root() -> str:
    return current_app.config["MOCKEHR_ROOT_URL"]()


def _chart(launch: Launch | None) -> dict:
    """The banner's patient, the user and the encounter of a launch (None where unknown)."""
    store = current_app.extensions["mockehr.store"]

    def read(rtype: str, rid: str | None) -> dict | None:
        version = store.read(rtype, rid) if rid else None
        return version.resource if version is not None and not version.deleted else None

    patient = read("Patient", launch.patient) if launch else None
    user = None
    if launch and launch.user:
        rtype, _, rid = launch.user.partition("/")
        resource = read(rtype, rid)
        user = consent.person_name(resource) if resource else launch.user
    encounter = read("Encounter", launch.encounter) if launch else None
    return {"patient": banner_facts(patient, date.today()) if patient else None, "user": user,
            "encounter": consent.encounter_rows([encounter])[0] if encounter else None}
