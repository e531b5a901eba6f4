"""Patients and their records as people read them: one line per resource. Pure.

`patient_row` is a patient in the list, `matches` its search, `summary` one
resource as {text, date, value, status}, `group_record` a record by type.
"""

from __future__ import annotations

import unicodedata
from datetime import date

from mockehr.pages import age_text

# Clinical reading order; anything else follows alphabetically.
TYPE_ORDER = ("Condition", "AllergyIntolerance", "MedicationRequest", "MedicationDispense", "Observation",
              "DiagnosticReport", "Encounter", "Procedure", "Immunization", "CarePlan", "Goal", "CareTeam",
              "ServiceRequest", "DocumentReference", "QuestionnaireResponse", "Specimen", "Device", "Coverage",
              "RelatedPerson", "Provenance")
MRN_CODE = "MR"

_DATE_PATHS = ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "occurrenceDateTime",
               "performedDateTime", "performedPeriod.start", "onsetDateTime", "recordedDate", "authoredOn",
               "whenHandedOver", "issued", "period.start", "date", "authored", "recorded", "created",
               "startDate", "receivedTime", "collection.collectedDateTime", "birthDate")
_TEXT_PATHS = ("code", "vaccineCode", "medicationCodeableConcept", "medicationReference", "type", "title",
               "description", "name", "deviceName", "relationship", "class", "category")


def fold(text: str) -> str:
    """Lower case without accents: how the search compares."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def human_name(person: dict) -> str:
    names = person.get("name") or [{}]
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if name.get("text"):
        return name["text"]
    return " ".join([*name.get("given", []), name.get("family", "")]).strip() or person.get("id", "?")


def mrn(patient: dict) -> str:
    for identifier in patient.get("identifier", []):
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding", [])}
        if MRN_CODE in codes:
            return identifier.get("value", "")
    return ""


def patient_row(patient: dict, today: date) -> dict:
    died = patient.get("deceasedDateTime")
    until = date.fromisoformat(died[:10]) if died and len(died) >= 10 else today
    return {"id": patient["id"], "name": human_name(patient), "gender": patient.get("gender", ""),
            "birthDate": patient.get("birthDate", ""), "age": age_text(patient.get("birthDate"), until),
            "mrn": mrn(patient), "deceased": bool(died or patient.get("deceasedBoolean"))}


def matches(row: dict, query: str, gender: str = "") -> bool:
    """Every word of `query` is in the name, id, birth date or MRN; and the gender, when one is asked."""
    if gender and row["gender"] != gender:
        return False
    haystack = fold(" ".join((row["name"], row["id"], row["birthDate"], row["mrn"])))
    return all(word in haystack for word in fold(query).split())


# -- one resource, one line ---------------------------------------------------------
def _get(resource: dict, path: str):
    value = resource
    for part in path.split("."):
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def concept(value) -> str:
    """Text of a CodeableConcept, Coding, Reference, list of them, or a plain value."""
    if isinstance(value, list):
        return ", ".join(t for t in (concept(v) for v in value[:3]) if t)
    if isinstance(value, dict):
        if value.get("text"):
            return value["text"]
        if value.get("coding"):
            coding = value["coding"][0]
            return coding.get("display") or coding.get("code", "")
        if value.get("display") or value.get("code"):
            return value.get("display") or value.get("code")
        return value.get("reference", "")
    return "" if value is None else str(value)


def number(value: dict) -> str:
    amount = value.get("value")
    if amount is None:
        return ""
    return value.get("comparator", "") + (f"{amount:g}" if isinstance(amount, float) else str(amount))


def quantity(value: dict) -> str:
    unit = value.get("unit") or value.get("code") or ""
    return f"{number(value)} {unit}".strip() if number(value) else ""


def observation_value(resource: dict) -> str:
    for key in ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger"):
        if key in resource:
            value = resource[key]
            return quantity(value) if key == "valueQuantity" else concept(value)
    parts = resource.get("component") or []
    quantities = [c.get("valueQuantity") for c in parts if c.get("valueQuantity")]
    if len(quantities) == 2 and quantities[0].get("unit") == quantities[1].get("unit"):  # blood pressure
        return f"{number(quantities[0])}/{number(quantities[1])} {quantities[0].get('unit', '')}".strip()
    return "; ".join(f"{concept(c.get('code'))} {quantity(c.get('valueQuantity') or {})}".strip() for c in parts)


def _value(resource: dict) -> str:
    rtype = resource.get("resourceType")
    if rtype == "Observation":
        return observation_value(resource)
    if rtype in ("MedicationRequest", "MedicationDispense"):
        return (_get(resource, "dosageInstruction.text") or "") if resource.get("dosageInstruction") else ""
    if rtype == "AllergyIntolerance":
        reaction = concept(_get(resource, "reaction.manifestation"))
        critical = resource.get("criticality")
        return ", ".join(t for t in (reaction, f"criticality {critical}" if critical else "") if t)
    if rtype == "DiagnosticReport":
        results = len(resource.get("result", []))
        return resource.get("conclusion") or (f"{results} result{'s' * (results != 1)}" if results else "")
    if rtype == "Immunization":
        return quantity(resource.get("doseQuantity") or {})
    if rtype == "Encounter":
        return concept(resource.get("reasonCode"))
    if rtype == "Goal":
        target = (resource.get("target") or [{}])[0]
        return quantity(target.get("detailQuantity") or {}) or concept(target.get("detailCodeableConcept"))
    return ""


def _status(resource: dict) -> str:
    for key in ("clinicalStatus", "lifecycleStatus", "status", "verificationStatus"):
        value = resource.get(key)
        if value:
            return concept(value)
    return ""


def summary(resource: dict) -> dict:
    """{text, date, value, status}: what a clinician would read off the resource."""
    text = ""
    for path in _TEXT_PATHS:
        text = concept(_get(resource, path) if "." in path else resource.get(path))
        if text:
            break
    when = next((v for v in (_get(resource, p) for p in _DATE_PATHS) if isinstance(v, str) and v), "")
    return {"text": text or resource.get("resourceType", ""), "date": when[:16].replace("T", " "),
            "sort": when, "value": _value(resource), "status": _status(resource)}


def group_record(resources: list[dict]) -> list[dict]:
    """[{type, count, rows}] in clinical order; rows newest first, each {id, ...summary}."""
    groups: dict[str, list[dict]] = {}
    for resource in resources:
        groups.setdefault(resource["resourceType"], []).append({"id": resource["id"], **summary(resource)})
    rank = {t: i for i, t in enumerate(TYPE_ORDER)}
    ordered = sorted(groups, key=lambda t: (rank.get(t, len(rank)), t))
    out = []
    for rtype in ordered:
        rows = sorted(groups[rtype], key=lambda r: (r["sort"], r["id"]), reverse=True)
        out.append({"type": rtype, "count": len(rows), "rows": rows})
    return out
