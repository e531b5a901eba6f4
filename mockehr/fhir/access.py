"""Applying an authorization decision to FHIR data: compartments and granular filters.

The auth side answers "may this token do this, and limited how?" (a Decision
with an optional patient compartment and search filters); this module turns
that limit into sets of visible ids and per-resource checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from mockehr.fhir import search
from mockehr.fhir.extract import extract
from mockehr.fhir.outcome import FHIRError
from mockehr.fhir.searchparams import PATIENT_COMPARTMENT
from mockehr.store.index import TypeIndex
from mockehr.store.store import Store

LETTERS = {"read": "r", "vread": "r", "history": "r", "search": "s", "create": "c", "update": "u", "delete": "d"}


def forbidden(message: str, missing_scope: str = "") -> FHIRError:
    headers = {}
    if missing_scope:
        headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{missing_scope}"'
    return FHIRError(403, "forbidden", message, headers=headers)


@dataclass
class RequestAccess:
    """What the caller of one FHIR request may see and do."""

    store: Store
    decide: Callable  # (letter, resource type) -> Decision
    own_resource: str | None = None  # "Practitioner/ID" of a token with the fhirUser scope
    # Per request (one RequestAccess lives as long as one request): decisions, and the ids they let
    # through, worked out once; $everything and _include ask the same questions for every resource.
    _decisions: dict = field(default_factory=dict, repr=False)
    _visible: dict = field(default_factory=dict, repr=False)

    def is_own_resource(self, rtype: str, rid: str) -> bool:
        """SMART: fhirUser names a resource the app can read to learn who the user is."""
        return self.own_resource == f"{rtype}/{rid}"

    def _decide(self, letter: str, rtype: str):
        decision = self._decisions.get((letter, rtype))
        if decision is None:
            decision = self._decisions[(letter, rtype)] = self.decide(letter, rtype)
        return decision

    def require(self, interaction: str, rtype: str):
        decision = self._decide(LETTERS[interaction], rtype)
        if not decision.allowed:
            raise forbidden(f"{interaction} of {rtype} is not allowed: {decision.reason}", decision.missing_scope)
        return decision

    def check(self, decision, rtype: str, resource: dict, interaction: str) -> None:
        problem = why_hidden(self.store, decision, rtype, resource)
        if problem:
            raise forbidden(f"{interaction} of {rtype}/{resource.get('id', '(new)')} is not allowed: {problem}")

    def may_see(self, rtype: str, resource: dict) -> bool:
        decision = self._decide("r", rtype)
        if not decision.allowed:
            return False
        if not decision.patient and not decision.filters:
            return True
        rid = resource.get("id")
        with self.store.lock:
            current = self.store.read(rtype, rid) if isinstance(rid, str) else None
            if current is not None and current.resource is resource:
                # The stored current version: the index knows its keys (no extraction per resource).
                key = (rtype, decision.patient, decision.filters)
                if key not in self._visible:
                    self._visible[key] = self.visible_ids(decision, rtype)
                visible = self._visible[key]
                return visible is None or rid in visible
        return why_hidden(self.store, decision, rtype, resource) is None

    def may_see_id(self, rtype: str, rid: str) -> bool:
        """For deletion entries in history: judged by the resource's last live version."""
        for version in self.store.history(rtype, rid):
            if version.resource is not None:
                return self.may_see(rtype, version.resource)
        return False

    def visible_ids(self, decision, rtype: str) -> set[str] | None:
        """Ids this decision lets through (None: all of them)."""
        allowed: set[str] | None = None
        if decision.patient:
            allowed = compartment_ids(self.store, rtype, decision.patient)
        if decision.filters:
            index = self.store.index(rtype)
            if allowed is None:
                allowed = filtered_ids(index, rtype, decision.filters)
            else:  # within the compartment: intersect with each group's matches (set & set walks the smaller)
                found: set[str] = set()
                for group in decision.filters:
                    found |= allowed & search.matching(search.parse(rtype, list(group)), index)
                allowed = found
        return allowed


def compartment_ids(store: Store, rtype: str, patient: str) -> set[str] | None:
    if rtype == "Patient":
        return {patient}
    params = PATIENT_COMPARTMENT.get(rtype)
    if not params:
        return None  # shared resources (Practitioner, Medication, ...) are not patient-limited
    index = store.index(rtype)
    key = f"Patient/{patient}"
    return set().union(*(index.lookup(param, key) for param in params))


def filtered_ids(index: TypeIndex, rtype: str, filters: tuple) -> set[str]:
    found: set[str] = set()
    for group in filters:
        found.update(search.matching(search.parse(rtype, list(group)), index))
    return found


def why_hidden(store: Store, decision, rtype: str, resource: dict) -> str | None:
    """None when the resource is within the decision's limits, else the reason in words."""
    if decision.patient:
        if not in_compartment(rtype, resource, decision.patient):
            return f"it is outside the compartment of Patient/{decision.patient}, the patient this token is for"
    if decision.filters:
        single = TypeIndex()
        single.add(resource.get("id", "(new)"), *extract(resource))
        if not filtered_ids(single, rtype, decision.filters):
            wanted = " or ".join("&".join(f"{k}={v}" for k, v in group) for group in decision.filters)
            return f"the token's granular scopes only allow {rtype} with {wanted}"
    return None


def in_compartment(rtype: str, resource: dict, patient: str) -> bool:
    if rtype == "Patient":
        return resource.get("id") == patient
    params = PATIENT_COMPARTMENT.get(rtype)
    if not params:
        return True
    keys, _ = extract(resource)
    wanted = f"Patient/{patient}"
    return any(wanted in keys.get(param, ()) for param in params)
