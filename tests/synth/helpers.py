"""Small helpers the synth tests share."""

from __future__ import annotations


def references(node) -> list[str]:
    """Every Reference.reference string anywhere inside a resource."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.append(node["reference"])
        for value in node.values():
            found += references(value)
    elif isinstance(node, list):
        for item in node:
            found += references(item)
    return found


def patient_of(resource: dict) -> str | None:
    """The Patient a resource is about, by its subject/patient/beneficiary reference."""
    if resource["resourceType"] == "Patient":
        return resource["id"]
    for key in ("subject", "patient", "beneficiary"):
        ref = resource.get(key, {}).get("reference", "") if isinstance(resource.get(key), dict) else ""
        if ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None
