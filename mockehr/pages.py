"""Pages for people, served from launcher/ (templates and static files)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, render_template

from mockehr.paths import launcher_dir


def _age(birth: str | None, today: date) -> str:
    if not birth or len(birth) < 10:
        return "?"
    born = date.fromisoformat(birth[:10])
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if years >= 2:
        return str(years)
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    return f"{months} mo"


def _display_name(patient: dict) -> str:
    names = patient.get("name") or [{}]
    official = next((n for n in names if n.get("use") == "official"), names[0])
    if official.get("text"):
        return official["text"]
    return " ".join([*official.get("given", []), official.get("family", "")]).strip() or patient["id"]


def patient_rows(store, today: date) -> list[dict]:
    rows = []
    for patient in sorted(store.live("Patient"), key=lambda p: p["id"]):
        rows.append({"id": patient["id"], "name": _display_name(patient), "gender": patient.get("gender", ""),
                     "birthDate": patient.get("birthDate", ""), "age": _age(patient.get("birthDate"), today),
                     "deceased": bool(patient.get("deceasedDateTime") or patient.get("deceasedBoolean"))})
    return rows


def build_blueprint() -> Blueprint:
    folder = launcher_dir()
    bp = Blueprint("pages", __name__, template_folder=str(folder / "templates"),
                   static_folder=str(folder / "static"), static_url_path="/static")

    @bp.get("/")
    def home():
        root = current_app.config["MOCKEHR_ROOT_URL"]()
        store = current_app.extensions["mockehr.store"]
        return render_template("home.html", root=root, fhir_base=root + "/fhir",
                               patients=patient_rows(store, date.today()))

    return bp
