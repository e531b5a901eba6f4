"""The care setting every patient shares: organizations, locations, staff, drugs, the Group.

Fixed, whatever the seed: apps log in as these practitioners, and docs and
tests can name them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mockehr.synth import codes as c
from mockehr.synth.formulary import DRUGS

HOSPITAL, CLINIC = "org-hospital", "org-clinic"
PAYERS = {"commercial": "org-payer", "medicare": "org-medicare", "medicaid": "org-medicaid"}
GROUP_ID = "all-patients"

_TOWN = {"city": "Worcester", "state": "MA", "postalCode": "01605", "country": "US"}


def _address(line: str, **overrides) -> dict:
    return {"use": "work", "line": [line], **_TOWN, **overrides}


def _phone(number: str) -> dict:
    return {"system": "phone", "value": number, "use": "work"}


@dataclass(frozen=True)
class Org:
    id: str
    name: str
    kind: str                  # organization-type code: prov | pay | govt
    npi_base: str | None
    line: str
    phone: str
    part_of: str | None = None


ORGS = (
    Org(HOSPITAL, "Riverside General Hospital", "prov", "184390212", "100 Riverside Drive", "508-555-0100"),
    Org(CLINIC, "Riverside Family Health Center", "prov", "184390256", "25 Elm Street", "508-555-0140", HOSPITAL),
    Org("org-payer", "Northwind Health Plan", "pay", None, "1 Harbor Plaza", "800-555-0199"),
    Org("org-medicare", "Medicare (Centers for Medicare & Medicaid Services)", "govt", None,
        "7500 Security Boulevard", "800-555-0163"),
    Org("org-medicaid", "MassHealth", "govt", None, "1 Ashburton Place", "800-555-0172"),
)
ORG_TYPES = {"prov": "Healthcare Provider", "pay": "Payer", "govt": "Government"}


@dataclass(frozen=True)
class Place:
    id: str
    name: str
    role_code: str       # v3-RoleCode
    role_display: str
    org: str


LOCATIONS = (
    Place("loc-clinic", "Riverside Family Health Center", "OF", "Outpatient facility", CLINIC),
    Place("loc-ed", "Riverside General Emergency Department", "ER", "Emergency room", HOSPITAL),
    Place("loc-ward", "Riverside General Medical Ward 4 East", "HU", "Hospital unit", HOSPITAL),
    Place("loc-maternity", "Riverside General Maternity Unit", "HU", "Hospital unit", HOSPITAL),
    Place("loc-procedures", "Riverside General Procedure Center", "HU", "Hospital unit", HOSPITAL),
)


@dataclass(frozen=True)
class Staff:
    key: str
    given: str
    family: str
    gender: str
    degree: str                  # v2-0360 code
    degree_display: str
    role: str                    # practitioner-role code: doctor | nurse
    specialty: tuple[str, str]   # NUCC taxonomy
    team_role: tuple[str, str]   # SNOMED occupation, for CareTeam
    npi_base: str
    org: str
    location: str

    @property
    def id(self) -> str:
        return f"pr-{self.key}"

    @property
    def npi(self) -> str:
        return c.npi(self.npi_base)

    @property
    def display(self) -> str:
        title = "Dr. " if self.degree in ("MD", "DO") else ""
        return f"{title}{self.given} {self.family}, {self.degree}"


STAFF = (
    Staff("okafor", "Chidi", "Okafor", "male", "MD", "Doctor of Medicine", "doctor",
          ("207R00000X", "Internal Medicine Physician"), ("446050000", "Primary care physician"),
          "129384756", CLINIC, "loc-clinic"),
    Staff("morgan", "Elena", "Morgan", "female", "MD", "Doctor of Medicine", "doctor",
          ("207Q00000X", "Family Medicine Physician"), ("446050000", "Primary care physician"),
          "129384801", CLINIC, "loc-clinic"),
    Staff("johnson", "Tasha", "Johnson", "female", "NP", "Nurse practitioner", "nurse",
          ("363LF0000X", "Family Nurse Practitioner"), ("224571005", "Nurse practitioner"),
          "129384912", CLINIC, "loc-clinic"),
    Staff("lindqvist", "Sara", "Lindqvist", "female", "MD", "Doctor of Medicine", "doctor",
          ("208000000X", "Pediatrics Physician"), ("82296001", "Pediatrician"),
          "129385024", CLINIC, "loc-clinic"),
    Staff("patel", "Anjali", "Patel", "female", "MD", "Doctor of Medicine", "doctor",
          ("207V00000X", "Obstetrics & Gynecology Physician"), ("11935004", "Obstetrician"),
          "129385135", CLINIC, "loc-clinic"),
    Staff("reyes", "Mateo", "Reyes", "male", "MD", "Doctor of Medicine", "doctor",
          ("207RC0000X", "Cardiovascular Disease Physician"), ("17561000", "Cardiologist"),
          "129385246", HOSPITAL, "loc-procedures"),
    Staff("brennan", "Owen", "Brennan", "male", "DO", "Doctor of Osteopathy", "doctor",
          ("207P00000X", "Emergency Medicine Physician"), ("309343006", "Physician"),
          "129385357", HOSPITAL, "loc-ed"),
    Staff("nguyen", "Linh", "Nguyen", "female", "MD", "Doctor of Medicine", "doctor",
          ("208M00000X", "Hospitalist"), ("309343006", "Physician"),
          "129385468", HOSPITAL, "loc-ward"),
    Staff("kowalski", "Greg", "Kowalski", "male", "RN", "Registered Nurse", "nurse",
          ("163W00000X", "Registered Nurse"), ("224535009", "Registered nurse"),
          "129385579", CLINIC, "loc-clinic"),
)
STAFF_BY_KEY = {s.key: s for s in STAFF}
PRACTITIONER_ROLE = {"doctor": "Doctor", "nurse": "Nurse"}


def organization(org: Org) -> dict:
    identifiers = [{"system": c.NPI, "value": c.npi(org.npi_base)}] if org.npi_base else None
    return c.resource(
        "Organization", org.id,
        identifier=identifiers, active=True,
        type=[c.concept(c.coding("http://terminology.hl7.org/CodeSystem/organization-type", org.kind,
                                 ORG_TYPES[org.kind]))],
        name=org.name, telecom=[_phone(org.phone)], address=[_address(org.line)],
        partOf=c.ref("Organization", org.part_of) if org.part_of else None,
    )


def location(place: Place) -> dict:
    org = next(o for o in ORGS if o.id == place.org)
    return c.resource(
        "Location", place.id, status="active", name=place.name, mode="instance",
        type=[c.concept(c.coding(c.ROLE_CODE, place.role_code, place.role_display))],
        telecom=[_phone(org.phone)], address=_address(org.line),
        managingOrganization=c.ref("Organization", place.org, org.name),
    )


def practitioner(s: Staff) -> dict:
    return c.resource(
        "Practitioner", s.id,
        identifier=[{"system": c.NPI, "value": s.npi}], active=True,
        name=[{"use": "official", "family": s.family, "given": [s.given],
               **({"prefix": ["Dr."]} if s.degree in ("MD", "DO") else {}), "suffix": [s.degree]}],
        telecom=[_phone("508-555-01" + s.npi_base[-2:]),
                 {"system": "email", "value": f"{s.given.lower()}.{s.family.lower()}@riverside.example.org",
                  "use": "work"}],
        address=[_address(next(o for o in ORGS if o.id == s.org).line)],
        gender=s.gender,
        qualification=[{"code": c.concept(c.coding(c.V2_0360, s.degree, s.degree_display),
                                          text=s.degree_display),
                        "issuer": {"display": "Massachusetts Board of Registration in Medicine"
                                   if s.role == "doctor" else "Massachusetts Board of Registration in Nursing"}}],
    )


def practitioner_role(s: Staff) -> dict:
    return c.resource(
        "PractitionerRole", f"role-{s.key}", active=True,
        practitioner=c.ref("Practitioner", s.id, s.display),
        organization=c.ref("Organization", s.org),
        code=[c.concept(c.coding("http://terminology.hl7.org/CodeSystem/practitioner-role", s.role,
                                 PRACTITIONER_ROLE[s.role]))],
        specialty=[c.concept(c.coding(c.NUCC, *s.specialty))],
        location=[c.ref("Location", s.location)],
        telecom=[_phone("508-555-01" + s.npi_base[-2:])],
    )


def medication(key: str) -> dict:
    drug = DRUGS[key]
    return c.resource("Medication", medication_id(key), status="active",
                      code=c.concept(c.coding(c.RXNORM, drug.rxnorm, drug.display), text=drug.display))


def medication_id(drug_key: str) -> str:
    return f"med-{drug_key}"


def group(patient_ids: list[str]) -> dict:
    return c.resource(
        "Group", GROUP_ID, profile=None, active=True, type="person", actual=True,
        name="All synthetic patients", quantity=len(patient_ids),
        managingEntity=c.ref("Organization", HOSPITAL),
        member=[{"entity": c.ref("Patient", pid)} for pid in patient_ids] or None,
    )


def shared_resources() -> list[dict]:
    """Everything but the drugs and the Group, which depend on the patients."""
    return ([organization(o) for o in ORGS] + [location(p) for p in LOCATIONS]
            + [practitioner(s) for s in STAFF] + [practitioner_role(s) for s in STAFF])
