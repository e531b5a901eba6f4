"""Scopes in plain words, for the consent page (pure).

The wording lives apart from mockehr.auth.scopes so that what a scope *means*
(parsing, permissions) and how it is *said* to a person can change separately.
"""

import re

from mockehr.auth.scopes import GRANULAR_CATEGORIES, LETTERS, ResourceScope, ScopeError, parse_scope


_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_PLAIN_NAMES = {
    "AllergyIntolerance": "allergies", "Binary": "files", "Coverage": "insurance coverage",
    "DocumentReference": "documents", "MedicationRequest": "medication orders", "Patient": "demographics",
    "Provenance": "provenance records",
}
_IDENTITY_TEXT = {
    "openid": "Know who you are (your identity)",
    "fhirUser": "Know which person in the record system you are",
    "profile": "See your name and basic profile",
    "email": "See your email address",
    "launch": "Use the patient and context open in the EHR when it was launched",
    "launch/patient": "Choose a patient",
    "launch/encounter": "Choose an encounter (visit)",
    "offline_access": "Stay connected when you are not using the app",
    "online_access": "Stay connected while you are using the app",
}


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _plain_plural(resource: str) -> str:
    if resource in _PLAIN_NAMES:
        return _PLAIN_NAMES[resource]
    words = re.findall(r"[A-Z][a-z]*", resource) or [resource]
    last = words[-1].lower()
    if last.endswith("y") and last[-2:-1] not in ("a", "e", "o", "u"):
        last = last[:-1] + "ies"
    elif last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    else:
        last += "s"
    return " ".join([w.lower() for w in words[:-1]] + [last])


def _param_label(resource: str, name: str, value: str) -> str:
    if name == "category":
        tables = GRANULAR_CATEGORIES.values() if resource == "*" else [GRANULAR_CATEGORIES.get(resource, ())]
        for table in tables:
            for known, _, display in table:
                if known == value:
                    return display
    return f"{name}={value}"


def describe(scope: ResourceScope) -> str:
    """Plain words for a consent page: "Read and search your observations (laboratory)"."""
    action = _join([_VERBS[c] for c in LETTERS if c in scope.permissions] or ["access"])
    if scope.resource == "*":
        what = "any resource in your record" if scope.context == "patient" else "any resource for all patients"
    else:
        plural = _plain_plural(scope.resource)
        what = f"your {plural}" if scope.context == "patient" else f"all patients' {plural}"
    detail = ", ".join(_param_label(scope.resource, n, v) for n, v in scope.params)
    return f"{action[0].upper()}{action[1:]} {what}" + (f" ({detail})" if detail else "")


def describe_other(token: str) -> str:
    """Plain words for a non-resource scope (resource scopes are passed on to describe())."""
    if isinstance(token, str) and token in _IDENTITY_TEXT:
        return _IDENTITY_TEXT[token]
    try:
        scope = parse_scope(token) if isinstance(token, str) else None
    except ScopeError:
        scope = None
    return describe(scope) if scope else f"Unrecognised scope '{token}' (it grants nothing here)"
