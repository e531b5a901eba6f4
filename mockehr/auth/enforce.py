"""May this token do this? The one question the FHIR API asks the auth side.

Mock access policy (documented in the README):
- system/ scopes (backend services) see everything;
- user/ scopes: a Practitioner sees every patient; a Patient user sees their
  own compartment only; a RelatedPerson sees the patient they relate to;
- patient/ scopes see the in-context patient's compartment only.
Granular v2 scopes (`?category=...`) become search filters.
"""

from __future__ import annotations

from dataclasses import dataclass

from mockehr.auth.scopes import access
from mockehr.auth.sim_errors import simulated
from mockehr.auth.tokens import AccessToken, InvalidToken


@dataclass(frozen=True)
class Decision:
    allowed: bool
    patient: str | None = None  # limit to this patient's compartment
    filters: tuple | None = None  # OR of AND-groups of (param, value); None = no filter
    reason: str = ""  # why not, in words
    missing_scope: str = ""


class Unauthorized(Exception):
    """No usable token: 401 with WWW-Authenticate: Bearer error="invalid_token", or the DPoP challenge in
    `headers` (WWW-Authenticate: DPoP ..., maybe DPoP-Nonce) when a DPoP token or proof was refused."""

    def __init__(self, message: str, headers: dict | None = None):
        super().__init__(message)
        self.headers = headers


def decide(token: AccessToken, letter: str, rtype: str, user_patient: str | None) -> Decision:
    """The widest context that allows the action wins."""
    resource_scopes = token.scopes.resource
    if access(resource_scopes, "system", rtype, letter).allowed:
        granted = access(resource_scopes, "system", rtype, letter)
        return Decision(True, None, granted.filters)
    granted = access(resource_scopes, "user", rtype, letter)
    if granted.allowed and token.user:
        limited = token.user.startswith(("Patient/", "RelatedPerson/"))
        if limited and not user_patient:
            return Decision(False, reason=f"user {token.user} is linked to no patient")
        return Decision(True, user_patient if limited else None, granted.filters)
    granted = access(resource_scopes, "patient", rtype, letter)
    if granted.allowed:
        if not token.patient:
            return Decision(False, reason="the token has patient/ scopes but no patient in context")
        return Decision(True, token.patient, granted.filters)
    missing = granted.missing.replace("patient/", _context_prefix(token))
    return Decision(False, reason=f"the token's scopes ({token.claims.get('scope', '')}) do not allow this; "
                                  f"it needs {missing}", missing_scope=missing)


def _context_prefix(token: AccessToken) -> str:
    contexts = {s.context for s in token.scopes.resource}
    for context in ("system", "user", "patient"):
        if context in contexts:
            return f"{context}/"
    return "patient/" if token.patient else "user/"


class Guard:
    """Authenticates the bearer token of a FHIR request and answers permission questions."""

    def __init__(self, service, patient_of_user):
        self._service = service
        self._patient_of_user = patient_of_user  # "RelatedPerson/x" -> patient id

    def authenticate(self, header: str | None) -> AccessToken:
        try:
            token = self._service.authenticate_bearer(header)
        except InvalidToken as exc:
            raise Unauthorized(str(exc), getattr(exc, "headers", None)) from None
        sim = simulated(token.grant.context.sim_error, "fhir")
        if sim is not None:
            raise Unauthorized(sim.description)
        return token

    def decide(self, token: AccessToken, letter: str, rtype: str) -> Decision:
        return decide(token, letter, rtype, self._patient_of_user(token.user) if token.user else None)
