"""What the authorization server may look up in the FHIR data: people and
encounters. Built on the store so that auth never imports fhir."""

from __future__ import annotations

from mockehr.auth.authorize import Directory
from mockehr.store.store import Store


def build_directory(store: Store) -> Directory:
    def exists(rtype: str, rid: str) -> bool:
        version = store.read(rtype, rid)
        return version is not None and not version.deleted

    def first_id(rtype: str) -> str | None:
        ids = sorted(store.index(rtype).ids)
        return ids[0] if ids else None

    def latest_encounter(patient_id: str) -> str | None:
        index = store.index("Encounter")
        ids = index.lookup("patient", f"Patient/{patient_id}")
        dated = [(max((lo for lo, _ in index.values(rid, "date")), default=float("-inf")), rid) for rid in ids]
        return max(dated)[1] if dated else None

    return Directory(exists=exists, first_patient=lambda: first_id("Patient"),
                     default_practitioner=lambda: first_id("Practitioner"), latest_encounter=latest_encounter)


NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"


def user_claims(store: Store, user: str) -> dict:
    """OIDC profile claims of a Practitioner/Patient/RelatedPerson from its FHIR resource; for a
    Practitioner also `npi` (its us-npi identifier), `roles` (the codes of its active PractitionerRoles)
    and `organization` ({"reference", "display"} of the first active role's Organization)."""
    rtype, _, rid = user.partition("/")
    version = store.read(rtype, rid)
    if version is None or version.deleted:
        return {}
    resource = version.resource
    names = resource.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = " ".join(name.get("given", []))
    family = name.get("family", "")
    claims = {"name": name.get("text") or " ".join(p for p in (given, family) if p)}
    if given:
        claims["given_name"] = given
    if family:
        claims["family_name"] = family
    email = next((t.get("value") for t in resource.get("telecom", []) if t.get("system") == "email"), None)
    if email:
        claims["email"] = email
    if rtype == "Practitioner":
        claims.update(practitioner_claims(store, resource))
    return {k: v for k, v in claims.items() if v}


def practitioner_claims(store: Store, practitioner: dict) -> dict:
    """npi, roles and organization of a practitioner, from the Practitioner and its PractitionerRoles."""
    claims: dict = {}
    npi = next((i.get("value") for i in practitioner.get("identifier", []) if i.get("system") == NPI_SYSTEM), None)
    if npi:
        claims["npi"] = npi
    ids = sorted(store.index("PractitionerRole").lookup("practitioner", f"Practitioner/{practitioner['id']}"))
    roles = [v.resource for v in (store.read("PractitionerRole", rid) for rid in ids)
             if v is not None and v.resource is not None and v.resource.get("active", True) is not False]
    codes = []
    for role in roles:
        for concept in role.get("code", []):
            coding = next((c for c in concept.get("coding", []) if c.get("system") == ROLE_SYSTEM),
                          (concept.get("coding") or [{}])[0])
            code = coding.get("code") or concept.get("text")
            if code and code not in codes:
                codes.append(code)
    if codes:
        claims["roles"] = codes
    org_ref = next((r["organization"]["reference"] for r in roles
                    if (r.get("organization") or {}).get("reference", "").startswith("Organization/")), None)
    if org_ref:
        org = store.read("Organization", org_ref.split("/", 1)[1])
        name = org.resource.get("name") if org is not None and org.resource is not None else None
        claims["organization"] = {"reference": org_ref, **({"display": name} if name else {})}
    return claims


def patient_of_user(store: Store, user: str) -> str | None:
    """The patient a Patient or RelatedPerson user may see under user/ scopes."""
    rtype, _, rid = user.partition("/")
    if rtype == "Patient":
        return rid
    if rtype == "RelatedPerson":
        version = store.read(rtype, rid)
        if version is not None and not version.deleted:
            ref = (version.resource.get("patient") or {}).get("reference", "")
            if ref.startswith("Patient/"):
                return ref.split("/", 1)[1]
    return None


def encounters_of(store: Store, patient_id: str | None) -> list[dict]:
    """The live Encounter resources of a patient (for the encounter picker and the launcher)."""
    if not patient_id:
        return []
    ids = store.index("Encounter").lookup("patient", f"Patient/{patient_id}")
    return [v.resource for v in (store.read("Encounter", rid) for rid in ids) if v and v.resource]
