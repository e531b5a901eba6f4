"""The interactive authorization flow, as pure functions: which page comes next,
what each choice does to the launch context, what the consent form approved,
and the rows the pages list (people and encounters, from FHIR resources).

The Flask routes in mockehr.auth.pages only read forms, call these and render.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import urlsplit

from mockehr.auth.authorize import AuthorizeRequest, apply_launch, granted_scope
from mockehr.auth.model import AuthContext
from mockehr.auth.scope_words import describe, describe_other
from mockehr.auth.scopes import GRANULAR_CATEGORIES, ResourceScope, ScopeSet, granular_options
from mockehr.auth.stepup import level_of

LOGIN, SECOND_FACTOR, PATIENT, ENCOUNTER, CONSENT = "login", "second-factor", "patient", "encounter", "consent"
STEPS = (LOGIN, SECOND_FACTOR, PATIENT, ENCOUNTER, CONSENT)
STEP_LABELS = {LOGIN: "Sign in", SECOND_FACTOR: "Verify", PATIENT: "Choose patient", ENCOUNTER: "Choose encounter",
               CONSENT: "Allow access"}
STEP_PATHS = {LOGIN: "/auth/login", SECOND_FACTOR: "/auth/second-factor", PATIENT: "/auth/pick-patient",
              ENCOUNTER: "/auth/pick-encounter", CONSENT: "/auth/consent"}
USER_TYPES = ("Practitioner", "Patient")


@dataclass
class Progress:
    """What the pages remember about one pending request beyond its AuthContext."""

    browser: str  # digest of the browser cookie this request is bound to
    encounter_skipped: bool = False
    notice: str | None = None  # why the login page shows although someone is signed in (prompt, max_age)


# -- the flow ----------------------------------------------------------------
def start(req: AuthorizeRequest, ctx: AuthContext, now: int) -> None:
    """Fill in what is known before any page is shown: the EHR launch's context and user."""
    if req.launch is not None:
        apply_launch(ctx, req.launch)
        if req.launch.user:
            ctx.user = req.launch.user
            ctx.auth_time = now
            _patient_from_user(ctx)


def required_level(req: AuthorizeRequest | None) -> int:
    """The authentication level the request needs (acr_values, claims, the step-up fault): 2 = second factor."""
    return req.oidc.level if req is not None and req.oidc is not None else 1


def fixed_patient(req: AuthorizeRequest, ctx: AuthContext) -> str | None:
    """The patient no page may change: the EHR launch's, or the signed-in patient themself."""
    if req.launch is not None and req.launch.patient:
        return req.launch.patient
    return _user_patient(ctx.user)


def applies(step: str, req: AuthorizeRequest, ctx: AuthContext) -> bool:
    """Whether this request shows the page at all (with what is known so far)."""
    if step == LOGIN:
        return not (req.launch is not None and req.launch.user)
    if step == SECOND_FACTOR:
        return required_level(req) > 1
    if step == PATIENT:
        return req.scopes.launch_patient and fixed_patient(req, ctx) is None
    if step == ENCOUNTER:
        launch_encounter = req.launch.encounter if req.launch is not None else None
        return req.scopes.launch_encounter and not launch_encounter and bool(ctx.patient)
    return step == CONSENT


def done(step: str, ctx: AuthContext, progress: Progress, req: AuthorizeRequest | None = None) -> bool:
    if step == LOGIN:
        return ctx.user is not None
    if step == SECOND_FACTOR:
        return ctx.user is not None and level_of(ctx.amr) >= required_level(req)
    if step == PATIENT:
        return ctx.patient is not None
    if step == ENCOUNTER:
        return ctx.encounter is not None or progress.encounter_skipped
    return False


def next_step(req: AuthorizeRequest, ctx: AuthContext, progress: Progress) -> str:
    """The first page this request still needs."""
    for step in STEPS:
        if applies(step, req, ctx) and not done(step, ctx, progress, req):
            return step
    return CONSENT


def page_to_show(wanted: str, req: AuthorizeRequest, ctx: AuthContext, progress: Progress) -> str:
    """`wanted` if it applies and every page before it is done (going back is fine), else the next one."""
    if not applies(wanted, req, ctx):
        return next_step(req, ctx, progress)
    for step in STEPS[:STEPS.index(wanted)]:
        if applies(step, req, ctx) and not done(step, ctx, progress, req):
            return step
    return wanted


def progress_bar(current: str, req: AuthorizeRequest, ctx: AuthContext, progress: Progress) -> list[dict]:
    """The steps this request goes through, for the "Sign in → Choose patient → Allow access" bar."""
    bar = []
    for step in STEPS:
        if step == ENCOUNTER and req.scopes.launch_encounter and not ctx.patient:
            shown = applies(PATIENT, req, ctx)  # the encounter page will follow the patient picker
        else:
            shown = applies(step, req, ctx)
        if shown:
            state = "current" if step == current else "done" if done(step, ctx, progress, req) else "todo"
            bar.append({"step": step, "label": STEP_LABELS[step], "state": state})
    return bar


def choose_user(req: AuthorizeRequest, ctx: AuthContext, progress: Progress, user: str, now: int) -> None:
    """The login page's choice; earlier picks that depended on the previous user are forgotten."""
    ctx.user, ctx.auth_time = user, now
    launch = req.launch
    ctx.patient = launch.patient if launch is not None else None
    ctx.encounter = launch.encounter if launch is not None else None
    progress.encounter_skipped = False
    _patient_from_user(ctx)


def choose_patient(ctx: AuthContext, progress: Progress, patient_id: str) -> None:
    if ctx.patient != patient_id:
        ctx.encounter = None
        progress.encounter_skipped = False
    ctx.patient = patient_id


def choose_encounter(ctx: AuthContext, progress: Progress, encounter_id: str | None) -> None:
    """An encounter id, or None for "continue without an encounter"."""
    ctx.encounter = encounter_id
    progress.encounter_skipped = encounter_id is None


def parse_user(value: str | None) -> tuple[str, str] | None:
    """("Practitioner", "id") from "Practitioner/id"; None for anything else."""
    rtype, _, rid = (value or "").partition("/")
    return (rtype, rid) if rtype in USER_TYPES and rid and "/" not in rid else None


def _user_patient(user: str | None) -> str | None:
    parsed = parse_user(user)
    return parsed[1] if parsed and parsed[0] == "Patient" else None


def _patient_from_user(ctx: AuthContext) -> None:
    if ctx.patient is None:
        ctx.patient = _user_patient(ctx.user)


# -- consent -----------------------------------------------------------------
@dataclass
class ConsentItem:
    """One requested scope on the consent page."""

    scope: str
    label: str
    available: bool  # False: this context cannot honour it (shown, not offered)
    options: list[tuple[str, str]] = field(default_factory=list)  # granular (scope, label) alternatives


def consent_items(req: AuthorizeRequest, ctx: AuthContext) -> list[ConsentItem]:
    """Every requested scope in request order, worded for people, with its granular alternatives."""
    honoured = set(granted_scope(req, ctx).split())
    resource = {s.text: s for s in req.scopes.resource}
    items = []
    for token in req.scopes.text().split():
        scope = resource.get(token)
        label = describe(scope) if scope else describe_other(token)
        options = [(o.text, _category_label(o)) for o in granular_options(scope)] if scope else []
        items.append(ConsentItem(token, label, token in honoured, options))
    return items


def _category_label(option: ResourceScope) -> str:
    value = dict(option.params).get("category", "")
    for known, code, display in GRANULAR_CATEGORIES.get(option.resource, ()):
        if known == value:
            return display[:1].upper() + display[1:]
    return value


def approved_scope_text(requested: ScopeSet, ticked: Iterable[str]) -> str:
    """The scope string the consent form approved, in request order.

    A ticked requested scope counts as itself. An unticked resource scope with granular options
    counts as the options ticked under it (so "only laboratory" replaces patient/Observation.rs).
    Anything that was not requested, nor an option of a requested scope, is ignored: consent only
    ever narrows a request."""
    ticked = set(ticked)
    resource = {s.text: s for s in requested.resource}
    words: list[str] = []
    for token in requested.text().split():
        if token in ticked:
            words.append(token)
        elif token in resource:
            words.extend(o.text for o in granular_options(resource[token]) if o.text in ticked)
    return " ".join(dict.fromkeys(words))


def refused_scopes(requested: ScopeSet, approved_text: str) -> list[str]:
    """The requested scopes the user did not approve as they were (for the audit trail)."""
    approved = set(approved_text.split())
    return [token for token in requested.text().split() if token not in approved]


def redirect_host(uri: str) -> str:
    """What the consent page says the app sends you back to: a host, or the scheme of an app URI."""
    parts = urlsplit(uri)
    return parts.netloc or f"{parts.scheme}:"


# -- rows for the pages (pure over FHIR resources) ---------------------------
def person_name(resource: dict) -> str:
    names = resource.get("name") or []
    if not names:
        return resource.get("id", "")
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if name.get("text"):
        return name["text"]
    words = [*name.get("prefix", []), *name.get("given", []), name.get("family", "")]
    text = " ".join(w for w in words if w)
    suffix = ", ".join(name.get("suffix", []))
    return (f"{text}, {suffix}" if suffix else text) or resource.get("id", "")


def _sort_key(resource: dict) -> tuple:
    names = resource.get("name") or [{}]
    name = next((n for n in names if n.get("use") == "official"), names[0])
    return (_fold(name.get("family", "")), _fold(" ".join(name.get("given", []))), resource.get("id", ""))


def _fold(text: str) -> str:
    """Case- and accent-insensitive form for searching ("pham" finds "Phạm")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def matches(row: dict, query: str | None, fields: Iterable[str] = ("name", "id")) -> bool:
    """Every word of the query appears in one of the row's fields."""
    words = _fold(query or "").split()
    haystack = " ".join(_fold(str(row.get(f) or "")) for f in fields)
    return all(word in haystack for word in words)


def practitioner_rows(practitioners: Iterable[dict], roles: Iterable[dict]) -> list[dict]:
    role_of: dict[str, str] = {}
    for role in roles:
        ref = (role.get("practitioner") or {}).get("reference", "")
        words = [_concept_text(c) for c in role.get("code", [])] + [_concept_text(s) for s in role.get("specialty", [])]
        text = " · ".join(w for w in words if w)
        if ref and text and ref not in role_of:
            role_of[ref] = text
    return [{"ref": f"Practitioner/{p['id']}", "id": p["id"], "name": person_name(p),
             "role": role_of.get(f"Practitioner/{p['id']}", "")}
            for p in sorted(practitioners, key=_sort_key)]


def patient_rows(patients: Iterable[dict]) -> list[dict]:
    return [{"ref": f"Patient/{p['id']}", "id": p["id"], "name": person_name(p), "gender": p.get("gender", ""),
             "birthDate": p.get("birthDate", ""), "mrn": mrn(p),
             "deceased": bool(p.get("deceasedDateTime") or p.get("deceasedBoolean"))}
            for p in sorted(patients, key=_sort_key)]


def mrn(patient: dict) -> str:
    for identifier in patient.get("identifier", []):
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding", [])}
        if "MR" in codes and identifier.get("value"):
            return identifier["value"]
    return ""


def encounter_rows(encounters: Iterable[dict]) -> list[dict]:
    """A patient's encounters, newest first."""
    rows = []
    for enc in encounters:
        period = enc.get("period") or {}
        start = period.get("start") or period.get("end") or ""
        klass = enc.get("class") or {}
        rows.append({"id": enc["id"], "start": start, "when": _when(start), "end": period.get("end", ""),
                     "class": klass.get("display") or klass.get("code", ""),
                     "type": ", ".join(t for t in (_concept_text(c) for c in enc.get("type", [])) if t),
                     "status": enc.get("status", "")})
    rows.sort(key=lambda r: (_epoch(r["start"]), r["id"]), reverse=True)
    return rows


def _epoch(instant: str) -> float:
    try:
        moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return float("-inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _when(instant: str) -> str:
    """"2022-11-08T09:45:00-05:00" -> "2022-11-08 09:45" (local time as recorded)."""
    if len(instant) >= 16 and instant[10] == "T":
        return f"{instant[:10]} {instant[11:16]}"
    return instant


def _concept_text(concept: dict) -> str:
    if concept.get("text"):
        return concept["text"]
    coding = next((c for c in concept.get("coding", []) if c.get("display") or c.get("code")), {})
    return coding.get("display") or coding.get("code", "")
