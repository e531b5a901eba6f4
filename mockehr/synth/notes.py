"""Clinical notes: a short plain-text note per visit type, as DocumentReferences."""

from __future__ import annotations

import base64
from datetime import timedelta

from mockehr.synth import codes as c
from mockehr.synth.context import PatientContext
from mockehr.synth.formulary import DRUGS
from mockehr.synth.organisation import HOSPITAL, STAFF_BY_KEY
from mockehr.synth.records import practitioner
from mockehr.synth.timeline import Visit

NOTE_TYPES = {
    "progress": ("11506-3", "Progress note"),
    "discharge": ("18842-5", "Discharge summary"),
    "admission": ("34117-2", "History and physical note"),
}
VITAL_LABELS = (("8867-4", "HR", "/min"), ("9279-1", "RR", "/min"), ("8310-5", "Temp", " C"),
                ("59408-5", "SpO2", "%"), ("29463-7", "Weight", " kg"), ("39156-5", "BMI", " kg/m2"))


def _vitals_line(ctx: PatientContext, visit: Visit) -> str:
    values: dict[str, str] = {}
    for obs in ctx.observations_of(visit):
        code = obs["code"]["coding"][0]["code"]
        if code == "85354-9":
            sbp, dbp = (comp["valueQuantity"]["value"] for comp in obs["component"])
            values.setdefault("BP", f"BP {sbp}/{dbp} mmHg")
        for loinc, label, unit in VITAL_LABELS:
            if code == loinc and label not in values:
                values[label] = f"{label} {obs['valueQuantity']['value']}{unit}"
    order = ["BP"] + [label for _, label, _ in VITAL_LABELS]
    return ", ".join(values[k] for k in order if k in values) or "Not recorded."


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


def note_text(ctx: PatientContext, visit: Visit, kind: str) -> str:
    plan = ctx.plan
    title = NOTE_TYPES[kind][1].upper()
    clinician = STAFF_BY_KEY[visit.practitioner].display
    problems = [p for p in plan.problems if p.confirmed and p.active_on(visit.day)]
    addressed = [p for p in problems if p.key in visit.reasons] or problems
    courses = [k for k in plan.courses if k.active_on(visit.day)]
    reason = ", ".join(p.definition.name for p in addressed if p.key in visit.reasons) or "routine visit"
    lines = [
        title,
        f"Patient: {ctx.name}    DOB: {plan.birth.isoformat()}    MRN: {ctx.mrn}",
        f"Date of service: {visit.day.isoformat()}    Clinician: {clinician}",
        f"Reason for visit: {_capital(reason)}",
        "",
        "Subjective: " + ("Doing well; no new complaints." if not any(
            not p.definition.chronic for p in addressed) else "Presents with new symptoms; see assessment."),
        "Objective: " + _vitals_line(ctx, visit),
        "",
        "Assessment:",
    ]
    lines += [f" - {_capital(p.definition.name)} ({p.definition.icd10}): {p.clinical_status}" for p in addressed]
    if not addressed:
        lines.append(" - No active problems.")
    lines += ["", "Plan:"]
    lines += [f" - Continue {DRUGS[k.drug].display}" for k in courses] or [" - No medications."]
    if kind == "discharge":
        lines.append(" - Discharged " + ("(patient expired)" if visit.discharge == "exp" else "home") + ".")
    elif kind == "progress":
        lines.append(" - Follow up as scheduled; call with any concerns.")
    lines += ["", f"Electronically signed by {clinician}"]
    return "\n".join(lines) + "\n"


def document(ctx: PatientContext, visit: Visit, kind: str) -> dict:
    code, display = NOTE_TYPES[kind]
    text = note_text(ctx, visit, kind)
    written = (visit.end or visit.start + timedelta(hours=2)) if kind != "admission" else visit.start + timedelta(hours=3)
    period = {"start": c.stamp(visit.start)}
    if visit.end:
        period["end"] = c.stamp(visit.end)
    return ctx.add(c.resource(
        "DocumentReference", ctx.new_id("DocumentReference"), status="current", docStatus="final",
        type=c.concept(c.coding(c.LOINC, code, display), text=display),
        category=[c.concept(c.coding(c.US_CORE_DOC_CATEGORY, "clinical-note", "Clinical Note"))],
        subject=ctx.patient, date=c.stamp(written), author=[practitioner(visit.practitioner)],
        custodian=c.ref("Organization", HOSPITAL),
        content=[{"attachment": {"contentType": "text/plain", "language": "en-US",
                                 "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                                 "title": f"{display} {visit.day.isoformat()}", "creation": c.stamp(written)},
                  "format": c.coding("http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                                     "urn:ihe:iti:xds:2017:mimeTypeSufficient", "mimeType Sufficient")}],
        context={"encounter": [ctx.encounter(visit)], "period": period},
    ))


def documents(ctx: PatientContext) -> list[dict]:
    """A progress note for the latest office visit, a discharge summary per finished stay
    and an admission note for a stay still going on."""
    out = []
    office = [v for v in ctx.plan.visits if v.fhir_class == "AMB" and v.kind != "procedure"]
    for visit in ctx.plan.visits:
        if visit.kind == "inpatient":
            out.append(document(ctx, visit, "discharge" if visit.end else "admission"))
    if office:
        out.append(document(ctx, office[-1], "progress"))
    return out
