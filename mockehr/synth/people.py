"""Who the patient is: names, contact details, identifiers, demographics, family.

Names and street names come from a seeded Faker; towns, race and language
codes from the tables below.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import date, timedelta

from faker import Faker

from mockehr.synth import codes as c
from mockehr.synth.context import PatientContext
from mockehr.synth.organisation import HOSPITAL, STAFF_BY_KEY
from mockehr.synth.personas import Persona

TOWNS = (("Worcester", "01605"), ("Worcester", "01602"), ("Worcester", "01609"), ("Shrewsbury", "01545"),
         ("Auburn", "01501"), ("Holden", "01520"), ("Leicester", "01524"), ("Grafton", "01519"),
         ("Millbury", "01527"), ("Westborough", "01581"), ("Northborough", "01532"), ("Spencer", "01562"))
RACES = {
    "white": (("2106-3", "White"),),
    "black": (("2054-5", "Black or African American"),),
    "asian": (("2028-9", "Asian"),),
    "aian": (("1002-5", "American Indian or Alaska Native"),),
    "nhpi": (("2076-8", "Native Hawaiian or Other Pacific Islander"),),
    "multiple": (("2106-3", "White"), ("2054-5", "Black or African American")),
}
ETHNICITIES = {"hispanic": ("2135-2", "Hispanic or Latino"), "not-hispanic": ("2186-5", "Not Hispanic or Latino")}
UNKNOWN = ("UNK", "Unknown")
LANGUAGES = {"en": "English", "es": "Spanish", "vi": "Vietnamese"}
NICKNAMES = (("Elizabeth", "Liz"), ("Katherine", "Kate"), ("Margaret", "Maggie"), ("Jennifer", "Jen"),
             ("Rebecca", "Becky"), ("Victoria", "Tori"), ("Patricia", "Trish"), ("Alexandra", "Alex"))
MARITAL = {"M": "Married", "S": "Never Married", "D": "Divorced", "W": "Widowed"}
NONBINARY_IDENTITY = ("33791000087105", "Identifies as nonbinary gender (finding)")


def birth_date(persona: Persona, rng: random.Random) -> date:
    jitter = rng.randint(0, 300) if persona.age_days >= 365 else 0
    return c.ANCHOR - timedelta(days=persona.age_days + jitter)


def mrn_for(index: int) -> str:
    """Eight digits, unique per patient index (7919231 is coprime with 9e7)."""
    return str(10_000_000 + index * 7_919_231 % 90_000_000)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower().replace(" ", "")


def _names(persona: Persona, fake: Faker, rng: random.Random, birth: date) -> list[dict]:
    locale = fake[persona.name_locale]
    female = persona.gender == "female" or persona.birth_sex == "F"
    first = locale.first_name_female() if female else locale.first_name_male()
    if persona.name_locale == "vi_VN":   # family name first; Thị is the usual women's middle name
        family, given = locale.last_name(), ["Thị" if female else locale.middle_name(), first]
        return [{"use": "official", "text": " ".join([family, *given]), "family": family, "given": given}]
    if persona.name_locale == "es_MX":
        family = f"{locale.last_name()} {locale.last_name()}"
        return [{"use": "official", "family": family, "given": [first]}]
    given = [first] + ([fake["en_US"].first_name_female() if female else fake["en_US"].first_name_male()]
                       if rng.random() < 0.5 else [])
    family = fake["en_US"].last_name()
    if "two-names" in persona.features:
        formal, nickname = rng.choice(NICKNAMES)
        given = [formal] + given[1:]
        maiden = fake["en_US"].last_name()
        married = birth + timedelta(days=365 * rng.randint(24, 32))
        return [{"use": "official", "family": family, "given": given},
                {"use": "maiden", "family": maiden, "given": given, "period": {"end": married.isoformat()}},
                {"use": "nickname", "given": [nickname]}]
    if persona.gender == "other":
        return [{"use": "official", "family": family, "given": given},
                {"use": "usual", "family": family, "given": [fake["en_US"].first_name_nonbinary()]}]
    return [{"use": "official", "family": family, "given": given}]


def display_name(names: list[dict]) -> str:
    name = next((n for n in names if n["use"] == "usual"), names[0])
    return name.get("text") or " ".join([*name["given"], name["family"]])


def _phone(rng: random.Random) -> str:
    return f"{rng.choice(('508', '774'))}-555-{rng.randint(100, 199):04d}"


def _address(fake: Faker, rng: random.Random) -> dict:
    city, zip_code = rng.choice(TOWNS)
    line = [f"{rng.randint(2, 240)} {fake['en_US'].street_name()}"]
    if rng.random() < 0.25:
        line.append(f"Apt {rng.randint(1, 40)}")
    return {"use": "home", "type": "physical", "line": line, "city": city, "district": "Worcester County",
            "state": "MA", "postalCode": zip_code, "country": "US"}


def _identifier(type_code: str, type_display: str, system: str, value: str, **extra) -> dict:
    return {**extra, "type": c.concept(c.coding(c.V2_0203, type_code, type_display), text=type_display),
            "system": system, "value": value}


def _identifiers(persona: Persona, index: int, adult: bool, rng: random.Random) -> list[dict]:
    mrn = _identifier("MR", "Medical record number", c.MRN, mrn_for(index), use="usual",
                      assigner=c.ref("Organization", HOSPITAL, "Riverside General Hospital"))
    out = [mrn]
    many = "many-identifiers" in persona.features
    if many:
        out.append(_identifier("MR", "Medical record number", c.MRN, f"{rng.randint(100000, 999999)}",
                               use="old", period={"end": "2019-03-31"}))
    if many or (adult and "minimal" not in persona.features and rng.random() < 0.6):
        out.append(_identifier("SS", "Social Security number", c.SSN,
                               f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}", use="official"))
    if many:
        out.append(_identifier("DL", "Driver's license number", "urn:oid:2.16.840.1.113883.4.3.25",
                               f"S{rng.randint(10_000_000, 99_999_999)}", use="official"))
    return out


def _race(persona: Persona) -> dict:
    url = c.US_CORE_EXT + "us-core-race"
    if persona.race in ("unknown", "declined"):
        code, display = UNKNOWN if persona.race == "unknown" else ("ASKU", "Asked but no answer")
        parts = [{"url": "ombCategory", "valueCoding": c.coding(c.NULL_FLAVOR, code, display)}]
        text = display
    else:
        categories = RACES[persona.race]
        parts = [{"url": "ombCategory", "valueCoding": c.coding(c.OMB_RACE_ETHNICITY, *cat)} for cat in categories]
        if persona.race_detail:
            parts.append({"url": "detailed", "valueCoding": c.coding(c.OMB_RACE_ETHNICITY, *persona.race_detail)})
        text = " and ".join(d for _, d in categories) if not persona.race_detail else persona.race_detail[1]
    return {"url": url, "extension": parts + [{"url": "text", "valueString": text}]}


def _ethnicity(persona: Persona) -> dict:
    url = c.US_CORE_EXT + "us-core-ethnicity"
    if persona.ethnicity == "unknown":
        category, text = c.coding(c.NULL_FLAVOR, *UNKNOWN), "Unknown"
    else:
        code, text = ETHNICITIES[persona.ethnicity]
        category = c.coding(c.OMB_RACE_ETHNICITY, code, text)
    parts = [{"url": "ombCategory", "valueCoding": category}]
    if persona.ethnicity_detail:
        parts.append({"url": "detailed", "valueCoding": c.coding(c.OMB_RACE_ETHNICITY, *persona.ethnicity_detail)})
        text = persona.ethnicity_detail[1]
    return {"url": url, "extension": parts + [{"url": "text", "valueString": text}]}


def _marital(age_years: float, rng: random.Random, married: bool) -> dict | None:
    if age_years < 18:
        return None
    code = "M" if married else rng.choice(("S", "S", "M", "M", "D") if age_years < 70 else ("M", "W", "W", "D"))
    return c.concept(c.coding("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", code, MARITAL[code]))


def patient(ctx: PatientContext, index: int, fake: Faker, rng: random.Random) -> dict:
    persona, plan = ctx.persona, ctx.plan
    age = (c.ANCHOR - plan.birth).days / 365.25
    adult = age >= 18
    names = _names(persona, fake, rng, plan.birth)
    ctx.name, ctx.mrn = display_name(names), mrn_for(index)
    minimal = "minimal" in persona.features
    telecom = [{"system": "phone", "value": _phone(rng), "use": "home"}]
    if adult and not minimal:
        telecom.append({"system": "phone", "value": _phone(rng), "use": "mobile"})
        if rng.random() < 0.7 or "many-identifiers" in persona.features:
            official = names[0]
            handle = _ascii(".".join([official.get("given", [""])[0], official.get("family", "")]))
            telecom.append({"system": "email", "value": f"{handle}@example.com", "use": "home"})
    if "many-identifiers" in persona.features:
        telecom.append({"system": "phone", "value": _phone(rng), "use": "work"})
    address = [_address(fake, rng)]
    if "two-names" in persona.features:
        old = _address(fake, rng)
        address.append({**old, "use": "old", "period": {"end": (c.ANCHOR - timedelta(days=800)).isoformat()}})
    extensions = [_race(persona), _ethnicity(persona)]
    birth_sex = persona.birth_sex or {"female": "F", "male": "M"}.get(persona.gender, "UNK")
    extensions.append({"url": c.US_CORE_EXT + "us-core-birthsex", "valueCode": birth_sex})
    if "gender-identity" in persona.features:
        extensions.append({"url": c.US_CORE_EXT + "us-core-genderIdentity",
                           "valueCodeableConcept": c.concept(c.coding(c.SNOMED, *NONBINARY_IDENTITY))})
    if persona.interpreter:
        extensions.append({"url": "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired",
                           "valueBoolean": True})
    language = LANGUAGES[persona.language]
    pcp = STAFF_BY_KEY[plan.pcp]
    return ctx.add(c.resource(
        "Patient", ctx.pid, extension=extensions,
        identifier=_identifiers(persona, index, adult, rng), active=True, name=names, telecom=telecom,
        gender=persona.gender, birthDate=plan.birth.isoformat(),
        deceasedDateTime=c.stamp(plan.death) if plan.death else None,
        address=address, maritalStatus=None if minimal else _marital(age, rng, "two-names" in persona.features),
        contact=_contacts(ctx, fake, age, rng) if "contact" in persona.features else None,
        communication=[{"language": c.concept(c.coding(c.BCP47, persona.language, language), text=language),
                        "preferred": True}],
        generalPractitioner=None if minimal else [c.ref("Practitioner", pcp.id, pcp.display)],
        managingOrganization=c.ref("Organization", HOSPITAL, "Riverside General Hospital"),
    ))


def _contacts(ctx: PatientContext, fake: Faker, age: float, rng: random.Random) -> list[dict]:
    relation = ("DAU", "daughter") if age >= 70 else ("SPS", "spouse")
    first = fake["en_US"].first_name_female() if ctx.persona.gender == "male" or age >= 70 \
        else fake["en_US"].first_name_male()
    return [{"relationship": [c.concept(c.coding("http://terminology.hl7.org/CodeSystem/v2-0131", "C",
                                                 "Emergency Contact")),
                              c.concept(c.coding(c.ROLE_CODE, *relation))],
             "name": {"family": fake["en_US"].last_name() if age >= 70 else ctx.name.split()[-1], "given": [first]},
             "telecom": [{"system": "phone", "value": _phone(rng), "use": "mobile"}]}]


def related_persons(ctx: PatientContext, fake: Faker, rng: random.Random) -> list[dict]:
    """A child's parents, sharing the family name and home address."""
    if "parents" not in ctx.persona.features:
        return []
    patient_resource = ctx.resources[0]
    family = patient_resource["name"][0]["family"]
    out = []
    for code, display, gender in (("MTH", "mother", "female"), ("FTH", "father", "male")):
        first = fake["en_US"].first_name_female() if gender == "female" else fake["en_US"].first_name_male()
        rid = ctx.new_id("RelatedPerson")
        ctx.related_ids.append(rid)
        parent_birth = ctx.plan.birth - timedelta(days=365 * rng.randint(24, 38) + rng.randint(0, 300))
        out.append(ctx.add(c.resource(
            "RelatedPerson", rid, active=True, patient=ctx.patient,
            relationship=[c.concept(c.coding(c.ROLE_CODE, code, display))],
            name=[{"use": "official", "family": family, "given": [first]}],
            telecom=[{"system": "phone", "value": _phone(rng), "use": "mobile"}],
            gender=gender, birthDate=parent_birth.isoformat(), address=patient_resource["address"][:1],
        )))
    return out
