"""What happens at each visit: when vitals are taken, which panels are drawn,
which procedures are done and which vaccines are given.

Rules of thumb a clinic follows, written as code over the plan's visits.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from mockehr.synth.clinical import DRUG_MONITORING, SCREENING_PANELS
from mockehr.synth.codes import ANCHOR
from mockehr.synth.formulary import CHILD_SCHEDULE
from mockehr.synth.personas import Persona
from mockehr.synth.timeline import ADULT_DAYS, Plan, Visit

OFFICE_KINDS = ("checkup", "follow-up", "problem", "well-child", "prenatal")
STAY_KINDS = ("inpatient", "birth")


def schedule_care(persona: Persona, plan: Plan, rng: random.Random) -> None:
    if "minimal" in persona.features:
        return
    last_drawn: dict[str, date] = {}
    last_done: dict[str, date] = {}
    extra_labs = [(panel, _closest_visit(plan, ANCHOR - timedelta(days=days))) for panel, days in persona.extra_labs]
    for visit in plan.visits:
        visit.vital_times = _daily_times(visit, plan, first_after=timedelta(minutes=15), daily_at=time(8))
        draw_times = _daily_times(visit, plan, first_after=timedelta(minutes=40), daily_at=time(6))
        for i, moment in enumerate(draw_times):
            panels = _due_panels(plan, visit, moment.date(), last_drawn, first=i == 0)
            if i == 0:
                panels += [p for p, v in extra_labs if v is visit and p not in panels]
            if panels:
                visit.draws.append((moment, panels))
                last_drawn.update({p: moment.date() for p in panels})
        visit.procedures += [p for p in _due_procedures(plan, visit, last_done) if p not in visit.procedures]
        last_done.update({p: visit.day for p in visit.procedures})
    _give_vaccines(persona, plan, rng)


def _closest_visit(plan: Plan, day: date) -> Visit | None:
    return min(plan.visits, key=lambda v: abs((v.day - day).days), default=None)


def _daily_times(visit: Visit, plan: Plan, first_after: timedelta, daily_at: time) -> list[datetime]:
    """One moment for an office or ED visit; during a stay, one on arrival and one each morning."""
    times = [visit.start + first_after]
    if visit.kind not in STAY_KINDS:
        return times
    end = visit.end or datetime.combine(ANCHOR - timedelta(days=1), time(12))
    day = visit.day + timedelta(days=1)
    while datetime.combine(day, daily_at) < end:
        times.append(datetime.combine(day, daily_at))
        day += timedelta(days=1)
    return times


def _due_panels(plan: Plan, visit: Visit, day: date, last_drawn: dict[str, date], first: bool) -> list[str]:
    needs: list[tuple[str, int]] = []
    acute_care = visit.kind in STAY_KINDS + ("emergency",)
    for problem in plan.problems:
        # Hospitals and EDs work up what brought the patient in, not the routine follow-up.
        if problem.active_on(day) and (problem.key in visit.reasons or not acute_care):
            needs += problem.definition.monitoring
    for course in plan.courses:
        if course.active_on(day):
            needs += DRUG_MONITORING.get(course.drug, ())
    adult = (day - plan.birth).days >= ADULT_DAYS
    if first and visit.kind == "checkup" and adult:
        needs += SCREENING_PANELS
    if visit.kind not in OFFICE_KINDS + STAY_KINDS and not any(p.visit is visit for p in plan.problems):
        return []   # procedures and minor ED visits draw nothing
    due: list[str] = []
    for panel, every in needs:
        if panel in due or (not first and every > 2):
            continue
        last = last_drawn.get(panel)
        if last is None or (day - last).days >= (every if every <= 3 else every * 0.8):
            due.append(panel)
    return due


def _due_procedures(plan: Plan, visit: Visit, last_done: dict[str, date]) -> list[str]:
    if visit.kind in ("birth", "well-child"):
        return []
    due: list[str] = []
    for problem in plan.problems:
        if not (problem.active_on(visit.day) and problem.key in visit.reasons):
            continue
        for procedure, every in problem.definition.procedures:
            last = last_done.get(procedure)
            if procedure not in due and (last is None or (visit.day - last).days >= every * 0.9):
                due.append(procedure)
    age_years = (visit.day - plan.birth).days / 365.25
    is_female = any(v.kind == "prenatal" for v in plan.visits) or plan.sex == "female"
    last_mammogram = last_done.get("mammography")
    if (visit.kind == "checkup" and is_female and 50 <= age_years < 75
            and (last_mammogram is None or (visit.day - last_mammogram).days >= 700)):
        due.append("mammography")
    return due


def _give_vaccines(persona: Persona, plan: Plan, rng: random.Random) -> None:
    office = [v for v in plan.visits if v.kind in OFFICE_KINDS + ("birth",)]

    def age(v: Visit) -> int:
        return (v.day - plan.birth).days

    for vaccine, due in CHILD_SCHEDULE:
        visit = next((v for v in office if due <= age(v) <= due + 120
                      and vaccine not in [k for k, _ in v.vaccines]), None)
        if visit:
            visit.vaccines.append((vaccine, "completed"))

    declined = "flu-declined" in persona.features
    for year in range(plan.window_start.year - 1, ANCHOR.year):   # seasons run September to March
        season = [v for v in office if date(year, 9, 1) <= v.day <= date(year + 1, 3, 31) and age(v) >= 183]
        if season:
            season[0].vaccines.append(("flu", "not-done" if declined else "completed"))
            declined = False

    checkups = [v for v in office if v.kind == "checkup" and age(v) >= 19 * 365]
    if checkups and rng.random() < 0.3:
        checkups[0].vaccines.append(("tdap", "completed"))
    over_50 = [v for v in checkups if age(v) >= 50 * 365]
    if over_50 and rng.random() < 0.6:
        over_50[0].vaccines.append(("zoster", "completed"))
        second = next((v for v in office if 60 <= (v.day - over_50[0].day).days <= 240), None)
        if second:
            second.vaccines.append(("zoster", "completed"))
    over_65 = [v for v in checkups if age(v) >= 65 * 365]
    if over_65 and rng.random() < 0.7:
        over_65[0].vaccines.append(("ppsv23", "completed"))
