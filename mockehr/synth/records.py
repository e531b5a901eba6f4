"""Encounters, conditions, medications, allergies, immunizations, procedures, devices."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from mockehr.synth import codes as c
from mockehr.synth.clinical import CONDITIONS
from mockehr.synth.context import PatientContext
from mockehr.synth.formulary import (
    ALLERGENS, DEVICES, DRUGS, NO_KNOWN_ALLERGY, PROCEDURES, REACTIONS, ROUTES, VACCINE_ROUTES, VACCINES,
)
from mockehr.synth.organisation import CLINIC, HOSPITAL, STAFF_BY_KEY, medication_id
from mockehr.synth.timeline import Course, Problem, Visit

ENCOUNTER_TYPES = {
    "checkup": ("185349003", "Encounter for check up (procedure)"),
    "well-child": ("410620009", "Well child visit (procedure)"),
    "follow-up": ("390906007", "Follow-up encounter (procedure)"),
    "problem": ("185345009", "Encounter for symptom (procedure)"),
    "prenatal": ("424619006", "Prenatal visit (regime/therapy)"),
    "procedure": ("308335008", "Patient encounter procedure (procedure)"),
    "emergency": ("50849002", "Emergency room admission (procedure)"),
    "inpatient": ("32485007", "Hospital admission (procedure)"),
    "birth": ("32485007", "Hospital admission (procedure)"),
}
CLASS_DISPLAY = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}
DISCHARGE = {"home": "Home", "exp": "Expired"}
CONDITION_CATEGORIES = {"problem-list-item": "Problem List Item", "encounter-diagnosis": "Encounter Diagnosis"}


def practitioner(key: str) -> dict:
    staff = STAFF_BY_KEY[key]
    return c.ref("Practitioner", staff.id, staff.display)


def encounter(ctx: PatientContext, visit: Visit) -> dict:
    snomed, display = ENCOUNTER_TYPES[visit.kind]
    period = {"start": c.stamp(visit.start)}
    if visit.end:
        period["end"] = c.stamp(visit.end)
    stay = visit.fhir_class == "IMP"
    hospitalization = None
    if stay:
        source = (("born", "Born in hospital") if visit.kind == "birth"
                  else ("mp", "Medical Practitioner/physician referral") if visit.planned
                  else ("emd", "From accident/emergency department"))
        hospitalization = {"admitSource": c.concept(c.coding(
            "http://terminology.hl7.org/CodeSystem/admit-source", *source))}
        if visit.discharge and visit.end:
            hospitalization["dischargeDisposition"] = c.concept(c.coding(
                "http://terminology.hl7.org/CodeSystem/discharge-disposition", visit.discharge,
                DISCHARGE[visit.discharge]))
    problems = [p for p in ctx.plan.problems if p.key in visit.reasons]
    return c.resource(
        "Encounter", visit.id, status="finished" if visit.end else "in-progress",
        **{"class": c.coding(c.ACT_CODE, visit.fhir_class, CLASS_DISPLAY[visit.fhir_class])},
        type=[c.concept(c.coding(c.SNOMED, snomed, display), text=display.split(" (")[0])],
        subject=ctx.patient,
        participant=[{"type": [c.concept(c.coding(c.PARTICIPATION, "ATND" if stay else "PPRF",
                                                  "attender" if stay else "primary performer"))],
                      "individual": practitioner(visit.practitioner)}],
        period=period,
        reasonCode=[c.concept(c.coding(c.SNOMED, p.definition.snomed, p.definition.snomed_display),
                              text=p.definition.name) for p in problems] or None,
        reasonReference=[ctx.condition(p.key) for p in problems if p.key in ctx.condition_ids] or None,
        hospitalization=hospitalization,
        location=[{"location": c.ref("Location", visit.location),
                   "status": "completed" if visit.end else "active"}],
        serviceProvider=c.ref("Organization", CLINIC if visit.location == "loc-clinic" else HOSPITAL),
    )


def condition(ctx: PatientContext, problem: Problem) -> dict:
    d = problem.definition
    category = [c.concept(c.coding(c.CONDITION_CATEGORY_SYSTEM, d.category, CONDITION_CATEGORIES[d.category]))
                if d.category in CONDITION_CATEGORIES
                else c.concept(c.coding(c.US_CORE_CONDITION_CATEGORY, d.category, "Health Concern"))]
    if d.sdoh:
        category.append(c.concept(c.coding(c.US_CORE_CATEGORY, "sdoh", "SDOH")))
    profile = ("us-core-condition-encounter-diagnosis" if d.category == "encounter-diagnosis"
               else "us-core-condition-problems-health-concerns")
    confirmed = problem.confirmed
    return c.resource(
        "Condition", ctx.condition_ids[problem.key], profile,
        clinicalStatus=c.concept(c.coding("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                          problem.clinical_status, problem.clinical_status.title()))
        if confirmed else None,
        verificationStatus=c.concept(c.coding("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                              problem.dx.verification, problem.dx.verification.title())),
        category=category,
        code=c.concept(c.coding(c.SNOMED, d.snomed, d.snomed_display), c.coding(c.ICD10CM, d.icd10, d.icd10_display),
                       text=d.name[0].upper() + d.name[1:]),
        subject=ctx.patient, encounter=ctx.encounter(problem.visit),
        onsetDateTime=problem.onset.isoformat(),
        abatementDateTime=problem.abatement.isoformat() if problem.abatement and confirmed else None,
        recordedDate=c.stamp(problem.visit.start),
        recorder=practitioner(problem.visit.practitioner),
    )


def _medication(ctx: PatientContext, drug_key: str) -> dict:
    drug = DRUGS[drug_key]
    if ctx.persona.medication_style == "reference":
        return {"medicationReference": c.ref("Medication", medication_id(drug_key), drug.display)}
    return {"medicationCodeableConcept": c.concept(c.coding(c.RXNORM, drug.rxnorm, drug.display), text=drug.display)}


def _dosage(drug_key: str) -> dict:
    drug = DRUGS[drug_key]
    frequency, period, unit = drug.timing
    value, shown, ucum = drug.dose
    return {
        "sequence": 1, "text": drug.sig,
        "timing": {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}},
        "asNeededBoolean": drug.as_needed,
        "route": c.concept(c.coding(c.SNOMED, *ROUTES[drug.route])),
        "doseAndRate": [{"doseQuantity": c.quantity(value, shown, ucum)}],
    }


def medication_request(ctx: PatientContext, course: Course, rx_id: str) -> dict:
    drug = DRUGS[course.drug]
    setting = "inpatient" if course.inpatient else "community"
    validity = {"start": max(course.start, course.visit.day).isoformat()}
    if course.stop:
        validity["end"] = course.stop.isoformat()
    quantity, shown, ucum = drug.quantity
    reason = ctx.condition(course.reason)
    return c.resource(
        "MedicationRequest", rx_id, status=course.status, intent="order",
        category=[c.concept(c.coding("http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                     setting, setting.title()))],
        reportedBoolean=False, **_medication(ctx, course.drug),
        subject=ctx.patient, encounter=ctx.encounter(course.visit),
        authoredOn=c.stamp(course.visit.start + timedelta(minutes=25)),
        requester=practitioner(course.visit.practitioner),
        reasonReference=[reason] if reason else None,
        dosageInstruction=[_dosage(course.drug)],
        dispenseRequest=None if course.inpatient else {
            "validityPeriod": validity, "numberOfRepeatsAllowed": drug.refills,
            "quantity": c.quantity(quantity, shown, ucum),
            "expectedSupplyDuration": c.quantity(drug.days_supply, "days", "d"),
        },
    )


def dispenses(ctx: PatientContext, course: Course, rx_id: str) -> list[dict]:
    """The last two pharmacy fills of a prescription still being taken."""
    drug = DRUGS[course.drug]
    fills = []
    last = c.ANCHOR - timedelta(days=ctx.rng.randint(3, max(drug.days_supply - 5, 4)))
    for fill in (last - timedelta(days=drug.days_supply), last):
        if fill >= course.visit.day:
            fills.append(fill)
    out = []
    quantity, shown, ucum = drug.quantity
    for fill in fills:
        first = (fill - course.visit.day).days < drug.days_supply
        handed = datetime.combine(fill, time(11)) + timedelta(minutes=ctx.rng.randint(0, 360))
        out.append(c.resource(
            "MedicationDispense", ctx.new_id("MedicationDispense"), status="completed",
            **_medication(ctx, course.drug), subject=ctx.patient,
            authorizingPrescription=[c.ref("MedicationRequest", rx_id)],
            type=c.concept(c.coding(c.ACT_CODE, "FF" if first else "RF", "First Fill" if first else "Refill")),
            quantity=c.quantity(quantity, shown, ucum), daysSupply=c.quantity(drug.days_supply, "days", "d"),
            whenPrepared=c.stamp(handed - timedelta(hours=2)), whenHandedOver=c.stamp(handed),
            dosageInstruction=[{"text": drug.sig}],
        ))
    return out


def allergies(ctx: PatientContext) -> list[dict]:
    visit = ctx.plan.visits[0]
    out = []
    for key in ctx.persona.allergies:
        common = dict(
            clinicalStatus=c.concept(c.coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                              "active", "Active")),
            verificationStatus=c.concept(c.coding(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed")),
            patient=ctx.patient, encounter=ctx.encounter(visit), recordedDate=c.stamp(visit.start),
            recorder=practitioner(visit.practitioner),
        )
        if key == "nka":
            code = c.concept(c.coding(c.SNOMED, *NO_KNOWN_ALLERGY), text="No known allergies")
            out.append(c.resource("AllergyIntolerance", ctx.new_id("AllergyIntolerance"), code=code, **common))
            continue
        a = ALLERGENS[key]
        system = c.RXNORM if a.system == "rxnorm" else c.SNOMED
        onset_years = ctx.rng.randint(1, max(1, int((visit.day - ctx.plan.birth).days / 365.25)))
        onset = max(ctx.plan.birth, visit.day - timedelta(days=365 * onset_years))
        reaction = REACTIONS[a.reaction]
        out.append(c.resource(
            "AllergyIntolerance", ctx.new_id("AllergyIntolerance"), type=a.kind, category=[a.category],
            criticality=a.criticality, code=c.concept(c.coding(system, a.code, a.display), text=a.display.split(
                " (")[0].capitalize()),
            onsetDateTime=onset.isoformat(),
            reaction=[{"manifestation": [c.concept(c.coding(c.SNOMED, *reaction), text=reaction[1].split(" (")[0])],
                       "severity": a.severity}],
            **common,
        ))
    return out


def immunization(ctx: PatientContext, visit: Visit, key: str, status: str) -> dict:
    vaccine = VACCINES[key]
    moment = visit.start + timedelta(minutes=35)
    baby = (visit.day - ctx.plan.birth).days < 3 * 365
    done = status == "completed"
    site = ("LT", "left thigh") if baby else ("LA", "left arm")
    return c.resource(
        "Immunization", ctx.new_id("Immunization"), status=status,
        statusReason=None if done else c.concept(c.coding(
            "http://terminology.hl7.org/CodeSystem/v3-ActReason", "PATOBJ", "patient objection")),
        vaccineCode=c.concept(c.coding(c.CVX, vaccine.cvx, vaccine.display), text=vaccine.display),
        patient=ctx.patient, encounter=ctx.encounter(visit), occurrenceDateTime=c.stamp(moment),
        primarySource=True, location=c.ref("Location", visit.location),
        lotNumber=f"{vaccine.cvx}{moment:%y%m}{ctx.rng.randint(10, 99)}" if done else None,
        site=c.concept(c.coding("http://terminology.hl7.org/CodeSystem/v3-ActSite", *site))
        if done and vaccine.route != "PO" else None,
        route=c.concept(c.coding("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", vaccine.route,
                                 VACCINE_ROUTES[vaccine.route])) if done else None,
        doseQuantity=c.quantity(vaccine.dose_ml, "mL") if done else None,
        performer=[{"function": c.concept(c.coding("http://terminology.hl7.org/CodeSystem/v2-0443", "AP",
                                                   "Administering Provider")),
                    "actor": practitioner(visit.practitioner)}] if done else None,
    )


def gs1_check_digit(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def device(ctx: PatientContext, key: str, implanted: date) -> dict:
    d = DEVICES[key]
    di = d.gtin + gs1_check_digit(d.gtin)
    made = implanted - timedelta(days=ctx.rng.randint(60, 300))
    expires = made.replace(year=made.year + d.years_valid)
    lot = f"L{made:%y%m}{ctx.rng.randint(100, 999)}"
    serial = f"{d.model.split()[0].replace('-', '')}{ctx.rng.randint(100000, 999999)}"
    return c.resource(
        "Device", ctx.new_id("Device"),
        udiCarrier=[{"deviceIdentifier": di, "issuer": "http://hl7.org/fhir/NamingSystem/gs1-di",
                     "jurisdiction": "http://hl7.org/fhir/NamingSystem/fda-udi",
                     "carrierHRF": f"(01){di}(11){made:%y%m%d}(17){expires:%y%m%d}(10){lot}(21){serial}",
                     "entryType": "barcode"}],
        status="active", distinctIdentifier=serial, manufacturer=d.manufacturer,
        manufactureDate=made.isoformat(), expirationDate=expires.isoformat(), lotNumber=lot, serialNumber=serial,
        deviceName=[{"name": d.model, "type": "model-name"}], modelNumber=d.model,
        type=c.concept(c.coding(c.SNOMED, d.snomed, d.display), text=d.display.split(",")[0].split(" (")[0]),
        patient=ctx.patient,
    )


def _procedure_reasons(visit: Visit, key: str) -> list[str]:
    """The problem a procedure is for: the one whose care calls for it, else what the
    procedure visit or stay was for; screening has none."""
    for reason in visit.reasons:
        if key in [p for p, _ in CONDITIONS[reason].procedures]:
            return [reason]
    return visit.reasons[:1] if visit.kind in ("procedure", "inpatient") else []


def procedure(ctx: PatientContext, visit: Visit, key: str) -> list[dict]:
    p = PROCEDURES[key]
    start = visit.start + timedelta(minutes=45 if visit.fhir_class == "AMB" else 180)
    end = start + timedelta(minutes=90 if p.setting == "hospital" else 20)
    made = []
    focal = None
    if p.device:
        implant = ctx.add(device(ctx, p.device, start.date()))
        made.append(implant)
        focal = [{"manipulated": c.ref("Device", implant["id"])}]
    reasons = [ctx.condition(r) for r in _procedure_reasons(visit, key) if r in ctx.condition_ids]
    made.append(ctx.add(c.resource(
        "Procedure", ctx.new_id("Procedure"), status="completed",
        code=c.concept(c.coding(c.SNOMED, p.snomed, p.display), text=p.display.split(" (")[0]),
        subject=ctx.patient, encounter=ctx.encounter(visit),
        performedPeriod={"start": c.stamp(start), "end": c.stamp(end)},
        performer=[{"actor": practitioner(visit.practitioner)}], location=c.ref("Location", visit.location),
        reasonReference=reasons[:1] or None, focalDevice=focal,
    )))
    return made
