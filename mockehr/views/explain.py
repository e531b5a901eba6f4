"""What a protocol step is, in plain English, and where the spec says so. Pure functions.

`classify` names the step from its method and path, `describe` gives its title
and one-line explanation, `spec_links` the spec sections to read (links only:
nothing is fetched), `decode_jwt` the header and claims of a token.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone

import orjson

SMART = "https://hl7.org/fhir/smart-app-launch/"
RFC = "https://www.rfc-editor.org/rfc/"
OIDC = "https://openid.net/specs/openid-connect-core-1_0.html"
FHIR = "https://hl7.org/fhir/R4/"

LINKS = {
    "smart-discovery": ("SMART: .well-known/smart-configuration",
                        SMART + "app-launch.html#retrieve-well-knownsmart-configuration"),
    "smart-conformance": ("SMART: capabilities", SMART + "conformance.html"),
    "smart-ehr-launch": ("SMART: EHR launch", SMART + "app-launch.html#launch-app-ehr-launch"),
    "smart-standalone": ("SMART: standalone launch", SMART + "app-launch.html#launch-app-standalone-launch"),
    "smart-authorize": ("SMART: obtain authorization code", SMART + "app-launch.html#obtain-authorization-code"),
    "smart-token": ("SMART: obtain access token", SMART + "app-launch.html#obtain-access-token"),
    "smart-fhir": ("SMART: access FHIR API", SMART + "app-launch.html#access-fhir-api"),
    "smart-refresh": ("SMART: refresh access token", SMART + "app-launch.html#refresh-access-token"),
    "smart-scopes": ("SMART: scopes and launch context", SMART + "scopes-and-launch-context.html"),
    "smart-backend": ("SMART: backend services", SMART + "backend-services.html"),
    "smart-asymmetric": ("SMART: asymmetric client authentication", SMART + "client-confidential-asymmetric.html"),
    "smart-symmetric": ("SMART: symmetric client authentication", SMART + "client-confidential-symmetric.html"),
    "smart-introspection": ("SMART: token introspection", SMART + "token-introspection.html"),
    "rfc6749-authorize": ("RFC 6749 §4.1.1 authorization request", RFC + "rfc6749#section-4.1.1"),
    "rfc6749-authorize-error": ("RFC 6749 §4.1.2.1 error response", RFC + "rfc6749#section-4.1.2.1"),
    "rfc6749-token": ("RFC 6749 §4.1.3 access token request", RFC + "rfc6749#section-4.1.3"),
    "rfc6749-token-error": ("RFC 6749 §5.2 error response", RFC + "rfc6749#section-5.2"),
    "rfc6749-client-auth": ("RFC 6749 §2.3 client authentication", RFC + "rfc6749#section-2.3"),
    "rfc6749-client-credentials": ("RFC 6749 §4.4 client credentials", RFC + "rfc6749#section-4.4"),
    "rfc6749-refresh": ("RFC 6749 §6 refreshing an access token", RFC + "rfc6749#section-6"),
    "rfc6749-state": ("RFC 6749 §10.12 CSRF and state", RFC + "rfc6749#section-10.12"),
    "rfc6749-redirect-tls": ("RFC 6749 §3.1.2.1 redirect endpoint TLS", RFC + "rfc6749#section-3.1.2.1"),
    "rfc6750-query": ("RFC 6750 §2.3 token in the query", RFC + "rfc6750#section-2.3"),
    "rfc6750-error": ("RFC 6750 §3 WWW-Authenticate", RFC + "rfc6750#section-3"),
    "rfc7636": ("RFC 7636 PKCE", RFC + "rfc7636#section-4"),
    "rfc7636-verifier": ("RFC 7636 §4.1 code verifier", RFC + "rfc7636#section-4.1"),
    "rfc7636-plain": ("RFC 7636 §7.2 plain vs S256", RFC + "rfc7636#section-7.2"),
    "rfc7523": ("RFC 7523 §2.2 JWT client assertion", RFC + "rfc7523#section-2.2"),
    "rfc7662": ("RFC 7662 §2 introspection", RFC + "rfc7662#section-2"),
    "rfc7009": ("RFC 7009 §2 revocation", RFC + "rfc7009#section-2"),
    "rfc7591": ("RFC 7591 §3 dynamic registration", RFC + "rfc7591#section-3"),
    "rfc7517": ("RFC 7517 §5 JWK Set", RFC + "rfc7517#section-5"),
    "rfc9068": ("RFC 9068 JWT access tokens", RFC + "rfc9068#section-2"),
    "rfc9207": ("RFC 9207 iss in the authorization response", RFC + "rfc9207#section-2"),
    "rfc9700": ("RFC 9700 OAuth security best practice", RFC + "rfc9700#section-2"),
    "oidc-discovery": ("OpenID Connect Discovery",
                       "https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig"),
    "oidc-id-token": ("OIDC Core: ID Token", OIDC + "#IDToken"),
    "oidc-userinfo": ("OIDC Core: UserInfo", OIDC + "#UserInfo"),
    "oidc-auth-request": ("OIDC Core: authentication request", OIDC + "#AuthRequest"),
    "fhir-http": ("FHIR R4 RESTful API", FHIR + "http.html"),
    "fhir-search": ("FHIR R4 search", FHIR + "search.html"),
    "fhir-capabilities": ("FHIR R4 capabilities", FHIR + "http.html#capabilities"),
    "fhir-everything": ("FHIR R4 Patient $everything", FHIR + "patient-operation-everything.html"),
}

# The pages of the login flow and what each is for.
PAGES = {"/auth/login": "login", "/auth/second-factor": "second-factor", "/auth/pick-patient": "picker",
         "/auth/pick-encounter": "picker", "/auth/consent": "consent"}
AUTH_PATHS = {"/auth/authorize": "authorize", "/auth/token": "token", "/auth/introspect": "introspection",
              "/auth/revoke": "revocation", "/auth/register": "registration", "/auth/userinfo": "userinfo",
              "/auth/jwks": "jwks", "/auth/logout": "logout",
              "/fhir/.well-known/smart-configuration": "discovery",
              "/fhir/.well-known/openid-configuration": "discovery", "/fhir/metadata": "capabilities"}


def link(name: str) -> dict:
    label, url = LINKS[name]
    return {"label": label, "url": url}


# -- what a step is -----------------------------------------------------------------
def classify(method: str, path: str) -> str:
    """The kind of a step: discovery, authorize, login, second-factor, picker, consent, token, introspection,
    revocation, registration, userinfo, jwks, logout, capabilities, fhir, manage, admin or page."""
    if path in AUTH_PATHS:
        return AUTH_PATHS[path]
    if path in PAGES:
        return PAGES[path]
    if path.startswith("/auth/manage"):
        return "manage"
    if path == "/fhir" or path.startswith("/fhir/"):
        return "fhir"
    if path.startswith("/admin/"):
        return "admin"
    return "page"


def fhir_interaction(method: str, path: str) -> tuple[str, str]:
    """(interaction, target) of a FHIR call: ('read', 'Patient/1'), ('search', 'Observation'), ..."""
    parts = [p for p in path.split("/")[2:] if p]
    if not parts:
        return ("batch" if method == "POST" else "unknown"), ""
    if "$everything" in parts:
        return "everything", "/".join(parts[:2])
    if "_history" in parts:
        return ("vread" if parts[-2:-1] == ["_history"] else "history"), "/".join(parts)
    if parts[-1] == "_search" or (len(parts) == 1 and method == "GET"):
        return "search", parts[0]
    if len(parts) == 1:
        return {"POST": "create"}.get(method, method.lower()), parts[0]
    return {"GET": "read", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}.get(method, method.lower()), \
        "/".join(parts[:2])


def fhir_types(method: str, path: str, query: list[tuple[str, str]]) -> set[str]:
    """Resource types a FHIR call touched (for lint: scope broader than used). '*' for $everything."""
    interaction, target = fhir_interaction(method, path)
    if interaction == "everything":
        return {"*"}
    types = {target.split("/")[0]} if target else set()
    for name, value in query:
        if name.startswith("_include") or name.startswith("_revinclude"):
            source, _, rest = value.partition(":")
            if name.startswith("_revinclude"):
                types.add(source)
            elif rest.count(":") >= 1:
                types.add(rest.split(":")[-1])
        elif name == "_type":
            types.update(t for t in value.split(",") if t)
    return {t for t in types if t and t[0].isupper()}


def grant_type(form: list[tuple[str, str]] | None) -> str | None:
    for name, value in form or ():
        if name == "grant_type":
            return value
    return None


# -- titles, explanations, links -------------------------------------------------
_TOKEN_TITLES = {"authorization_code": "Token request: code exchange", "refresh_token": "Token request: refresh",
                 "client_credentials": "Token request: backend service (client_credentials)"}
_FHIR_VERBS = {"read": "reads", "vread": "reads a version of", "search": "searches", "create": "creates",
               "update": "updates", "delete": "deletes", "history": "reads the history of",
               "everything": "fetches everything about", "patch": "patches"}


def describe(kind: str, method: str, path: str, status: int, params: dict, ok: bool) -> tuple[str, str]:
    """(title, one-line explanation) of an exchange; `params` holds its query and form fields."""
    scope = params.get("scope")
    if kind == "discovery":
        what = "OpenID" if "openid" in path else "SMART"
        return (f"Discovery: {what} configuration",
                f"The app reads the server's {what} configuration to learn its endpoints (authorize, token, ...) "
                "and what it supports, instead of hard-coding them.")
    if kind == "capabilities":
        return ("FHIR CapabilityStatement", "The app (or a library) reads what this FHIR server can do; it is "
                "the one FHIR call that needs no token.")
    if kind == "jwks":
        return ("JWKS: the server's public keys", "Someone fetches the keys that verify this server's tokens "
                "(apps verify id_token signatures with them).")
    if kind == "authorize":
        mode = "EHR launch" if params.get("launch") else "standalone launch"
        asked = f" for «{scope}»" if scope else ""
        if not ok:
            return (f"Authorization request refused ({mode})", f"The app sent the browser to the authorize "
                    f"endpoint{asked}; the server refused it (see why below).")
        if status in (301, 302, 303, 307) and "code=" in params.get("_location", ""):
            then = "the server answered at once with a one-time authorization code on the redirect_uri."
        elif "error=" in params.get("_location", ""):
            then = "the server sent the browser back to the app with an error."
        else:
            then = "the server sends the browser to the login page first."
        return (f"Authorization request ({mode})",
                f"The app sends the user's browser to the authorize endpoint{asked}; {then}")
    if kind == "logout":
        return ("RP-initiated logout" + ("" if ok else " refused"),
                "The app sends the browser to the end_session_endpoint: the sign-in session ends, its online_access "
                "grants are revoked and its apps are told over the back channel.")
    if kind in ("login", "second-factor", "picker", "consent"):
        shown = method == "GET"
        words = {"login": ("Login page", "The user signs in to the EHR (here: picks who they are)."),
                 "second-factor": ("Second-factor page", "The app asked for a stronger sign-in (acr_values, or the "
                                   "step-up fault): the user enters a one-time code."),
                 "picker": ("Context picker", "The user picks the patient (or encounter) the app will work on."),
                 "consent": ("Consent page", "The user sees what the app asks for and allows or denies it.")}[kind]
        if shown:
            return words[0] + " shown", words[1]
        if kind == "consent" and "code=" in params.get("_location", ""):
            return "Consent given: code issued", "The user allowed access; the browser goes back to the app's " \
                                                 "redirect_uri with a one-time authorization code."
        if kind == "consent" and "error=" in params.get("_location", ""):
            return "Consent denied", "The user denied access; the app gets error=access_denied."
        return words[0] + ": choice made", words[1]
    if kind == "token":
        grant = params.get("grant_type") or "?"
        title = _TOKEN_TITLES.get(grant, f"Token request ({grant})")
        what = {"authorization_code": "The app swaps the one-time code (and its PKCE code_verifier) for an access "
                                      "token at the token endpoint, a back-channel call the browser never sees.",
                "refresh_token": "The app trades its refresh token for a fresh access token (and, here, a new "
                                 "refresh token: they rotate on every use).",
                "client_credentials": "A backend service proves who it is with a signed JWT assertion and gets a "
                                      "system-level access token; no user is involved."}.get(
            grant, "A token request with a grant type this server may not support.")
        return (title + ("" if ok else " refused")), what
    if kind == "introspection":
        return "Token introspection", "A resource server (or the app) asks whether a token is active and what " \
                                      "it grants."
    if kind == "revocation":
        return "Token revocation", "The app tells the server it no longer needs a token; the grant behind it ends."
    if kind == "registration":
        return "Dynamic client registration", "An app registers itself (redirect URIs, auth method, keys) and " \
                                              "gets a client_id."
    if kind == "userinfo":
        return "OIDC UserInfo", "The app asks who the signed-in user is, with its access token."
    if kind == "manage":
        return "Management page", "The user reviews (and may revoke) the apps holding access."
    if kind == "admin":
        return f"Control API: {method} {path}", "A test or the launcher drives mockehr itself (launches, faults, " \
                                               "reset); not part of SMART."
    if kind == "fhir":
        interaction, target = fhir_interaction(method, path)
        verb = _FHIR_VERBS.get(interaction, interaction)
        title = f"FHIR {interaction} {target}".strip()
        if not ok:
            return title + " refused", f"The app {verb} {target or 'the server'} with its access token; the FHIR " \
                                      "server refused (see why below)."
        return title, f"The app {verb} {target or 'the server'}, sending its access token as Authorization: Bearer."
    return f"{method} {path}", "A page or file of mockehr itself."


def spec_links(kind: str, grant: str | None = None, ok: bool = True, interaction: str | None = None,
               ehr_launch: bool = False) -> list[dict]:
    names = {
        "discovery": ["smart-discovery", "smart-conformance", "oidc-discovery"],
        "capabilities": ["fhir-capabilities", "smart-conformance"],
        "jwks": ["rfc7517", "oidc-id-token"],
        "authorize": ["smart-authorize", "smart-ehr-launch" if ehr_launch else "smart-standalone",
                      "rfc6749-authorize", "rfc7636", "rfc9207"],
        "login": ["smart-authorize"], "picker": ["smart-scopes"], "consent": ["smart-scopes", "smart-authorize"],
        "second-factor": ["oidc-auth-request"], "logout": ["oidc-id-token"],
        "introspection": ["smart-introspection", "rfc7662"], "revocation": ["rfc7009"],
        "registration": ["rfc7591"], "userinfo": ["oidc-userinfo"], "manage": ["smart-conformance"],
        "launch": ["smart-ehr-launch"],
        "fhir": ["smart-fhir", "fhir-search" if interaction == "search" else
                 "fhir-everything" if interaction == "everything" else "fhir-http"],
    }.get(kind, [])
    if kind == "token":
        names = {"authorization_code": ["smart-token", "rfc6749-token", "rfc7636", "rfc9068", "oidc-id-token"],
                 "refresh_token": ["smart-refresh", "rfc6749-refresh", "rfc9068"],
                 "client_credentials": ["smart-backend", "smart-asymmetric", "rfc6749-client-credentials",
                                        "rfc7523", "rfc9068"]}.get(grant or "", ["smart-token"])
    if not ok:
        names = names + {"authorize": ["rfc6749-authorize-error"], "token": ["rfc6749-token-error"],
                         "fhir": ["rfc6750-error"], "userinfo": ["rfc6750-error"]}.get(kind, [])
    return [link(n) for n in names]


def event_title(event: dict) -> tuple[str, str]:
    """(title, explanation) of an audit event that happened outside any captured request."""
    kind = event.get("type", "?")
    if kind == "fault":
        return f"Fault fired: {fault_name(event)}", "A fault you configured (--fault or POST /admin/faults) fired here."
    if kind == "keys":
        return "Signing keys rotated", "The server now signs with a new key; tokens signed with a dropped key fail."
    if kind == "launch":
        title = "EHR launch created" + (f" for Patient/{event['patient']}" if event.get("patient") else "")
        return title, ("The EHR stores a launch context (patient, user, encounter, ...) and opens the app with launch and "
                     "iss; the app sends launch back in its authorization request to get that context.")
    return f"Audit: {kind}", f"The server recorded a {kind} event."


def fault_name(event: dict) -> str:
    return str(event.get("spec") or event.get("kind") or event.get("fault") or "a fault")


# -- tokens -------------------------------------------------------------------------
def _b64json(segment: str):
    padded = segment + "=" * (-len(segment) % 4)
    return orjson.loads(base64.urlsafe_b64decode(padded))


def decode_jwt(token: str) -> dict | None:
    """{"header", "claims"} of a JWT (signature ignored, and usually absent), or None if it is not one."""
    parts = token.split(".")
    if len(parts) < 2:
        return None
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return {"header": header, "claims": claims}


def claim_notes(claims: dict) -> list[str]:
    """Readable lines for the time claims: 'exp 2026-01-01 10:00:00Z, 3600 s after iat'."""
    notes = []
    for name in ("iat", "nbf", "auth_time", "exp"):
        value = claims.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            when = datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
            after = ""
            if name == "exp" and isinstance(claims.get("iat"), (int, float)):
                after = f", {int(value - claims['iat'])} s after iat"
            notes.append(f"{name} {when}{after}")
    return notes


def token_label(where: str) -> str:
    """'response body access_token' -> 'access_token (response)'."""
    place, _, name = where.rpartition(" ")
    place = {"response body": "response", "request body": "request", "form": "request", "query": "query",
             "Location": "redirect", "Authorization: Bearer": "request header"}.get(place, place)
    if name == "access_token" and place == "request header":
        return "access token (Authorization: Bearer)"
    return f"{name} ({place})"
