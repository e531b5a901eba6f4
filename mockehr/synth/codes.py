"""Code systems, profile canonicals, the dataset clock and tiny JSON builders.

Everything here is pure and shared by the modules that build resources.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

# The dataset's fixed "today": every date is relative to it, never to the wall clock.
ANCHOR = date(2026, 6, 1)
LAST_UPDATED = f"{ANCHOR.isoformat()}T00:00:00Z"

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
NPI = "http://hl7.org/fhir/sid/us-npi"
SSN = "http://hl7.org/fhir/sid/us-ssn"
MRN = "http://hospital.example.org/mrn"
OMB_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"
BCP47 = "urn:ietf:bcp:47"
NUCC = "http://nucc.org/provider-taxonomy"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0360 = "http://terminology.hl7.org/CodeSystem/v2-0360"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
US_CORE_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
US_CORE_DOC_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
US_CORE_EXT = "http://hl7.org/fhir/us/core/StructureDefinition/"
US_CORE_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/"

# The US Core 7.0.0 profile each resource type is declared against by default;
# builders pass a more specific one (vital signs, lab results...) when it applies.
DEFAULT_PROFILE = {
    "AllergyIntolerance": "us-core-allergyintolerance",
    "CarePlan": "us-core-careplan",
    "CareTeam": "us-core-careteam",
    "Condition": "us-core-condition-problems-health-concerns",
    "Coverage": "us-core-coverage",
    "Device": "us-core-implantable-device",
    "DiagnosticReport": "us-core-diagnosticreport-lab",
    "DocumentReference": "us-core-documentreference",
    "Encounter": "us-core-encounter",
    "Goal": "us-core-goal",
    "Immunization": "us-core-immunization",
    "Location": "us-core-location",
    "Medication": "us-core-medication",
    "MedicationDispense": "us-core-medicationdispense",
    "MedicationRequest": "us-core-medicationrequest",
    "Observation": "us-core-simple-observation",
    "Organization": "us-core-organization",
    "Patient": "us-core-patient",
    "Practitioner": "us-core-practitioner",
    "PractitionerRole": "us-core-practitionerrole",
    "Procedure": "us-core-procedure",
    "Provenance": "us-core-provenance",
    "QuestionnaireResponse": "us-core-questionnaireresponse",
    "RelatedPerson": "us-core-relatedperson",
    "ServiceRequest": "us-core-servicerequest",
    "Specimen": "us-core-specimen",
}


def resource(resource_type: str, id_: str, profile: str | None = "", **fields) -> dict:
    """A resource dict with id and meta; profile "" means the type's default, None none."""
    if profile == "":
        profile = DEFAULT_PROFILE.get(resource_type)
    meta: dict = {"versionId": "1", "lastUpdated": LAST_UPDATED}
    if profile:
        meta["profile"] = [US_CORE_PROFILE + profile]
    body = {"resourceType": resource_type, "id": id_, "meta": meta}
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def coding(system: str, code: str, display: str | None = None) -> dict:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(*codings: dict, text: str | None = None) -> dict:
    out: dict = {"coding": list(codings)} if codings else {}
    if text:
        out["text"] = text
    return out


def ref(resource_type: str, id_: str, display: str | None = None) -> dict:
    out = {"reference": f"{resource_type}/{id_}"}
    if display:
        out["display"] = display
    return out


def quantity(value: float, unit: str, code: str | None = None) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def category(system: str, code: str, display: str) -> list[dict]:
    return [concept(coding(system, code, display))]


# --- the clock -----------------------------------------------------------

def years(n: float) -> int:
    """A span in whole days, for writing persona histories readably."""
    return int(round(n * 365.25))


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def eastern_offset(day: date) -> str:
    """US Eastern UTC offset on a day (the hospital's clock), by the 2007 DST rule."""
    dst = _nth_sunday(day.year, 3, 2) <= day < _nth_sunday(day.year, 11, 1)
    return "-04:00" if dst else "-05:00"


def stamp(moment: datetime) -> str:
    """A FHIR dateTime/instant with seconds and the local offset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + eastern_offset(moment.date())


def age_in_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit for digits (used for NPIs, prefixed 80840 per CMS)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def npi(base9: str) -> str:
    return base9 + luhn_check_digit("80840" + base9)
