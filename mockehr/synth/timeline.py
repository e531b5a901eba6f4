"""A patient's history as plain data: visits, problems and medication courses.

plan_history turns a Persona into a Plan; schedule.py then decides what is
measured, drawn, done and given at each visit; the builders turn that into FHIR.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from mockehr.synth.clinical import CONDITIONS, ConditionDef
from mockehr.synth.codes import ANCHOR
from mockehr.synth.formulary import DRUGS
from mockehr.synth.personas import Dx, Persona

CARDIAC = ("afib", "heart-failure", "heart-failure-exacerbation", "sick-sinus", "cad")
ADULT_DAYS = 18 * 365


@dataclass
class Visit:
    kind: str          # checkup | follow-up | problem | well-child | prenatal | procedure | emergency | inpatient | birth
    start: datetime
    end: datetime | None   # None: still going on
    practitioner: str      # staff key
    location: str
    reasons: list[str] = field(default_factory=list)     # condition keys addressed
    procedures: list[str] = field(default_factory=list)
    vital_times: list[datetime] = field(default_factory=list)
    draws: list[tuple[datetime, list[str]]] = field(default_factory=list)
    vaccines: list[tuple[str, str]] = field(default_factory=list)  # (vaccine key, status)
    discharge: str | None = None   # home | exp, for stays that ended
    planned: bool = False          # an elective admission rather than through the ED
    id: str = ""

    @property
    def day(self) -> date:
        return self.start.date()

    @property
    def fhir_class(self) -> str:
        return {"emergency": "EMER", "inpatient": "IMP", "birth": "IMP"}.get(self.kind, "AMB")


@dataclass
class Problem:
    key: str
    dx: Dx
    definition: ConditionDef
    onset: date
    abatement: date | None
    visit: Visit | None     # where it was recorded
    clinical_status: str
    treated_since: date | None = None

    @property
    def confirmed(self) -> bool:
        return self.dx.verification == "confirmed"

    def active_on(self, day: date) -> bool:
        return self.confirmed and self.onset <= day and (self.abatement is None or day < self.abatement)


@dataclass
class Course:
    drug: str
    reason: str | None      # condition key
    start: date
    stop: date | None
    visit: Visit            # where it was prescribed
    status: str             # active | completed | stopped
    inpatient: bool = False

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.stop is None or day < self.stop)


@dataclass
class Plan:
    birth: date
    death: datetime | None
    window_start: date
    last_day: date
    pcp: str
    visits: list[Visit]
    problems: list[Problem]
    courses: list[Course]
    sex: str = "female"    # physiological sex, for reference ranges and growth


def clinic_time(day: date, rng: random.Random) -> datetime:
    """A weekday appointment between 08:00 and 16:00."""
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime.combine(day, time(8)) + timedelta(minutes=15 * rng.randint(0, 32))


def any_time(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(0)) + timedelta(minutes=rng.randint(0, 23 * 60))


def default_pcp(persona: Persona, age_days: int, rng: random.Random) -> str:
    if persona.pcp:
        return persona.pcp
    if age_days < ADULT_DAYS:
        return "lindqvist"
    return rng.choice(("okafor", "morgan", "johnson"))


def _stay_end(start: datetime, stay_days: int | None, last_day: date, rng: random.Random) -> datetime | None:
    if stay_days is None:
        return None
    end_day = start.date() + timedelta(days=stay_days)
    return datetime.combine(min(end_day, last_day), time(10)) + timedelta(minutes=rng.randint(0, 300))


def encounter_for(setting: str, day: date, pcp: str, stay_days: int | None, last_day: date,
                  rng: random.Random, planned: bool = False) -> Visit:
    """The visit a diagnosis or event happened in, by where it happened. Emergencies
    come at any hour; planned admissions (surgery) in the early morning."""
    if setting == "emergency":
        start = any_time(day, rng)
        return Visit("emergency", start, start + timedelta(minutes=rng.randint(150, 360)), "brennan", "loc-ed")
    if setting in ("inpatient", "birth"):
        start = (datetime.combine(day, time(6, 30)) + timedelta(minutes=15 * rng.randint(0, 6)) if planned
                 else any_time(day, rng))
        end = _stay_end(start, stay_days, last_day, rng)
        if setting == "birth":
            return Visit("birth", start, end, "lindqvist", "loc-maternity", discharge="home", planned=True)
        return Visit("inpatient", start, end, "nguyen", "loc-ward", discharge="home" if end else None,
                     planned=planned)
    start = clinic_time(day, rng)
    return Visit("problem", start, start + timedelta(minutes=rng.choice((20, 30, 40))), pcp, "loc-clinic")


def _near(visits: list[Visit], day: date, days: int) -> Visit | None:
    return next((v for v in visits if abs((v.day - day).days) <= days), None)


def _covering(visits: list[Visit], day: date) -> Visit | None:
    """The hospital stay going on that day, if any."""
    return next((v for v in visits if v.kind == "inpatient"
                 and v.day <= day <= (v.end.date() if v.end else ANCHOR)), None)


def _cadence(persona: Persona, problems: list[Problem], day: date) -> int:
    if persona.visit_every_days:
        return persona.visit_every_days
    gaps = [p.definition.follow_up_days for p in problems
            if p.active_on(day) and p.definition.chronic and p.definition.follow_up_days]
    return min(gaps, default=365)


WELL_CHILD_AGES = (7, 14, 30, 61, 122, 183, 274, 365, 456, 548, 730, 913, 1095)


def _routine_days(persona: Persona, plan: Plan, rng: random.Random) -> list[tuple[date, str]]:
    """Dates of scheduled visits: well-child checks for children, otherwise a cadence set
    by the conditions being followed (yearly when there are none)."""
    out: list[tuple[date, str]] = []
    birth, start, last = plan.birth, plan.window_start, plan.last_day
    if (last - birth).days < ADULT_DAYS:
        ages = list(WELL_CHILD_AGES) + list(range(1460, ADULT_DAYS, 365))
        out += [(birth + timedelta(days=a), "well-child") for a in ages if start <= birth + timedelta(days=a) <= last]
    day = start + timedelta(days=rng.randint(5, 45))
    while day <= last:
        step = _cadence(persona, plan.problems, day)
        if step < 365 or (last - birth).days >= ADULT_DAYS:
            out.append((day, "scheduled"))
        following = day + timedelta(days=int(step * rng.uniform(0.9, 1.1)))
        # A new problem needing closer follow-up brings the next visit forward.
        for problem in plan.problems:
            gap = problem.definition.follow_up_days
            if problem.definition.chronic and gap and day < problem.onset < following:
                following = min(following, problem.onset + timedelta(days=gap))
        day = following
    return out


def _scheduled_kind(plan: Plan, day: date, last_checkup: date | None) -> tuple[str, str]:
    if any(p.key == "pregnancy" and p.active_on(day) for p in plan.problems):
        return "prenatal", "patel"
    if (day - plan.birth).days < ADULT_DAYS:
        return "follow-up", plan.pcp
    if last_checkup is None or (day - last_checkup).days >= 330:
        return "checkup", plan.pcp
    return "follow-up", plan.pcp


def plan_history(persona: Persona, birth: date, rng: random.Random) -> Plan:
    age_days = (ANCHOR - birth).days
    death = None
    if persona.died is not None:
        death = datetime.combine(ANCHOR - timedelta(days=persona.died), time(3, 40))
    last_day = death.date() if death else ANCHOR - timedelta(days=2)
    # Children whose whole life fits in the history keep all of it (birth, every vaccine).
    window_start = max(birth, ANCHOR - timedelta(days=persona.history_days))
    sex = "female" if persona.gender == "female" or persona.birth_sex == "F" else "male"
    plan = Plan(birth, death, window_start, last_day, default_pcp(persona, age_days, rng), [], [], [], sex)

    diagnosis_visits = _add_event_visits(persona, plan, rng)
    plan.problems = _problems(persona, plan, diagnosis_visits)   # provisional: sets the cadence
    if "minimal" not in persona.features:
        _add_routine_visits(persona, plan, rng)
    _assign_follow_up_reasons(plan)
    if death:
        final = next((v for v in reversed(plan.visits) if v.kind == "inpatient" and v.end), None)
        if final and final.end.date() == death.date():
            final.end, final.discharge = death, "exp"
    plan.problems = [p for p in _problems(persona, plan, diagnosis_visits) if p.visit]
    plan.courses = _courses(persona, plan)
    return plan


def _add_event_visits(persona: Persona, plan: Plan, rng: random.Random) -> dict[int, Visit]:
    """Visits where something new happened: diagnoses inside the window, births,
    procedures. Returns the diagnosis visits by the diagnosis' index."""
    diagnosis_visits: dict[int, Visit] = {}
    pcp, last_day = plan.pcp, plan.last_day
    for i, dx in enumerate(persona.diagnoses):
        day = ANCHOR - timedelta(days=dx.onset)
        if day < plan.window_start or day > last_day:
            continue
        visit = _near(plan.visits, day, 0) or encounter_for(dx.setting, day, pcp, dx.stay_days, last_day, rng)
        if visit not in plan.visits:
            plan.visits.append(visit)
        if dx.condition == "pregnancy":
            visit.kind, visit.practitioner = "prenatal", "patel"
        visit.reasons.append(dx.condition)
        diagnosis_visits[i] = visit
    for event in persona.events:
        day = max(plan.birth, ANCHOR - timedelta(days=event.when))
        if day < plan.window_start or day > last_day:
            continue
        setting = "inpatient" if event.stay_days and event.setting != "birth" else event.setting
        existing = _covering(plan.visits, day) if setting == "inpatient" else None
        visit = existing or encounter_for(setting, day, pcp, event.stay_days, last_day, rng, planned=True)
        if event.setting == "hospital":
            visit.kind, visit.location = "procedure", "loc-procedures"
            visit.practitioner = "reyes" if event.reason in CARDIAC else pcp
        if event.procedure:
            visit.procedures.append(event.procedure)
        if event.reason and event.reason not in visit.reasons:
            visit.reasons.append(event.reason)
        if not existing:
            plan.visits.append(visit)
    plan.visits.sort(key=lambda v: v.start)
    return diagnosis_visits


def _add_routine_visits(persona: Persona, plan: Plan, rng: random.Random) -> None:
    last_checkup = None
    for day, kind in _routine_days(persona, plan, rng):
        if _near(plan.visits, day, 2 if kind == "well-child" else 10):
            continue
        if kind == "well-child":
            visit_kind, who = "well-child", plan.pcp
        else:
            visit_kind, who = _scheduled_kind(plan, day, last_checkup)
        if visit_kind == "checkup":
            last_checkup = day
        start = clinic_time(day, rng)
        length = 40 if visit_kind in ("checkup", "well-child") else rng.choice((20, 30))
        plan.visits.append(Visit(visit_kind, start, start + timedelta(minutes=length), who, "loc-clinic"))
    if not plan.visits:   # a record always has at least one visit to hang things on
        start = clinic_time(max(plan.window_start, plan.last_day - timedelta(days=20)), rng)
        kind = "well-child" if (plan.last_day - plan.birth).days < ADULT_DAYS else "checkup"
        plan.visits.append(Visit(kind, start, start + timedelta(minutes=40), plan.pcp, "loc-clinic"))
    plan.visits.sort(key=lambda v: v.start)


def _assign_follow_up_reasons(plan: Plan) -> None:
    """Scheduled visits address the problems active that day; cardiac
    follow-ups alternate between the primary care doctor and cardiology."""
    cardiac_turn = False
    for visit in plan.visits:
        if visit.kind not in ("follow-up", "checkup", "prenatal", "well-child") or visit.reasons:
            continue
        visit.reasons = [p.key for p in plan.problems if p.active_on(visit.day)]
        if visit.kind == "follow-up" and any(r in CARDIAC for r in visit.reasons):
            cardiac_turn = not cardiac_turn
            if cardiac_turn:
                visit.practitioner = "reyes"


def _problems(persona: Persona, plan: Plan, diagnosis_visits: dict[int, Visit]) -> list[Problem]:
    """The persona's diagnoses as recorded: at their diagnosis visit, or at the first visit
    of the record when they predate it (visit None while there are no visits yet)."""
    first = plan.visits[0] if plan.visits else None
    out = []
    for i, dx in enumerate(persona.diagnoses):
        definition = CONDITIONS[dx.condition]
        visit = diagnosis_visits.get(i) or first
        # A problem found at a visit dates from that visit (appointments move to weekdays).
        onset = visit.day if i in diagnosis_visits else max(plan.birth, ANCHOR - timedelta(days=dx.onset))
        abatement = None
        if definition.resolves_after_days is not None:
            end = onset + timedelta(days=definition.resolves_after_days)
            abatement = end if end < (plan.death.date() if plan.death else ANCHOR) else None
        status = dx.status or ("resolved" if abatement else "active")
        out.append(Problem(dx.condition, dx, definition, onset, abatement, visit, status))
    return out


def _visit_for(plan: Plan, day: date) -> Visit:
    """The last visit on or before a day (where a drug started then was prescribed)."""
    before = [v for v in plan.visits if v.day <= day]
    return before[-1] if before else plan.visits[0]


def _courses(persona: Persona, plan: Plan) -> list[Course]:
    swaps = dict(persona.drug_swaps)
    wanted: list[tuple[str, str | None, date, date | None, Visit]] = []
    for problem in plan.problems:
        if not problem.confirmed:
            continue
        for key in problem.definition.drugs:
            wanted.append((swaps.get(key, key), problem.key, problem.onset, None, problem.visit))
    for step in persona.extra_drugs:
        start = ANCHOR - timedelta(days=step.start)
        stop = ANCHOR - timedelta(days=step.stop) if step.stop is not None else None
        visit = _visit_for(plan, max(start, plan.window_start))
        wanted.append((step.drug, step.reason, start, stop, visit))

    courses: list[Course] = []
    seen: list[str] = []
    for drug_key, reason, start, stop, visit in wanted:
        if drug_key in seen:
            continue
        seen.append(drug_key)
        drug = DRUGS[drug_key]
        problem = next((p for p in plan.problems if p.key == reason), None)
        if stop is None and drug.course_days:
            stop = start + timedelta(days=drug.course_days)
        if stop is None and problem and problem.abatement and not drug.course_days:
            stop = problem.abatement
        if plan.death and (stop is None or stop > plan.death.date()):
            stop, status = plan.death.date(), "stopped"
        elif stop is None or stop >= ANCHOR:
            status = "active"
        else:
            status = "completed" if drug.course_days else "stopped"
        # Acute treatment of a problem found during a stay is an inpatient order.
        inpatient = (visit.kind == "inpatient" and drug.course_days is not None
                     and problem is not None and problem.visit is visit)
        courses.append(Course(drug_key, reason, start, stop, visit, status, inpatient))
        if problem and (problem.treated_since is None or start < problem.treated_since):
            problem.treated_since = start
    return courses

