"""Care coordination: Goals, CarePlan, CareTeam, Coverage, ServiceRequests and Provenance."""

from __future__ import annotations

import html
import random
import string
from datetime import timedelta

from mockehr.synth import codes as c
from mockehr.synth.clinical import LAB_TESTS, PANELS
from mockehr.synth.context import PatientContext
from mockehr.synth.formulary import DRUGS
from mockehr.synth.organisation import CLINIC, PAYERS, STAFF_BY_KEY
from mockehr.synth.records import practitioner
from mockehr.synth.timeline import CARDIAC

# problem key: (description, measure (LOINC, display) or None, (comparator, value, unit, UCUM) or None)
GOALS = {
    "t2dm": ("HbA1c below 7.0%", ("4548-4", LAB_TESTS["4548-4"].display), ("<", 7.0, "%", "%")),
    "t1dm": ("HbA1c below 7.5%", ("4548-4", LAB_TESTS["4548-4"].display), ("<", 7.5, "%", "%")),
    "hypertension": ("Blood pressure below 130/80 mmHg", ("8480-6", "Systolic blood pressure"),
                     ("<", 130, "mmHg", "mm[Hg]")),
    "hyperlipidemia": ("LDL cholesterol below 100 mg/dL", ("18262-6", LAB_TESTS["18262-6"].display),
                       ("<", 100, "mg/dL", "mg/dL")),
    "cad": ("LDL cholesterol below 70 mg/dL", ("18262-6", LAB_TESTS["18262-6"].display), ("<", 70, "mg/dL", "mg/dL")),
    "depression": ("PHQ-9 score below 5 (remission)",
                   ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
                   ("<", 5, "{score}", "{score}")),
    "obesity": ("Lose 5% of body weight over six months", None, None),
    "copd": ("Quit smoking and stay out of hospital", None, None),
    "heart-failure": ("Weigh daily; call if weight rises more than 2 kg in a week", None, None),
    "asthma": ("No night-time symptoms and no emergency visits", None, None),
    "pregnancy": ("Healthy full-term delivery", None, None),
    "food-insecurity": ("Reliable access to enough healthy food for the household", None, None),
}
PLAN_LINES = {
    "sdoh": "Referred to a community food program; recheck at next visit.",
}
COVERAGE_TYPES = {"commercial": ("5", "PRIVATE HEALTH INSURANCE"), "medicare": ("1", "MEDICARE"),
                  "medicaid": ("2", "MEDICAID")}
PLAN_NAMES = {"commercial": "Northwind Choice PPO", "medicare": "Medicare Part A and B",
              "medicaid": "MassHealth Standard"}


def goals(ctx: PatientContext) -> list[dict]:
    out = []
    for problem in ctx.plan.problems:
        goal = GOALS.get(problem.key)
        if goal is None or not problem.active_on(ctx.plan.last_day):
            continue
        description, measure, detail = goal
        target = {"dueDate": (c.ANCHOR + timedelta(days=180)).isoformat()}
        if measure:
            comparator, value, unit, ucum = detail
            target["measure"] = c.concept(c.coding(c.LOINC, *measure))
            target["detailQuantity"] = {"comparator": comparator, **c.quantity(value, unit, ucum)}
        out.append(ctx.add(c.resource(
            "Goal", ctx.new_id("Goal"), lifecycleStatus="cancelled" if ctx.plan.death else "active",
            achievementStatus=c.concept(c.coding("http://terminology.hl7.org/CodeSystem/goal-achievement",
                                                 "in-progress", "In Progress")),
            category=[c.concept(c.coding(c.US_CORE_CATEGORY, "sdoh", "SDOH"))] if problem.definition.sdoh else None,
            description=c.concept(text=description), subject=ctx.patient,
            startDate=problem.visit.day.isoformat(), target=[target],
            expressedBy=practitioner(ctx.plan.pcp), addresses=[ctx.condition(problem.key)],
        )))
    return out


def care_team(ctx: PatientContext) -> dict | None:
    active = [p for p in ctx.plan.problems if p.active_on(ctx.plan.last_day) and p.definition.chronic]
    if not active and not ctx.related_ids:
        return None
    members = [ctx.plan.pcp]
    if any(p.key in CARDIAC for p in active):
        members.append("reyes")
    if any(p.key == "pregnancy" for p in active) and "patel" not in members:
        members.append("patel")
    if active:
        members.append("kowalski")
    participants = [{"role": [c.concept(c.coding(c.SNOMED, "116154003", "Patient (person)"))], "member": ctx.patient}]
    for key in members:
        snomed, display = STAFF_BY_KEY[key].team_role
        participants.append({"role": [c.concept(c.coding(c.SNOMED, snomed, f"{display} (occupation)"))],
                             "member": practitioner(key)})
    for rid in ctx.related_ids:
        participants.append({"role": [c.concept(c.coding(c.SNOMED, "133932002", "Caregiver (person)"))],
                             "member": c.ref("RelatedPerson", rid)})
    return ctx.add(c.resource(
        "CareTeam", ctx.new_id("CareTeam"), status="inactive" if ctx.plan.death else "active",
        name=f"Care team for {ctx.name}", subject=ctx.patient, period=_period(ctx), participant=participants,
        managingOrganization=[c.ref("Organization", CLINIC)],
    ))


def _period(ctx: PatientContext, start=None) -> dict:
    period = {"start": (start or ctx.plan.visits[0].day).isoformat()}
    if ctx.plan.death:
        period["end"] = ctx.plan.death.date().isoformat()
    return period


def care_plan(ctx: PatientContext, team: dict | None, goal_resources: list[dict]) -> dict | None:
    active = [p for p in ctx.plan.problems if p.active_on(ctx.plan.last_day) and p.definition.chronic]
    if not active:
        return None
    lines = []
    for problem in active:
        drugs = [DRUGS[k.drug].display for k in ctx.plan.courses if k.reason == problem.key and k.status == "active"]
        panels = [PANELS[p].display for p, _ in problem.definition.monitoring]
        text = f"{problem.definition.name[0].upper()}{problem.definition.name[1:]}: "
        text += (f"continue {', '.join(drugs)}" if drugs else "monitor")
        text += (f"; labs: {', '.join(panels)}." if panels else ".")
        lines.append(PLAN_LINES["sdoh"] if problem.definition.sdoh else text)
    div = ('<div xmlns="http://www.w3.org/1999/xhtml"><p><b>Assessment and plan</b></p><ul>'
           + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul></div>")
    start = min(p.visit.day for p in active)
    return ctx.add(c.resource(
        "CarePlan", ctx.new_id("CarePlan"), text={"status": "generated", "div": div},
        status="completed" if ctx.plan.death else "active",
        intent="plan", category=[c.concept(c.coding("http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                                                    "assess-plan", "Assessment and Plan of Treatment"))],
        title="Chronic care plan", subject=ctx.patient, period=_period(ctx, start),
        created=c.stamp(ctx.plan.visits[-1].start), author=practitioner(ctx.plan.pcp),
        careTeam=[c.ref("CareTeam", team["id"])] if team else None,
        addresses=[ctx.condition(p.key) for p in active],
        goal=[c.ref("Goal", g["id"]) for g in goal_resources] or None,
        activity=[{"detail": {"status": "in-progress", "description": line}} for line in lines],
    ))


def _member_id(kind: str, rng: random.Random) -> str:
    if kind == "medicare":   # the Medicare Beneficiary Identifier's shape: 1EG4-TE5-MK72
        letters = "".join(ch for ch in string.ascii_uppercase if ch not in "SLOIBZ")
        pick = rng.choice
        return (f"{rng.randint(1, 9)}{pick(letters)}{pick(letters)}{rng.randint(0, 9)}-"
                f"{pick(letters)}{pick(letters)}{rng.randint(0, 9)}-{pick(letters)}{pick(letters)}"
                f"{rng.randint(10, 99)}")
    prefix = "NWH" if kind == "commercial" else "MH"
    return f"{prefix}{rng.randint(10_000_000, 99_999_999)}"


def coverage(ctx: PatientContext) -> dict | None:
    kind = ctx.persona.coverage
    if kind is None:
        return None
    member = _member_id(kind, ctx.rng)
    dependent = bool(ctx.related_ids) and kind != "medicare"
    code, display = COVERAGE_TYPES[kind]
    period = {"start": max(ctx.plan.birth, c.ANCHOR - timedelta(days=365 * 6)).replace(month=1, day=1).isoformat()}
    if ctx.plan.death:
        period["end"] = ctx.plan.death.date().isoformat()
    payer = PAYERS[kind]
    return ctx.add(c.resource(
        "Coverage", ctx.new_id("Coverage"),
        identifier=[{"type": c.concept(c.coding(c.V2_0203, "MB", "Member Number")),
                     "system": f"http://{payer.removeprefix('org-')}.example.org/member-id", "value": member}],
        status="cancelled" if ctx.plan.death else "active",
        type=c.concept(c.coding("urn:oid:2.16.840.1.113883.3.221.5", code, display)),
        subscriber=c.ref("RelatedPerson", ctx.related_ids[0]) if dependent else ctx.patient,
        subscriberId=member, beneficiary=ctx.patient,
        relationship=c.concept(c.coding("http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                                        "child" if dependent else "self", "Child" if dependent else "Self")),
        period=period, payor=[c.ref("Organization", payer)],
        **{"class": [
            {"type": c.concept(c.coding("http://terminology.hl7.org/CodeSystem/coverage-class", "group", "Group")),
             "value": f"GRP-{code}{ctx.rng.randint(1000, 9999)}", "name": f"{PLAN_NAMES[kind]} group"},
            {"type": c.concept(c.coding("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan")),
             "value": f"PLN-{code}01", "name": PLAN_NAMES[kind]}]},
    ))


def lab_order(ctx: PatientContext) -> dict | None:
    """The next monitoring panel due for the first chronic problem that has one."""
    plan = ctx.plan
    if plan.death or not plan.visits:
        return None
    last = plan.visits[-1]
    for problem in plan.problems:
        if problem.active_on(last.day) and problem.definition.chronic and problem.definition.monitoring:
            panel_key, every = problem.definition.monitoring[0]
            drawn = [m.date() for v in plan.visits for m, panels in v.draws if panel_key in panels]
            due = max((drawn[-1] if drawn else last.day) + timedelta(days=every), c.ANCHOR + timedelta(days=7))
            panel = PANELS[panel_key]
            return ctx.add(c.resource(
                "ServiceRequest", ctx.new_id("ServiceRequest"), status="active", intent="order",
                category=[c.concept(c.coding(c.SNOMED, "108252007", "Laboratory procedure"))],
                code=c.concept(c.coding(c.LOINC, panel.loinc, panel.display), text=panel.display),
                subject=ctx.patient, encounter=ctx.encounter(last), occurrenceDateTime=due.isoformat(),
                authoredOn=c.stamp(last.start + timedelta(minutes=30)), requester=practitioner(last.practitioner),
                reasonReference=[ctx.condition(problem.key)],
            ))
    return None


def food_referral(ctx: PatientContext) -> dict | None:
    problem = next((p for p in ctx.plan.problems if p.key == "food-insecurity"), None)
    if problem is None:
        return None
    visit = problem.visit
    return ctx.add(c.resource(
        "ServiceRequest", ctx.new_id("ServiceRequest"), status="active", intent="order",
        category=[c.concept(c.coding(c.US_CORE_CATEGORY, "sdoh", "SDOH"))],
        code=c.concept(c.coding(c.SNOMED, "3457005", "Patient referral (procedure)"),
                       text="Referral to a community food program"),
        subject=ctx.patient, encounter=ctx.encounter(visit), occurrenceDateTime=visit.day.isoformat(),
        authoredOn=c.stamp(visit.start + timedelta(minutes=30)), requester=practitioner(visit.practitioner),
        reasonReference=[ctx.condition(problem.key)],
    ))


def provenance(ctx: PatientContext) -> dict:
    """Who authored the core of the record, and when it was last touched."""
    kinds = ("Patient", "Condition", "AllergyIntolerance", "MedicationRequest")
    targets = [c.ref(r["resourceType"], r["id"]) for r in ctx.resources if r["resourceType"] in kinds]
    last = ctx.plan.visits[-1] if ctx.plan.visits else None
    moment = (last.end or last.start) if last else None
    recorded = c.stamp(moment) if moment else c.LAST_UPDATED
    return ctx.add(c.resource(
        "Provenance", ctx.new_id("Provenance"), target=targets, recorded=recorded,
        agent=[{"type": c.concept(c.coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                           "author", "Author")),
                "who": practitioner(ctx.plan.pcp), "onBehalfOf": c.ref("Organization", CLINIC)}],
    ))
