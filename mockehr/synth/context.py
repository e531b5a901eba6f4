"""The state one patient's builders share: ids, the plan, the seeded randomness."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mockehr.synth import codes as c
from mockehr.synth.personas import Persona
from mockehr.synth.physiology import Body
from mockehr.synth.timeline import Plan, Visit

# Short, stable id parts: <patient id>-<abbreviation>-<counter>.
ID_ABBREVIATIONS = {
    "AllergyIntolerance": "alg", "CarePlan": "cp", "CareTeam": "ct", "Condition": "cond", "Coverage": "cov",
    "Device": "dev", "DiagnosticReport": "dr", "DocumentReference": "doc", "Encounter": "enc", "Goal": "goal",
    "Immunization": "imm", "MedicationDispense": "disp", "MedicationRequest": "rx", "Observation": "obs",
    "Procedure": "proc", "Provenance": "prov", "QuestionnaireResponse": "qr", "RelatedPerson": "rp",
    "ServiceRequest": "sr", "Specimen": "spec",
}


@dataclass
class PatientContext:
    pid: str
    persona: Persona
    plan: Plan
    body: Body
    rng: random.Random
    name: str = ""
    mrn: str = ""
    resources: list[dict] = field(default_factory=list)
    condition_ids: dict[str, str] = field(default_factory=dict)   # problem key -> Condition id
    related_ids: list[str] = field(default_factory=list)
    _counters: dict[str, int] = field(default_factory=dict)

    def new_id(self, resource_type: str) -> str:
        n = self._counters.get(resource_type, 0) + 1
        self._counters[resource_type] = n
        return f"{self.pid}-{ID_ABBREVIATIONS[resource_type]}-{n:03d}"

    def add(self, resource: dict) -> dict:
        self.resources.append(resource)
        return resource

    @property
    def patient(self) -> dict:
        return c.ref("Patient", self.pid)

    def encounter(self, visit: Visit) -> dict:
        return c.ref("Encounter", visit.id)

    def condition(self, key: str | None) -> dict | None:
        cid = self.condition_ids.get(key) if key else None
        return c.ref("Condition", cid) if cid else None

    def observations_of(self, visit: Visit) -> list[dict]:
        ref = f"Encounter/{visit.id}"
        return [r for r in self.resources
                if r["resourceType"] == "Observation" and r.get("encounter", {}).get("reference") == ref]
