"""Social history and screening: smoking, sexual orientation, pregnancy status,
PHQ-9 and Hunger Vital Sign questionnaires with the observations derived from them."""

from __future__ import annotations

from datetime import datetime, timedelta

from mockehr.synth import codes as c
from mockehr.synth.context import PatientContext
from mockehr.synth.records import practitioner
from mockehr.synth.timeline import Visit

SMOKING = {
    "never": ("266919005", "Never smoked tobacco (finding)"),
    "former": ("8517006", "Ex-smoker (finding)"),
    "current": ("449868002", "Smokes tobacco daily (finding)"),
}
ORIENTATION = {"heterosexual": ("20430005", "Heterosexual (finding)"), "bisexual": ("42035005", "Bisexual (finding)")}
PREGNANCY_STATUS = {True: ("77386006", "Pregnant (finding)"), False: ("60001007", "Not pregnant (finding)")}

PHQ9_ITEMS = (
    ("44250-9", "Little interest or pleasure in doing things"),
    ("44255-8", "Feeling down, depressed, or hopeless"),
    ("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
    ("44254-1", "Feeling tired or having little energy"),
    ("44251-7", "Poor appetite or overeating"),
    ("44258-2", "Feeling bad about yourself - or that you are a failure or have let yourself or your family down"),
    ("44252-5", "Trouble concentrating on things, such as reading the newspaper or watching television"),
    ("44253-3", "Moving or speaking so slowly that other people could have noticed. Or the opposite - being so "
                "fidgety or restless that you have been moving around a lot more than usual"),
    ("44260-8", "Thoughts that you would be better off dead, or of hurting yourself in some way"),
)
PHQ9_ANSWERS = (("LA6568-5", "Not at all"), ("LA6569-3", "Several days"), ("LA6570-1", "More than half the days"),
                ("LA6571-9", "Nearly every day"))
PHQ9_TOTAL = ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]")
HVS_ITEMS = (
    ("88122-7", "Within the past 12 months we worried whether our food would run out before we got money to buy more"),
    ("88123-5", "Within the past 12 months the food we bought just didn't last and we didn't have money to get more"),
)
HVS_ANSWERS = (("LA28397-0", "Often true"), ("LA6729-3", "Sometimes true"), ("LA28398-8", "Never true"))
HVS_RISK = ("88124-3", "Food insecurity risk [HVS]")


def _social(ctx: PatientContext, visit: Visit, code: tuple[str, str], value: tuple[str, str], profile: str,
            categories: list[dict]) -> dict:
    moment = visit.start + timedelta(minutes=12)
    return ctx.add(c.resource(
        "Observation", ctx.new_id("Observation"), profile, status="final", category=categories,
        code=c.concept(c.coding(c.LOINC, *code), text=code[1]), subject=ctx.patient,
        encounter=ctx.encounter(visit), effectiveDateTime=c.stamp(moment), issued=c.stamp(moment),
        performer=[practitioner(visit.practitioner)],
        valueCodeableConcept=c.concept(c.coding(c.SNOMED, *value), text=value[1].split(" (")[0]),
    ))


def _category(code: str, display: str, system: str = c.OBSERVATION_CATEGORY) -> dict:
    return c.concept(c.coding(system, code, display))


SOCIAL_HISTORY = _category("social-history", "Social History")
SURVEY = _category("survey", "Survey")


def social_history(ctx: PatientContext) -> None:
    """Smoking status at every check-up (teenagers and up), orientation and pregnancy
    status at the most recent one."""
    persona, plan = ctx.persona, ctx.plan
    visits = [v for v in plan.visits if v.kind in ("checkup", "well-child", "prenatal", "follow-up")]
    checkups = [v for v in visits if v.kind in ("checkup", "prenatal")] or visits[-1:]
    if persona.smoking:
        for visit in checkups:
            if (visit.day - plan.birth).days >= 12 * 365:
                _social(ctx, visit, ("72166-2", "Tobacco smoking status"), SMOKING[persona.smoking],
                        "us-core-smokingstatus", [SOCIAL_HISTORY])
    if not checkups:
        return
    latest = checkups[-1]
    if "sexual-orientation" in persona.features:
        orientation = "bisexual" if persona.gender == "other" else "heterosexual"
        _social(ctx, latest, ("76690-7", "Sexual orientation"), ORIENTATION[orientation],
                "us-core-observation-sexual-orientation", [SOCIAL_HISTORY])
    age = (latest.day - plan.birth).days / 365.25
    if plan.sex == "female" and 15 <= age < 50:
        pregnant = any(p.key == "pregnancy" and p.active_on(latest.day) for p in plan.problems)
        _social(ctx, latest, ("82810-3", "Pregnancy status"), PREGNANCY_STATUS[pregnant],
                "us-core-observation-pregnancystatus", [SOCIAL_HISTORY])


def _answer(code: str, display: str) -> dict:
    return {"valueCoding": c.coding(c.LOINC, code, display)}


def _questionnaire(ctx: PatientContext, visit: Visit, moment: datetime, canonical: str, items: list[dict]) -> dict:
    return ctx.add(c.resource(
        "QuestionnaireResponse", ctx.new_id("QuestionnaireResponse"), questionnaire=canonical,
        status="completed", subject=ctx.patient, encounter=ctx.encounter(visit), authored=c.stamp(moment),
        author=ctx.patient, source=ctx.patient, item=items,
    ))


def _screening_observation(ctx: PatientContext, visit: Visit, moment: datetime, code: tuple[str, str],
                           response: dict, sdoh: bool, **value) -> dict:
    categories = [SURVEY]
    if sdoh:
        categories.append(_category("sdoh", "SDOH", c.US_CORE_CATEGORY))
    return ctx.add(c.resource(
        "Observation", ctx.new_id("Observation"), "us-core-observation-screening-assessment", status="final",
        category=categories, code=c.concept(c.coding(c.LOINC, *code), text=code[1]), subject=ctx.patient,
        encounter=ctx.encounter(visit), effectiveDateTime=c.stamp(moment), issued=c.stamp(moment),
        performer=[ctx.patient], derivedFrom=[c.ref("QuestionnaireResponse", response["id"])], **value,
    ))


def phq9_series(ctx: PatientContext) -> None:
    """A PHQ-9 at each visit for depression; scores fall as treatment works."""
    visits = [v for v in ctx.plan.visits if "depression" in v.reasons]
    for n, visit in enumerate(visits):
        target = max(17 - 4 * n, 3)
        scores = [min(3, max(0, round(target / 9 + ctx.rng.uniform(-0.9, 0.9)))) for _ in PHQ9_ITEMS]
        scores[-1] = 0 if n else min(scores[-1], 1)
        moment = visit.start + timedelta(minutes=5)
        items = [{"linkId": code, "text": text, "answer": [_answer(*PHQ9_ANSWERS[s])]}
                 for (code, text), s in zip(PHQ9_ITEMS, scores)]
        items.append({"linkId": PHQ9_TOTAL[0], "text": "Total score", "answer": [{"valueInteger": sum(scores)}]})
        response = _questionnaire(ctx, visit, moment, "http://loinc.org/q/44249-1", items)
        _screening_observation(ctx, visit, moment, PHQ9_TOTAL, response, False,
                               valueQuantity=c.quantity(sum(scores), "{score}"))


def hunger_vital_sign(ctx: PatientContext, visit: Visit) -> None:
    moment = visit.start + timedelta(minutes=5)
    answers = (HVS_ANSWERS[1], HVS_ANSWERS[0])
    items = [{"linkId": code, "text": text, "answer": [_answer(*answer)]}
             for (code, text), answer in zip(HVS_ITEMS, answers)]
    items.append({"linkId": HVS_RISK[0], "text": HVS_RISK[1], "answer": [_answer("LA19952-3", "At risk")]})
    response = _questionnaire(ctx, visit, moment, "http://loinc.org/q/88121-9", items)
    for (code, text), answer in zip(HVS_ITEMS, answers):
        _screening_observation(ctx, visit, moment, (code, text), response, True,
                               valueCodeableConcept=c.concept(c.coding(c.LOINC, *answer), text=answer[1]))
    _screening_observation(ctx, visit, moment, HVS_RISK, response, True,
                           valueCodeableConcept=c.concept(c.coding(c.LOINC, "LA19952-3", "At risk"), text="At risk"))
