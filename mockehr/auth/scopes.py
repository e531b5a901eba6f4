"""SMART on FHIR scopes (SMART App Launch 2.2): parsing and permission checks (wording: scope_words).

Pure functions only. The authorization server, the consent page and the FHIR API all use
this module so that a scope means the same thing at consent, token and request time.
"""

import re
import string
from dataclasses import dataclass, field, replace
from typing import Iterable
from urllib.parse import quote

CONTEXTS = ("patient", "user", "system")
LETTERS = "cruds"  # v2 permissions, in the only order the spec allows
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}  # the spec's v1 -> v2 equivalences

# Non-resource SMART scopes -> the ScopeSet field each one sets.
FLAG_FIELDS = {
    "launch": "launch", "launch/patient": "launch_patient", "launch/encounter": "launch_encounter",
    "openid": "openid", "fhirUser": "fhir_user", "profile": "profile", "email": "email",
    "offline_access": "offline_access", "online_access": "online_access",
}

_OAUTH_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 scope-token characters
_SEPARATORS = re.compile(r"[ \t\r\n\f\v]+")  # RFC 6749 says one space; be lenient with ASCII whitespace
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]*")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")  # allows modifiers (code:in) and chains (patient.name)
# Characters left as they are when writing params back into a scope; '%' and '&' must be escaped.
_SAFE_VALUE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\%&')
_SAFE_NAME = _SAFE_VALUE.replace("=", "")

_OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
_US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
_US_CORE_OBS = "http://hl7.org/fhir/us/core/CodeSystem/us-core-observation-category"
_CONDITION = "http://terminology.hl7.org/CodeSystem/condition-category"
_US_CORE_CONDITION = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"

# resource type -> ((category param value "system|code", code, display for the consent page), ...)
# The first five Observation and all Condition entries are the ones ONC (g)(10) / Inferno test.
GRANULAR_CATEGORIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "Observation": tuple((f"{system}|{code}", code, display) for system, code, display in (
        (_OBS, "laboratory", "laboratory"),
        (_OBS, "vital-signs", "vital signs"),
        (_OBS, "social-history", "social history"),
        (_OBS, "survey", "survey"),
        (_US_CORE_CATEGORY, "sdoh", "social determinants of health"),
        (_US_CORE_OBS, "clinical-test", "clinical test"),
        (_OBS, "imaging", "imaging"),
        (_OBS, "procedure", "procedure"),
        (_OBS, "exam", "exam"),
        (_OBS, "therapy", "therapy"),
        (_OBS, "activity", "activity"),
    )),
    "Condition": tuple((f"{system}|{code}", code, display) for system, code, display in (
        (_CONDITION, "problem-list-item", "problem list"),
        (_CONDITION, "encounter-diagnosis", "encounter diagnosis"),
        (_US_CORE_CONDITION, "health-concern", "health concern"),
    )),
}


class ScopeError(ValueError):
    """A scope that looks like SMART but is malformed; .reason says what is wrong in plain words."""

    def __init__(self, scope: str, reason: str):
        super().__init__(f"invalid scope {scope!r}: {reason}")
        self.scope = scope
        self.reason = reason


@dataclass(frozen=True)
class ResourceScope:
    context: str
    resource: str
    permissions: frozenset[str]
    params: tuple[tuple[str, str], ...]
    version: int
    text: str


@dataclass(frozen=True)
class ScopeSet:
    resource: tuple[ResourceScope, ...] = ()
    launch: bool = False
    launch_patient: bool = False
    launch_encounter: bool = False
    openid: bool = False
    fhir_user: bool = False
    profile: bool = False
    email: bool = False
    offline_access: bool = False
    online_access: bool = False
    other: tuple[str, ...] = ()
    # Every token in request order, so text() can give them back in that order. Not part of equality.
    order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def text(self) -> str:
        present = ([s.text for s in self.resource]
                   + [token for token, name in FLAG_FIELDS.items() if getattr(self, name)] + list(self.other))
        wanted = set(present)
        ordered = [token for token in self.order if token in wanted]
        return " ".join(dict.fromkeys(ordered + present))

    def contexts(self) -> set[str]:
        return {s.context for s in self.resource}


@dataclass(frozen=True)
class Access:
    allowed: bool
    filters: tuple[tuple[tuple[str, str], ...], ...] | None
    missing: str


def parse_scopes(text: str) -> ScopeSet:
    """Parse a space-separated scope string; raises ScopeError for malformed SMART-looking scopes."""
    if not isinstance(text, str):
        raise ScopeError(repr(text), "scopes must be given as a string")
    resource: list[ResourceScope] = []
    other: list[str] = []
    flags: dict[str, bool] = {}
    tokens = list(dict.fromkeys(t for t in _SEPARATORS.split(text) if t))  # duplicates collapse
    for token in tokens:
        _check_characters(token)
        if token in FLAG_FIELDS:
            flags[FLAG_FIELDS[token]] = True
        elif token.partition("/")[0].lower() == "launch" and "/" in token:
            raise ScopeError(token, _launch_reason(token))
        elif (scope := parse_scope(token)) is not None:
            resource.append(scope)
        else:
            other.append(token)
    return ScopeSet(resource=tuple(resource), other=tuple(other), order=tuple(tokens), **flags)


def parse_scope(token: str) -> ResourceScope | None:
    """One clinical scope, e.g. "patient/Observation.rs?category=...". None if the token is not one."""
    context, slash, rest = token.partition("/")
    if not slash or context.lower() not in CONTEXTS:
        return None
    if context not in CONTEXTS:
        raise ScopeError(token, f"the context '{context}' must be lower case: '{context.lower()}/'")
    _check_characters(token)
    path, question, query = rest.partition("?")
    resource, dot, permissions = path.partition(".")
    if not dot:
        raise ScopeError(token, f"missing '.' and permissions after the resource type (e.g. '{context}/Observation.rs')")
    if not resource:
        raise ScopeError(token, f"missing resource type between '{context}/' and '.' (a FHIR type such as Observation, or *)")
    if resource != "*" and not _RESOURCE_TYPE.fullmatch(resource):
        raise ScopeError(token, f"'{resource}' is not a FHIR resource type: use a name such as Observation "
                                "(a capital letter, then letters only) or * for all types")
    letters, version = _permissions(token, permissions)
    params: tuple[tuple[str, str], ...] = ()
    if question:
        if version == 1:
            raise ScopeError(token, f"search-parameter limits need v2 permissions such as '.{letters}', "
                                    f"not v1 '.{permissions}'")
        params = _params(token, query)
    return ResourceScope(context, resource, frozenset(letters), params, version, token)


def _check_characters(token: str) -> None:
    if not token:
        raise ScopeError(token, "empty scope")
    if not _OAUTH_TOKEN.fullmatch(token):
        bad = next(c for c in token if not _OAUTH_TOKEN.fullmatch(c))
        raise ScopeError(token, f"contains {bad!r}, which OAuth scopes may not contain "
                                "(printable ASCII only; no spaces, quotes or backslashes; encode others as %XX)")


def _launch_reason(token: str) -> str:
    prefix, _, name = token.partition("/")
    if prefix != "launch":
        return f"'{prefix}' must be lower case: 'launch/{name}'"
    if not name:
        return "nothing after 'launch/': use launch/patient or launch/encounter"
    if f"launch/{name.lower()}" in FLAG_FIELDS:
        return f"launch context names are lower case: 'launch/{name.lower()}'"
    return f"unknown launch context '{name}': this server offers launch/patient and launch/encounter"


def _permissions(token: str, permissions: str) -> tuple[str, int]:
    """The v2 letters a permission suffix grants, and its SMART version (1 or 2)."""
    if permissions in V1_PERMISSIONS:
        return V1_PERMISSIONS[permissions], 1
    if not permissions:
        raise ScopeError(token, "missing permissions after '.': v2 letters from c, r, u, d, s (e.g. 'rs') "
                                "or v1 'read', 'write' or '*'")
    if "." in permissions:
        raise ScopeError(token, "more than one '.': the form is context/Type.permissions")
    if set(permissions) <= set(LETTERS):
        repeated = [c for c in LETTERS if permissions.count(c) > 1]
        if repeated:
            raise ScopeError(token, f"permission letter '{repeated[0]}' appears more than once in '{permissions}'")
        in_order = "".join(c for c in LETTERS if c in permissions)
        if permissions != in_order:
            raise ScopeError(token, f"v2 permission letters must appear in the order c, r, u, d, s: "
                                    f"write '{in_order}', not '{permissions}'")
        return permissions, 2
    if "*" in permissions or any(word in permissions for word in ("read", "write")):
        raise ScopeError(token, f"'{permissions}' mixes v1 permissions (read, write, *) with v2 letters; use one or the other")
    if permissions.lower() in V1_PERMISSIONS or set(permissions.lower()) <= set(LETTERS):
        raise ScopeError(token, f"permissions are lower case: '{permissions.lower()}', not '{permissions}'")
    raise ScopeError(token, f"'{permissions}' is not a permission: use v2 letters in the order c, r, u, d, s "
                            "(e.g. 'rs') or v1 'read', 'write' or '*'")


def _params(token: str, query: str) -> tuple[tuple[str, str], ...]:
    if not query:
        raise ScopeError(token, "nothing after '?': add search parameters as name=value, or drop the '?'")
    pairs = []
    for part in query.split("&"):
        if not part:
            raise ScopeError(token, "empty search parameter ('&' at an end, or two '&' in a row)")
        raw_name, equals, raw_value = part.partition("=")
        if not equals:
            raise ScopeError(token, f"search parameter '{part}' has no '=value'")
        name, value = _decode(token, raw_name), _decode(token, raw_value)
        if not name:
            raise ScopeError(token, f"search parameter '{part}' has no name before '='")
        if not _PARAM_NAME.fullmatch(name):
            raise ScopeError(token, f"'{name}' is not a search parameter name")
        if not value:
            raise ScopeError(token, f"search parameter '{name}' has an empty value")
        pairs.append((name, value))
    return tuple(pairs)


def _decode(token: str, text: str) -> str:
    """Strict %XX decoding (UTF-8); unquote() would silently keep broken escapes."""
    if "%" not in text:
        return text
    raw, i = bytearray(), 0
    while i < len(text):
        if text[i] != "%":
            raw += text[i].encode("ascii")  # the token was checked to be ASCII
            i += 1
            continue
        digits = text[i + 1:i + 3]
        if len(digits) != 2 or not all(d in string.hexdigits for d in digits):
            raise ScopeError(token, f"'%' must be followed by two hex digits (found '{text[i:i + 3]}')")
        raw.append(int(digits, 16))
        i += 3
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScopeError(token, f"percent-encoded '{text}' is not valid UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        raise ScopeError(token, f"percent-encoded '{text}' decodes to a control character")
    return decoded


_INTERACTIONS = {
    "read": "r", "vread": "r", "history": "r", "history-instance": "r",
    "search": "s", "search-type": "s", "search-system": "s", "history-type": "s", "history-system": "s",
    "create": "c", "update": "u", "patch": "u", "delete": "d",
}


def interaction_letter(interaction: str) -> str:
    """The SMART v2 letter that a FHIR REST interaction needs."""
    try:
        return _INTERACTIONS[interaction]
    except (KeyError, TypeError):
        raise ValueError(f"unknown FHIR interaction {interaction!r}") from None


def _check_letter(letter: str) -> None:
    if not isinstance(letter, str) or len(letter) != 1 or letter not in LETTERS:
        raise ValueError(f"permission letter must be one of c, r, u, d, s (got {letter!r})")


def grants(scope: ResourceScope, context: str, resource_type: str, letter: str) -> bool:
    """Whether the scope allows `letter` on `resource_type` in `context` (search-parameter limits aside)."""
    _check_letter(letter)
    return (scope.context == context and scope.resource in ("*", resource_type)
            and letter in scope.permissions)


def access(scopes: Iterable[ResourceScope], context: str, resource_type: str, letter: str) -> Access:
    """Whether any scope allows the action and, if only granular scopes do, the search filters to apply."""
    if isinstance(scopes, ScopeSet):
        scopes = scopes.resource
    matching = [s for s in scopes if grants(s, context, resource_type, letter)]
    if not matching:
        wanted = "rs" if letter in "rs" else letter  # read and search are asked for together in practice
        return Access(False, (), f"{context}/{resource_type}.{wanted}")
    if any(not s.params for s in matching):
        return Access(True, None, "")
    return Access(True, tuple(dict.fromkeys(s.params for s in matching)), "")


def is_narrower_or_equal(requested: ScopeSet, granted: ScopeSet) -> bool:
    """Whether `requested` asks for nothing beyond `granted` (the refresh-token `scope` rule)."""
    if any(getattr(requested, name) and not getattr(granted, name) for name in FLAG_FIELDS.values()):
        return False
    if not set(requested.other) <= set(granted.other):
        return False
    return all(_covered(scope, granted.resource) for scope in requested.resource)


def _covered(scope: ResourceScope, granted: Iterable[ResourceScope]) -> bool:
    return scope.permissions <= _allowed_letters(scope, granted)


def _allowed_letters(scope: ResourceScope, granted: Iterable[ResourceScope]) -> set[str]:
    # Scopes add up ("Observation.rs" == "Observation.r Observation.s"), so pool the letters of every
    # granted scope that reaches the same data. A granted scope's params are ANDed filters, so it reaches
    # the requested data when its params are a subset of the requested ones (none = no filter).
    wanted = set(scope.params)
    letters: set[str] = set()
    for g in granted:
        if g.context == scope.context and g.resource in ("*", scope.resource) and set(g.params) <= wanted:
            letters |= g.permissions
    return letters


def within_registration(requested: ScopeSet, registered: ScopeSet) -> tuple[ScopeSet, list[str]]:
    """The requested scopes a client's registered `scope` (RFC 7591) covers, and the tokens it does not.

    A registered `patient/*.rs` covers a requested `patient/Observation.rs`, and narrows a requested
    `patient/Condition.cruds` to `patient/Condition.rs` (dropping the write letters); a registered
    `launch openid` covers `launch` but not `offline_access`."""
    dropped: list[str] = []
    kept_resource = []
    for scope in requested.resource:
        if _covered(scope, registered.resource):
            kept_resource.append(scope)
            continue
        letters = _allowed_letters(scope, registered.resource) & scope.permissions
        if letters:
            kept_resource.append(_with_params(replace(scope, permissions=frozenset(letters)), scope.params))
        dropped.append(scope.text)
    flags = {}
    for token, name in FLAG_FIELDS.items():
        asked = getattr(requested, name)
        flags[name] = asked and getattr(registered, name)
        if asked and not flags[name]:
            dropped.append(token)
    other = tuple(token for token in requested.other if token in registered.other)
    dropped += [token for token in requested.other if token not in registered.other]
    kept = replace(requested, resource=tuple(kept_resource), other=other, **flags)
    return kept, dropped


def restrict_to(requested: ScopeSet, allowed_contexts: set[str]) -> ScopeSet:
    """The same scopes without the resource scopes of other contexts (e.g. no system/ in a user launch)."""
    return replace(requested, resource=tuple(s for s in requested.resource if s.context in allowed_contexts))


def _letters(permissions: Iterable[str]) -> str:
    return "".join(c for c in LETTERS if c in permissions)


def _with_params(scope: ResourceScope, params: tuple[tuple[str, str], ...]) -> ResourceScope:
    query = "&".join(f"{quote(n, safe=_SAFE_NAME)}={quote(v, safe=_SAFE_VALUE)}" for n, v in params)
    text = f"{scope.context}/{scope.resource}.{_letters(scope.permissions)}" + (f"?{query}" if query else "")
    return replace(scope, params=params, version=2, text=text)


def to_v2(scope: ResourceScope) -> ResourceScope:
    """The v2 spelling of a v1 scope ("patient/Observation.read" -> "patient/Observation.rs")."""
    return scope if scope.version == 2 else _with_params(scope, scope.params)


def granular_options(scope: ResourceScope) -> list[ResourceScope]:
    """The per-category sub-scopes a consent page can offer instead of a whole-type scope."""
    if scope.params or scope.resource not in GRANULAR_CATEGORIES:
        return []
    return [_with_params(scope, (("category", value),)) for value, _, _ in GRANULAR_CATEGORIES[scope.resource]]
