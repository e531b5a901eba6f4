"""Pages for people, served from launcher/ (templates and static files), and the patient rows they list."""

from __future__ import annotations

from datetime import date

from flask import Blueprint

from mockehr.paths import launcher_dir


def age_text(birth: str | None, until: date) -> str:
    """'56', '14 mo', '12 d': how clinicians write ages."""
    if not birth or len(birth) < 10:
        return "?"
    born = date.fromisoformat(birth[:10])
    years = until.year - born.year - ((until.month, until.day) < (born.month, born.day))
    if years >= 2:
        return str(years)
    months = (until.year - born.year) * 12 + until.month - born.month - (until.day < born.day)
    if months >= 1:
        return f"{months} mo"
    return f"{(until - born).days} d"


def _display_name(patient: dict) -> str:
    names = patient.get("name") or [{}]
    official = next((n for n in names if n.get("use") == "official"), names[0])
    if official.get("text"):
        return official["text"]
    return " ".join([*official.get("given", []), official.get("family", "")]).strip() or patient["id"]


def patient_rows(store, today: date) -> list[dict]:
    rows = []
    for patient in sorted(store.live("Patient"), key=lambda p: p["id"]):
        died = patient.get("deceasedDateTime")
        until = date.fromisoformat(died[:10]) if died and len(died) >= 10 else today
        rows.append({"id": patient["id"], "name": _display_name(patient), "gender": patient.get("gender", ""),
                     "birthDate": patient.get("birthDate", ""), "age": age_text(patient.get("birthDate"), until),
                     "deceased": bool(died or patient.get("deceasedBoolean"))})
    return rows


def build_blueprint() -> Blueprint:
    """Static files of the pages (CSS, scripts, the sample app); the launcher at ROOT/ is mockehr.views.launcher."""
    folder = launcher_dir()
    return Blueprint("pages", __name__, template_folder=str(folder / "templates"),
                     static_folder=str(folder / "static"), static_url_path="/static")
