"""The launcher's options, as pure functions: read from a query string, written back
as a deep link, and turned into what the server needs (a launch body for
mockehr.admin.mint_launch, an RFC 7591 registration body).

A deep link lists only the options that matter for its launch type and differ
from the defaults, so `parse_options(deep_link_query(o))` gives `o` back (for
the options that matter) and a workshop handout stays short.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple, Sequence
from urllib.parse import urlencode, urlsplit

from mockehr.auth.authorize import redirect_uri_problem
from mockehr.auth.scopes import ScopeError, parse_scopes
from mockehr.auth.sim_errors import SIM_ERRORS


class Mode(NamedTuple):
    label: str
    summary: str
    ehr: bool  # an EHR launch (minted launch id) rather than the app starting on its own
    user: bool  # a person signs in (every mode but backend services)


MODES: dict[str, Mode] = {
    "ehr": Mode("Provider EHR launch", "A clinician opens the app from inside the EHR, which hands it the "
                "patient and encounter in a launch id.", ehr=True, user=True),
    "portal": Mode("Patient portal launch", "A patient opens the app from the patient portal: an EHR launch "
                   "with the patient as the signed-in user.", ehr=True, user=True),
    "provider": Mode("Provider standalone launch", "A clinician opens the app first; the app asks the EHR to "
                     "sign them in and pick a patient.", ehr=False, user=True),
    "patient": Mode("Patient standalone launch", "A patient opens the app first; the app asks the EHR to sign "
                    "them in and share their record.", ehr=False, user=True),
    "backend": Mode("Backend service", "A server with no user: client_credentials with a signed JWT "
                    "(SMART Backend Services).", ehr=False, user=False),
}
EHR_MODES = tuple(m for m, mode in MODES.items() if mode.ehr)
USER_MODES = tuple(m for m, mode in MODES.items() if mode.user)
ALL_MODES = tuple(MODES)

CLIENT_TYPES = {
    "public": "Public (no secret: browser and mobile apps, PKCE only)",
    "symmetric": "Confidential, symmetric (client secret)",
    "asymmetric": "Confidential, asymmetric (private key JWT)",
}
KEY_ALGS = ("ES384", "RS384")
BACKEND_CLIENT_ID = "my-backend-service"  # a name until registration answers the real client_id  # the two SMART requires servers to accept

PRESETS = {"read": "Read everything", "read-write": "Read and write everything", "minimal": "Demographics only"}
# v2 spellings; the v1 ones are derived (to_v1). EHR launches without a patient add launch/patient.
_PRESET_SCOPES = {
    "ehr": {"read": "launch openid fhirUser offline_access patient/*.rs",
            "read-write": "launch openid fhirUser offline_access patient/*.cruds",
            "minimal": "launch openid fhirUser patient/Patient.rs"},
    "provider": {"read": "launch/patient openid fhirUser offline_access user/*.rs",
                 "read-write": "launch/patient openid fhirUser offline_access user/*.cruds",
                 "minimal": "launch/patient openid fhirUser patient/Patient.rs"},
    "patient": {"read": "launch/patient openid fhirUser offline_access patient/*.rs",
                "read-write": "launch/patient openid fhirUser offline_access patient/*.cruds",
                "minimal": "launch/patient openid fhirUser patient/Patient.rs"},
    "backend": {"read": "system/*.rs", "read-write": "system/*.cruds", "minimal": "system/Patient.rs"},
}
_PRESET_SCOPES["portal"] = _PRESET_SCOPES["ehr"]
_V1_PERMISSIONS = {"rs": "read", "cruds": "*", "cud": "write"}

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,200}")  # RFC 6749 VSCHAR, no spaces
_TRUE, _FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no", "")


@dataclass(frozen=True)
class Defaults:
    """What an option is when the query string does not mention it (depends on the server and its data)."""

    patient: str
    practitioner: str
    app_url: str
    client_id: str


@dataclass(frozen=True)
class LaunchOptions:
    launch_type: str = "ehr"
    patient: str = ""  # "" = none: the app's user picks one at sign-in
    practitioner: str = ""
    encounter: str = ""
    app_url: str = ""
    redirect_uri: str = ""  # "" = the app_url
    client_id: str = ""
    client_type: str = "public"
    jwks: str = ""  # public JWKS as JSON text, for an asymmetric client
    jwks_uri: str = ""
    key_alg: str = "ES384"
    scope_preset: str = "read"
    smart_version: str = "v2"
    scope: str = ""  # the scope string the app will ask for (preset or typed)
    intent: str = ""
    fhir_context: str = ""  # JSON array, or one reference per line
    need_patient_banner: bool = True
    smart_style_url: str = ""  # "" = mockehr's style, "none" = no style, else a URL
    skip_login: bool = True  # EHR launches: the launch names the user, so there is no login page
    skip_consent: bool = False
    sim_error: str = ""

    @property
    def mode(self) -> Mode:
        return MODES[self.launch_type]

    @property
    def effective_redirect_uri(self) -> str:
        return self.redirect_uri or self.app_url

    @property
    def preset_scope(self) -> str:
        return preset_scope(self.launch_type, self.scope_preset, self.smart_version, bool(self.patient))

    @property
    def scope_is_custom(self) -> bool:
        return self.scope != self.preset_scope


@dataclass
class Parsed:
    options: LaunchOptions
    problems: list[str] = field(default_factory=list)  # launching or registering is refused while any remain
    notes: list[str] = field(default_factory=list)  # worth knowing, not blocking (e.g. a scope the server refuses)


def to_v1(scope_text: str) -> str:
    """SMART v1 spelling of v2 scopes without parameters ("patient/*.rs" -> "patient/*.read")."""
    words = []
    for token in scope_text.split():
        head, dot, letters = token.rpartition(".")
        if dot and "/" in head and "?" not in token and letters in _V1_PERMISSIONS:
            words.append(f"{head}.{_V1_PERMISSIONS[letters]}")
        else:
            words.append(token)
    return " ".join(words)


def preset_scope(launch_type: str, preset: str, version: str, has_patient: bool) -> str:
    text = _PRESET_SCOPES[launch_type][preset]
    if MODES[launch_type].ehr and not has_patient:
        text = text.replace("launch ", "launch launch/patient ", 1)  # the EHR names no patient: let the user pick
    return to_v1(text) if version == "v1" else text


def default_values(launch_type: str, defaults: Defaults) -> dict[str, str]:
    """Every option's default, spelled as in the query string."""
    return {"launch_type": "ehr", "patient": defaults.patient, "practitioner": defaults.practitioner,
            "encounter": "", "app_url": defaults.app_url, "redirect_uri": "",
            "client_id": BACKEND_CLIENT_ID if launch_type == "backend" else defaults.client_id,
            "client_type": "asymmetric" if launch_type == "backend" else "public", "jwks": "", "jwks_uri": "",
            "key_alg": "ES384", "scope_preset": "read", "smart_version": "v2", "scope": "", "intent": "",
            "fhir_context": "", "need_patient_banner": "1", "smart_style_url": "", "skip_login": "1",
            "skip_consent": "0", "sim_error": ""}


# Which launch types each option matters for (and so appears in deep links).
RELEVANT: dict[str, tuple[str, ...]] = {
    "launch_type": ALL_MODES, "patient": EHR_MODES, "practitioner": ("ehr",), "encounter": EHR_MODES,
    "app_url": USER_MODES, "redirect_uri": USER_MODES, "client_id": ALL_MODES, "client_type": ALL_MODES,
    "jwks": ALL_MODES, "jwks_uri": ALL_MODES, "key_alg": ALL_MODES, "scope_preset": ALL_MODES,
    "smart_version": ALL_MODES, "scope": ALL_MODES, "intent": EHR_MODES, "fhir_context": EHR_MODES,
    "need_patient_banner": EHR_MODES, "smart_style_url": EHR_MODES, "skip_login": EHR_MODES,
    "skip_consent": EHR_MODES, "sim_error": ALL_MODES,
}
_KEY_OPTIONS = ("jwks", "jwks_uri", "key_alg")  # only for asymmetric clients


def query_values(o: LaunchOptions) -> dict[str, str]:
    """The options spelled as in the query string (the custom scope only; presets are named)."""
    values = {name: getattr(o, name) for name in RELEVANT}
    for name in ("need_patient_banner", "skip_login", "skip_consent"):
        values[name] = "1" if getattr(o, name) else "0"
    values["scope"] = o.scope if o.scope_is_custom else ""
    return values


def deep_link_query(o: LaunchOptions, defaults: Defaults) -> str:
    """The query string of a link that prefills the launcher with these options."""
    default = default_values(o.launch_type, defaults)
    pairs = []
    for name, value in query_values(o).items():
        if name != "launch_type" and (o.launch_type not in RELEVANT[name] or value == default[name]):
            continue  # the launch type always shows, so a handout link says what it launches
        if name in _KEY_OPTIONS and o.client_type != "asymmetric":
            continue
        pairs.append((name, value))
    return urlencode(pairs)


def parse_options(query: Mapping[str, Sequence[str]], defaults: Defaults) -> Parsed:
    """Options from a query string or form (name -> values; the last value wins, as with checkboxes
    that follow a hidden "0"). Anything wrong becomes a problem naming the option, never an exception."""
    problems: list[str] = []
    notes: list[str] = []

    def get(name: str) -> str | None:
        values = query.get(name) or []
        return values[-1].strip() if values else None

    launch_type = get("launch_type") or "ehr"
    if launch_type not in MODES:
        problems.append(f"launch_type '{launch_type}' is not one of {', '.join(MODES)}")
        launch_type = "ehr"
    default = default_values(launch_type, defaults)

    def choice(name: str, allowed) -> str:
        value = get(name) or default[name]
        if value not in allowed:
            problems.append(f"{name} '{value}' is not one of {', '.join(allowed)}")
            return default[name]
        return value

    def flag(name: str) -> bool:
        value = get(name)
        value = default[name] if value is None else value.lower()
        if value not in _TRUE + _FALSE:
            problems.append(f"{name} '{value}' must be 1 or 0")
            return default[name] == "1"
        return value in _TRUE

    def resource_id(name: str, rtype: str) -> str:
        value = get(name)
        value = default[name] if value is None else value.removeprefix(f"{rtype}/")
        if value and not _FHIR_ID.fullmatch(value):
            problems.append(f"{name} '{value}' is not a FHIR id (letters, digits, '-' and '.', up to 64)")
            return ""
        return value

    def url(name: str, fallback: str = "") -> str:
        value = get(name) or fallback
        if value and (problem := _http_url_problem(value)):
            problems.append(f"{name} '{value}' {problem}")
        return value

    client_type = choice("client_type", CLIENT_TYPES)
    if launch_type == "backend" and client_type == "public":
        problems.append("a backend service cannot be a public client: choose a confidential client type "
                        "(SMART Backend Services use asymmetric keys)")
    client_id = get("client_id") or default["client_id"]
    if not _CLIENT_ID.fullmatch(client_id):
        problems.append(f"client_id '{client_id}' must be printable characters without spaces")
    redirect_uri = get("redirect_uri") or ""
    if redirect_uri and (problem := redirect_uri_problem(redirect_uri)):
        problems.append(f"redirect_uri '{redirect_uri}' {problem}")
    jwks = get("jwks") or ""
    if jwks and (problem := _jwks_problem(jwks)):
        problems.append(problem)
    jwks_uri = url("jwks_uri")
    if jwks and jwks_uri:
        problems.append("give either a JWKS or a JWKS URL, not both")
    style = get("smart_style_url") or ""
    if style and style != "none" and (problem := _http_url_problem(style)):
        problems.append(f"smart_style_url '{style}' {problem} (or leave it empty for mockehr's style, 'none' for no style)")
    fhir_context = get("fhir_context") or ""
    try:
        parse_fhir_context(fhir_context)
    except ValueError as exc:
        problems.append(str(exc))

    scope_preset = choice("scope_preset", PRESETS)
    smart_version = choice("smart_version", ("v1", "v2"))
    patient = resource_id("patient", "Patient")
    options = LaunchOptions(
        launch_type=launch_type, patient=patient, practitioner=resource_id("practitioner", "Practitioner"),
        encounter=resource_id("encounter", "Encounter"), app_url=url("app_url", defaults.app_url),
        redirect_uri=redirect_uri, client_id=client_id, client_type=client_type, jwks=jwks, jwks_uri=jwks_uri,
        key_alg=choice("key_alg", KEY_ALGS), scope_preset=scope_preset, smart_version=smart_version,
        scope=_scope(get("scope"), get("scope_auto"),
                     preset_scope(launch_type, scope_preset, smart_version, bool(patient))),
        intent=get("intent") or "", fhir_context=fhir_context, need_patient_banner=flag("need_patient_banner"),
        smart_style_url=style, skip_login=flag("skip_login"), skip_consent=flag("skip_consent"),
        sim_error=get("sim_error") or "")
    if options.sim_error:
        sim = SIM_ERRORS.get(options.sim_error)
        if sim is None:
            problems.append(f"sim_error '{options.sim_error}' is not one of {', '.join(SIM_ERRORS)}")
        elif launch_type not in sim.modes:
            problems.append(f"the simulated error '{sim.label}' does not apply to a {options.mode.label.lower()}")
    if launch_type == "portal" and options.skip_login and not patient:
        problems.append("a patient portal launch signs the patient in: choose the patient (or untick "
                        "'skip login' to pick the user on the login page)")
    if not options.scope:
        problems.append("scope is empty: SMART apps must ask for scopes")
    else:
        try:
            parse_scopes(options.scope)
        except ScopeError as exc:
            notes.append(f"The server will refuse this scope: {exc.reason} ({exc.scope}). Useful to see the "
                         "error; otherwise fix the scope.")
    return Parsed(options, problems, notes)


def _scope(typed: str | None, shown_preset: str | None, preset: str) -> str:
    """The typed scope, unless it is still the preset the page last showed (then the preset, maybe changed)."""
    typed = " ".join((typed or "").split())
    if not typed or typed == " ".join((shown_preset or "").split()):
        return preset
    return typed


def _http_url_problem(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http(s) URL"
    if any(ord(c) <= 0x20 for c in value):
        return "must not contain spaces"
    return None


def _jwks_problem(text: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"the JWKS is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        return 'the JWKS must be a JSON object like {"keys": [...]} (the public keys)'
    return None


def parse_fhir_context(text: str) -> list:
    """fhirContext from the form: a JSON array as in the launch API, or one reference per line."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"fhirContext is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") \
                from None
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ValueError('fhirContext must be a JSON array of objects like {"reference": "Observation/123"}')
        return value
    items = []
    for line in text.splitlines():
        reference = line.strip()
        if not reference:
            continue
        if not re.fullmatch(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}", reference):
            raise ValueError(f"fhirContext line '{reference}' is not a reference like Observation/123 "
                             "(or give a JSON array)")
        items.append({"reference": reference})
    return items


def launch_user(o: LaunchOptions) -> str | None:
    """The user an EHR launch names (so no login page), or None to sign in on the login page."""
    if not o.skip_login:
        return None
    if o.launch_type == "portal":
        return f"Patient/{o.patient}" if o.patient else None
    return f"Practitioner/{o.practitioner}" if o.practitioner else None


def launch_body(o: LaunchOptions) -> dict:
    """The POST /admin/launches body (mockehr.admin.mint_launch) for an EHR or portal launch."""
    body: dict = {"app_url": o.app_url, "need_patient_banner": o.need_patient_banner}
    for name, value in (("patient", o.patient), ("encounter", o.encounter), ("user", launch_user(o)),
                        ("intent", o.intent), ("sim_error", o.sim_error)):
        if value:
            body[name] = value
    if o.smart_style_url:
        body["smart_style_url"] = False if o.smart_style_url == "none" else o.smart_style_url
    context = parse_fhir_context(o.fhir_context)
    if context:
        body["fhirContext"] = context
    if o.skip_consent:
        body["skip_consent"] = True
    return body


def registration_body(o: LaunchOptions, public_jwks: dict | None) -> dict:
    """An RFC 7591 registration request for the client these options describe."""
    method = {"public": "none", "symmetric": "client_secret_basic", "asymmetric": "private_key_jwt"}[o.client_type]
    body: dict = {"client_name": o.client_id, "token_endpoint_auth_method": method}
    if o.launch_type == "backend":
        body.update(grant_types=["client_credentials"], scope=o.scope)
    else:
        body.update(grant_types=["authorization_code", "refresh_token"], redirect_uris=[o.effective_redirect_uri])
    if o.client_type == "asymmetric":
        if o.jwks_uri:
            body["jwks_uri"] = o.jwks_uri
        elif public_jwks is not None:
            body["jwks"] = public_jwks
    if o.sim_error:
        body["sim_error"] = o.sim_error  # non-standard metadata: this client's requests fail at that step
    return body


def sim_errors_for(launch_type: str) -> list[tuple[str, str]]:
    """(name, label) of the simulated errors that make sense for this launch type."""
    return [(name, sim.label) for name, sim in SIM_ERRORS.items() if launch_type in sim.modes]
