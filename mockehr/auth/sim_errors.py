"""Simulated errors for one launch or one client (the launcher's "simulate an error" list).

The names are smart-launcher-v2's, so handouts written for it keep working. A
launch minted with `sim_error` (POST /admin/launches, the launcher page) or a
client registered with the non-standard metadata field `sim_error` makes the
named step fail the way a real EHR would, with the spec's error shape.

`stage` says where it fires: authorize, token (code exchange and refresh),
refresh (refresh only), backend (client_credentials), fhir (every FHIR call
with the tokens it led to).
"""

from __future__ import annotations

from typing import NamedTuple


class SimError(NamedTuple):
    label: str
    stage: str
    modes: tuple[str, ...]  # launcher modes it makes sense for: ehr, portal, provider, patient, backend
    error: str              # OAuth error code (or, at the FHIR API, the Bearer error)
    description: str


_USER = ("ehr", "portal", "provider", "patient")
_ALL = (*_USER, "backend")

SIM_ERRORS: dict[str, SimError] = {
    "auth_invalid_client_id": SimError(
        "Authorize - invalid client id", "authorize", _USER, "unauthorized_client",
        "Simulated error: the client_id is not known to this EHR"),
    "auth_invalid_redirect_uri": SimError(
        "Authorize - invalid redirect_uri", "authorize", _USER, "invalid_request",
        "Simulated error: the redirect_uri is not registered for this client"),
    "auth_invalid_scope": SimError(
        "Authorize - invalid scope", "authorize", _USER, "invalid_scope",
        "Simulated error: the requested scope is not allowed for this client"),
    "auth_invalid_client_secret": SimError(
        "Token - invalid client secret (confidential clients)", "token", _USER, "invalid_client",
        "Simulated error: client authentication failed (wrong client secret)"),
    "token_invalid_token": SimError(
        "Token - invalid token", "token", _ALL, "invalid_grant",
        "Simulated error: the authorization code or refresh token is invalid"),
    "token_expired_refresh_token": SimError(
        "Token - expired refresh token", "refresh", _USER, "invalid_grant",
        "Simulated error: the refresh token has expired"),
    "token_expired_registration_token": SimError(
        "Token - expired registration (backend services)", "backend", ("backend",), "invalid_client",
        "Simulated error: the client's registration has expired"),
    "token_invalid_scope": SimError(
        "Token - invalid scope (backend services)", "backend", ("backend",), "invalid_scope",
        "Simulated error: the requested system scopes are not allowed for this client"),
    "invalid_jti": SimError(
        "Token - invalid jti (backend services)", "backend", ("backend",), "invalid_client",
        "Simulated error: the client assertion's jti was already used"),
    "request_invalid_token": SimError(
        "FHIR request - invalid token", "fhir", _ALL, "invalid_token",
        "Simulated error: the access token is invalid"),
    "request_expired_token": SimError(
        "FHIR request - expired token", "fhir", _ALL, "invalid_token",
        "Simulated error: the access token has expired"),
}


def check_sim_error(value: object) -> str | None:
    """None when fine, else a message naming the problem."""
    if value is None or (isinstance(value, str) and value in SIM_ERRORS):
        return None
    return f"unknown sim_error {value!r}; known: {', '.join(SIM_ERRORS)}"


def simulated(name: str | None, *stages: str) -> SimError | None:
    """The simulated error `name` if it fires at one of `stages`, else None."""
    sim = SIM_ERRORS.get(name or "")
    return sim if sim is not None and sim.stage in stages else None
