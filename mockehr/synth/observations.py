"""Vital signs and lab results: Observation, DiagnosticReport and Specimen resources."""

from __future__ import annotations

from datetime import datetime, timedelta

from mockehr.synth import codes as c
from mockehr.synth.clinical import LAB_TESTS, PANELS, SPECIMEN_TYPES
from mockehr.synth.context import PatientContext
from mockehr.synth.organisation import HOSPITAL
from mockehr.synth.physiology import (
    age_years, bmi_percentile, expected, head_cm, head_percentile, height_cm, interpretation, panel_values,
    reference_range, rounded, sample, vital_baseline, weight_for_length_percentile, weight_kg,
)
from mockehr.synth.timeline import Visit

# key: (LOINC, display, UCUM code, unit shown, US Core profile)
VITALS = {
    "bp": ("85354-9", "Blood pressure panel with all children optional", None, None, "us-core-blood-pressure"),
    "sbp": ("8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg", None),
    "dbp": ("8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg", None),
    "hr": ("8867-4", "Heart rate", "/min", "beats/minute", "us-core-heart-rate"),
    "rr": ("9279-1", "Respiratory rate", "/min", "breaths/minute", "us-core-respiratory-rate"),
    "temp": ("8310-5", "Body temperature", "Cel", "C", "us-core-body-temperature"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%", "us-core-pulse-oximetry"),
    "height": ("8302-2", "Body height", "cm", "cm", "us-core-body-height"),
    "weight": ("29463-7", "Body weight", "kg", "kg", "us-core-body-weight"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2", "us-core-bmi"),
    "head": ("9843-4", "Head Occipital-frontal circumference", "cm", "cm", "us-core-head-circumference"),
    "head-pct": ("8289-1", "Head Occipital-frontal circumference Percentile", "%", "%",
                 "head-occipital-frontal-circumference-percentile"),
    "wfl-pct": ("77606-2", "Weight-for-length Per age and sex", "%", "%", "pediatric-weight-for-height"),
    "bmi-pct": ("59576-9", "Body mass index (BMI) [Percentile] Per age and sex", "%", "%", "pediatric-bmi-for-age"),
}
SPO2_ARTERIAL = c.coding(c.LOINC, "2708-6", "Oxygen saturation in Arterial blood")
INTERPRETATIONS = {"H": "High", "L": "Low", "N": "Normal"}


def _loinc(code: str, display: str, *extra: dict) -> dict:
    return c.concept(c.coding(c.LOINC, code, display), *extra)


def _observation(ctx: PatientContext, visit: Visit, moment: datetime, code: dict, profile: str,
                 category: str, issued: datetime | None = None, **fields) -> dict:
    return ctx.add(c.resource(
        "Observation", ctx.new_id("Observation"), profile, status="final",
        category=c.category(c.OBSERVATION_CATEGORY, category, category.replace("-", " ").title()),
        code=code, subject=ctx.patient, encounter=ctx.encounter(visit),
        effectiveDateTime=c.stamp(moment), issued=c.stamp(issued) if issued else None, **fields,
    ))


def _vital(ctx: PatientContext, visit: Visit, moment: datetime, key: str, value: float, decimals: int = 1) -> dict:
    code, display, ucum, unit, profile = VITALS[key]
    extra = (SPO2_ARTERIAL,) if key == "spo2" else ()
    return _observation(ctx, visit, moment, _loinc(code, display, *extra), profile, "vital-signs",
                        valueQuantity=c.quantity(rounded(value, decimals), unit, ucum))


def vital_signs(ctx: PatientContext, visit: Visit, moment: datetime) -> list[dict]:
    """One set of vitals, as a nurse takes them for the patient's age."""
    plan, rng, day = ctx.plan, ctx.rng, moment.date()
    age = age_years(plan, day)

    def draw(key: str, low: float, high: float) -> float:
        mean, sd = expected(key, ctx.persona, plan, day, vital_baseline(key, plan, day))
        return min(max(sample(rng, mean, sd), low), high)

    out = []
    if age >= 3:
        sbp, dbp = draw("sbp", 70, 220), draw("dbp", 40, 130)
        code, display, _, _, profile = VITALS["bp"]
        components = [{"code": _loinc(*VITALS[k][:2]), "valueQuantity": c.quantity(round(v), "mmHg", "mm[Hg]")}
                      for k, v in (("sbp", sbp), ("dbp", dbp))]
        out.append(_observation(ctx, visit, moment, _loinc(code, display), profile, "vital-signs",
                                component=components))
    out.append(_vital(ctx, visit, moment, "hr", draw("hr", 35, 220), 0))
    out.append(_vital(ctx, visit, moment, "rr", draw("rr", 8, 70), 0))
    out.append(_vital(ctx, visit, moment, "temp", draw("temp", 35.0, 41.5)))
    out.append(_vital(ctx, visit, moment, "spo2", draw("spo2", 80, 100), 0))
    if moment != visit.vital_times[0] and visit.kind in ("inpatient", "birth") and age >= 2:
        return out   # body size is measured once per stay, weight daily only for babies
    height = height_cm(ctx.body, plan, day)
    weight = weight_kg(ctx.body, plan, day)
    # Adults are measured for height at check-ups and first visits, children every time.
    if age < 18 or visit.kind == "checkup" or visit is plan.visits[0] or plan.sex == "female" and any(
            p.key == "pregnancy" and p.visit is visit for p in plan.problems):
        out.append(_vital(ctx, visit, moment, "height", height))
    out.append(_vital(ctx, visit, moment, "weight", weight, 2 if age < 2 else 1))
    if age < 2:
        out.append(_vital(ctx, visit, moment, "head", head_cm(ctx.body, plan, day)))
        out.append(_vital(ctx, visit, moment, "head-pct", head_percentile(ctx.body)))
        out.append(_vital(ctx, visit, moment, "wfl-pct", weight_for_length_percentile(ctx.body)))
    else:
        out.append(_vital(ctx, visit, moment, "bmi", weight / (height / 100) ** 2))
        if age < 20:
            out.append(_vital(ctx, visit, moment, "bmi-pct", bmi_percentile(ctx.body)))
    return out


def _range(low: float | None, high: float | None, unit: str) -> dict:
    out = {}
    if low is not None:
        out["low"] = c.quantity(low, unit)
    if high is not None:
        out["high"] = c.quantity(high, unit)
    return out


def lab_draw(ctx: PatientContext, visit: Visit, moment: datetime, panel_keys: list[str]) -> list[dict]:
    """One blood/urine draw: a Specimen per tube type, a DiagnosticReport per panel."""
    plan, day = ctx.plan, moment.date()
    newborn = (day - plan.birth).days < 28
    resulted = moment + timedelta(hours=2, minutes=ctx.rng.randint(0, 59))
    specimens: dict[str, str] = {}
    for key in panel_keys:
        kind = PANELS[key].specimen
        if kind not in specimens:
            specimens[kind] = ctx.new_id("Specimen")
            snomed, display = SPECIMEN_TYPES[kind]
            ctx.add(c.resource(
                "Specimen", specimens[kind],
                accessionIdentifier={"system": "http://hospital.example.org/lab-accession",
                                     "value": f"{moment:%y%j}-{specimens[kind].rsplit('-', 1)[1]}-{ctx.mrn[-4:]}"},
                status="available", type=c.concept(c.coding(c.SNOMED, snomed, display)),
                subject=ctx.patient, receivedTime=c.stamp(moment + timedelta(minutes=30)),
                collection={"collectedDateTime": c.stamp(moment)},
            ))
    reports = []
    for key in panel_keys:
        panel = PANELS[key]
        specimen = c.ref("Specimen", specimens[panel.specimen])
        results = []
        for code, value in panel_values(panel.tests, ctx.persona, plan, day, ctx.rng).items():
            test = LAB_TESTS[code]
            low, high = reference_range(test, plan.sex, newborn)
            flag = interpretation(value, low, high)
            obs = _observation(
                ctx, visit, moment, _loinc(code, test.display), "us-core-observation-lab", "laboratory",
                issued=resulted, valueQuantity=c.quantity(value, test.unit),
                interpretation=[c.concept(c.coding(c.INTERPRETATION, flag, INTERPRETATIONS[flag]))],
                referenceRange=[_range(low, high, test.unit)], specimen=specimen,
            )
            results.append(c.ref("Observation", obs["id"]))
        reports.append(ctx.add(c.resource(
            "DiagnosticReport", ctx.new_id("DiagnosticReport"), status="final",
            category=c.category(c.V2_0074, "LAB", "Laboratory"),
            code=_loinc(panel.loinc, panel.display), subject=ctx.patient, encounter=ctx.encounter(visit),
            effectiveDateTime=c.stamp(moment), issued=c.stamp(resulted),
            performer=[c.ref("Organization", HOSPITAL, "Riverside General Hospital")],
            specimen=[specimen], result=results,
        )))
    return reports

