"""generate_dataset: every patient's record, the shared setting, and the catalogue."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from faker import Faker

from mockehr.synth import care, notes, records, social
from mockehr.synth.codes import ANCHOR, age_in_years
from mockehr.synth.context import PatientContext
from mockehr.synth.formulary import DRUGS
from mockehr.synth.observations import lab_draw, vital_signs
from mockehr.synth.organisation import group, medication, shared_resources
from mockehr.synth.people import birth_date, patient, related_persons
from mockehr.synth.personas import PERSONAS, Persona
from mockehr.synth.physiology import make_body
from mockehr.synth.population import random_persona
from mockehr.synth.schedule import schedule_care
from mockehr.synth.timeline import plan_history

DEFAULT_PATIENTS = 25
DEFAULT_SEED = 1776
FAKER_LOCALES = ["en_US", "es_MX", "vi_VN"]


@dataclass
class Dataset:
    patients: int
    seed: int
    anchor: str
    resources: list[dict]    # sorted by (resourceType, id)
    catalogue: list[dict]    # one entry per patient, in id order


def patient_id(index: int, persona: Persona) -> str:
    """p00001-diabetes-htn for designed patients, p00026 for the rest: ids sort in catalogue order."""
    return f"p{index:05d}" + (f"-{persona.slug}" if persona.slug else "")


def stream(seed: int, index: int, purpose: str) -> random.Random:
    """A random stream per patient and purpose, so that tuning how visits are planned
    never renames anybody, and adding patients never changes earlier ones."""
    return random.Random(f"mockehr:{seed}:{index}:{purpose}")


def build_patient(index: int, persona: Persona, seed: int, fake: Faker) -> PatientContext:
    """One patient's whole record: plan the history, then write it down as FHIR."""
    plan = plan_history(persona, birth_date(persona, stream(seed, index, "birth")), stream(seed, index, "plan"))
    schedule_care(persona, plan, stream(seed, index, "care"))
    body = make_body(persona, plan.sex, stream(seed, index, "body"))
    ctx = PatientContext(patient_id(index, persona), persona, plan, body, stream(seed, index, "values"))
    for visit in plan.visits:
        visit.id = ctx.new_id("Encounter")
    for problem in plan.problems:
        ctx.condition_ids[problem.key] = ctx.new_id("Condition")
    fake.seed_instance(f"mockehr:{seed}:{index}")
    people = stream(seed, index, "people")
    patient(ctx, index, fake, people)
    related_persons(ctx, fake, people)
    _clinical_record(ctx)
    if "minimal" not in persona.features:
        _screening_and_care(ctx)
    return ctx


def _clinical_record(ctx: PatientContext) -> None:
    """Problems, visits and what happened at them, allergies, prescriptions."""
    plan = ctx.plan
    for problem in plan.problems:
        ctx.add(records.condition(ctx, problem))
    for visit in plan.visits:
        ctx.add(records.encounter(ctx, visit))
        for moment in visit.vital_times:
            vital_signs(ctx, visit, moment)
        for moment, panels in visit.draws:
            lab_draw(ctx, visit, moment, panels)
        for key in visit.procedures:
            records.procedure(ctx, visit, key)
        for vaccine, status in visit.vaccines:
            ctx.add(records.immunization(ctx, visit, vaccine, status))
    for resource in records.allergies(ctx):
        ctx.add(resource)
    for course in plan.courses:
        rx_id = ctx.new_id("MedicationRequest")
        ctx.add(records.medication_request(ctx, course, rx_id))
        if ("dispenses" in ctx.persona.features and course.status == "active" and not course.inpatient
                and not DRUGS[course.drug].as_needed):
            for resource in records.dispenses(ctx, course, rx_id):
                ctx.add(resource)


def _screening_and_care(ctx: PatientContext) -> None:
    """Social history, questionnaires, care coordination, notes and provenance."""
    social.social_history(ctx)
    if "phq9" in ctx.persona.features:
        social.phq9_series(ctx)
    if "sdoh" in ctx.persona.features:
        social.hunger_vital_sign(ctx, next(p.visit for p in ctx.plan.problems if p.key == "food-insecurity"))
    goals = care.goals(ctx)
    care.care_plan(ctx, care.care_team(ctx), goals)
    care.coverage(ctx)
    care.lab_order(ctx)
    care.food_referral(ctx)
    notes.documents(ctx)
    care.provenance(ctx)


def catalogue_entry(ctx: PatientContext) -> dict:
    plan, persona = ctx.plan, ctx.persona
    counts: dict[str, int] = {}
    for resource in ctx.resources:
        counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
    until = plan.death.date() if plan.death else ANCHOR
    return {
        "id": ctx.pid, "name": ctx.name, "birthDate": plan.birth.isoformat(),
        "age": age_in_years(plan.birth, until), "sex": persona.gender, "story": persona.story,
        "good_for": list(persona.good_for), "counts": dict(sorted(counts.items())),
    }


def generate_dataset(patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED,
                     progress: Callable[[int], object] | None = None) -> Dataset:
    """The first min(patients, 25) are the designed personas, the rest random. Each
    patient has its own random stream, so adding patients never changes earlier ones."""
    fake = Faker(FAKER_LOCALES)
    resources = shared_resources()
    catalogue, patient_ids, drugs_used = [], [], {}
    for index in range(1, patients + 1):
        persona = PERSONAS[index - 1] if index <= len(PERSONAS) else random_persona(stream(seed, index, "persona"))
        ctx = build_patient(index, persona, seed, fake)
        resources += ctx.resources
        catalogue.append(catalogue_entry(ctx))
        patient_ids.append(ctx.pid)
        drugs_used.update((course.drug, True) for course in ctx.plan.courses)
        if progress:
            progress(1)
    resources += [medication(key) for key in sorted(drugs_used)]
    resources.append(group(patient_ids))
    resources.sort(key=lambda r: (r["resourceType"], r["id"]))
    return Dataset(patients, seed, ANCHOR.isoformat(), resources, catalogue)
