"""Fault specs: parse `KIND[:key=value[,key=value...]]` into a typed `FaultSpec`.

Pure: no Flask, no I/O. `parse_fault` returns a `FaultSpec` or raises
`FaultSpecError` (a ValueError whose text is one sentence), and nothing else,
whatever the string holds. Kinds and keys are case-insensitive, values keep
their case, whitespace around every token is ignored. A value cannot hold a
comma (commas separate the items).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

MAX_SPEC_LENGTH = 1000

REQUEST_KINDS = frozenset({"throttle", "error", "latency", "drop", "slow-body", "jwks-down"})
# Bulk Data export faults (smart-bulk-data-server's simulated errors, spelled as kinds are here);
# decided at the bulk export's own decision points, like the event kinds they are.
BULK_KINDS = frozenset({"transient-error", "file-generation-failed", "some-file-generation-failed", "file-expired"})
# step-up is decided at the authorize endpoint, for the requests whose scopes match its `scope` glob.
EVENT_KINDS = frozenset({"deny", "expire-refresh", "step-up"}) | BULK_KINDS
STATE_KINDS = frozenset({"rotate-keys", "token-lifetime", "revoke-all", "clock", "bad-signature"})
ONE_SHOT_KINDS = frozenset({"rotate-keys", "revoke-all"})    # applied once, via FaultBoard.take_one_shots
LASTING_KINDS = STATE_KINDS - ONE_SHOT_KINDS                 # in force while present, via FaultBoard.active
ANSWER_KINDS = frozenset({"throttle", "error", "jwks-down", "drop"})  # replace the answer: one per request

REQUEST_SELECTORS = ("path", "method", "every", "rate", "count")
EVENT_SELECTORS = ("every", "rate", "count")
DEFAULT_PATH = "/fhir/*"
JWKS_PATH = "/auth/jwks"


class FaultSpecError(ValueError):
    """A fault spec that does not parse; str(error) is one sentence naming the problem."""


@dataclass(frozen=True)
class _Kind:
    name: str
    params: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()
    default_path: str | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return self.params + self.selectors


# Contract kinds first, then the extras; this order is the one error messages list.
_KINDS = {k.name: k for k in (
    _Kind("throttle", ("retry_after",), REQUEST_SELECTORS, DEFAULT_PATH),
    _Kind("error", ("status",), REQUEST_SELECTORS, DEFAULT_PATH),
    _Kind("latency", ("ms",), REQUEST_SELECTORS, DEFAULT_PATH),
    _Kind("rotate-keys", ("keep_old",)),
    _Kind("token-lifetime", ("seconds",)),
    _Kind("deny", (), EVENT_SELECTORS),
    _Kind("expire-refresh", (), EVENT_SELECTORS),
    _Kind("revoke-all"),
    _Kind("drop", (), REQUEST_SELECTORS, DEFAULT_PATH),
    _Kind("clock", ("offset",)),
    _Kind("bad-signature"),
    _Kind("jwks-down", (), REQUEST_SELECTORS, JWKS_PATH),
    _Kind("slow-body", ("bytes_per_second",), REQUEST_SELECTORS, DEFAULT_PATH),
    _Kind("step-up", ("scope",), EVENT_SELECTORS),
    _Kind("transient-error", (), EVENT_SELECTORS),
    _Kind("file-generation-failed", (), EVENT_SELECTORS),
    _Kind("some-file-generation-failed", (), EVENT_SELECTORS),
    _Kind("file-expired", (), EVENT_SELECTORS),
)}
KINDS = tuple(_KINDS)
_ALL_KEYS = frozenset(key for kind in _KINDS.values() for key in kind.keys)

_REQUIRED = object()
_WHOLE = re.compile(r"[+-]?[0-9]+\Z")
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_METHOD = re.compile(r"[A-Za-z]{1,20}\Z")
_PATH = re.compile(r"/[\x21-\x7e]*\Z")
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _quoted(raw: str) -> str:
    return f"'{raw}'" if len(raw) <= 60 else f"'{raw[:57]}...'"


_LARGEST = 2**63 - 1


def _whole(lo: int | None, hi: int | None, what: str):
    """A parser for a whole number in [lo, hi]; `what` completes "'key' must be ..."."""
    def parse(key: str, raw: str) -> int:
        value = None
        if _WHOLE.match(raw):
            try:
                value = int(raw)
            except ValueError:  # more digits than int() takes
                value = None
        if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise FaultSpecError(f"'{key}' must be {what}, got {_quoted(raw)}")
        if abs(value) > _LARGEST:  # the fault list is JSON, whose integers stop at 64 bits
            raise FaultSpecError(f"'{key}' must be {what} and at most {_LARGEST}, got {_quoted(raw)}")
        return value
    return parse


def _status(key: str, raw: str) -> int:
    if not (_WHOLE.match(raw) and len(raw) <= 3 and 400 <= int(raw) <= 599):
        raise FaultSpecError(f"'{key}' must be an HTTP error status 400-599, got {_quoted(raw)}")
    return int(raw)


def _rate(key: str, raw: str) -> float:
    value = float(raw) if _DECIMAL.match(raw) else None
    if value is None or not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"'{key}' must be between 0 and 1, got {_quoted(raw)}")
    return value


def _bool(key: str, raw: str) -> bool:
    try:
        return _BOOLS[raw.lower()]
    except KeyError:
        raise FaultSpecError(f"'{key}' must be true or false, got {_quoted(raw)}") from None


def _method(key: str, raw: str) -> str:
    if not _METHOD.match(raw):
        raise FaultSpecError(f"'{key}' must be an HTTP method such as GET or POST, got {_quoted(raw)}")
    return raw.upper()


_SCOPE_GLOB = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+\Z")  # RFC 6749 3.3 scope-token characters (and glob ones)
_SCOPE_CONTEXTS = ("patient", "user", "system")


def _scope(key: str, raw: str) -> str:
    """A glob over one SMART scope, e.g. patient/MedicationRequest.* or *.cruds or openid."""
    if not _SCOPE_GLOB.match(raw):
        raise FaultSpecError(f"'{key}' must be a glob over one scope such as patient/MedicationRequest.*, "
                             f"got {_quoted(raw)}")
    context, slash, _ = raw.partition("/")
    if slash and context not in _SCOPE_CONTEXTS and context != "launch" and not any(c in context for c in "*?["):
        close = difflib.get_close_matches(context.lower(), _SCOPE_CONTEXTS, n=1)
        hint = f"did you mean '{close[0]}{raw[len(context):]}'?" if close else "use patient, user or system"
        raise FaultSpecError(f"'{key}' names scope context '{context}', which is not patient, user or system "
                             f"({hint})")
    return raw


def _path(key: str, raw: str) -> str:
    if not _PATH.match(raw):
        raise FaultSpecError(f"'{key}' must be a glob over the URL path starting with '/', got {_quoted(raw)}")
    return raw


# key -> (parser, default, example value for "needs" messages)
_PARAMS = {
    "retry_after": (_whole(0, 86_400, "a whole number of seconds from 0 to 86400"), 1, "1"),
    "status": (_status, 500, "503"),
    "ms": (_whole(0, 3_600_000, "a whole number of milliseconds from 0 to 3600000"), _REQUIRED, "200"),
    "keep_old": (_bool, False, "true"),
    "seconds": (_whole(1, 31_536_000, "a whole number of seconds from 1 to 31536000"), _REQUIRED, "60"),
    "offset": (_whole(-315_360_000, 315_360_000, "a whole number of seconds from -315360000 to 315360000"),
               _REQUIRED, "-300"),
    "bytes_per_second": (_whole(1, None, "a whole number >= 1"), 1024, "100"),
    "scope": (_scope, "*", "patient/MedicationRequest.*"),
    "path": (_path, None, "/fhir/*"),
    "method": (_method, None, "GET"),
    "every": (_whole(1, None, "a whole number >= 1"), None, "3"),
    "rate": (_rate, None, "0.5"),
    "count": (_whole(1, None, "a whole number >= 1"), None, "2"),
}


@dataclass(frozen=True)
class FaultSpec:
    """One parsed fault. `params` holds the kind's own keys, typed, defaults filled in
    (do not mutate it); the selectors are fields, None when absent or not taken."""

    kind: str
    params: dict = field(default_factory=dict, hash=False)
    path: str | None = None
    method: str | None = None
    every: int | None = None
    rate: float | None = None
    count: int | None = None
    text: str = field(default="", compare=False)

    def matches(self, method: str, path: str) -> bool:
        """Whether an HTTP request is selected by `path` and `method` (request kinds only).
        A glob ending in '/*' also matches the bare prefix: '/fhir/*' matches '/fhir'."""
        if self.path is None:
            return False
        if self.method is not None and method.upper() != self.method:
            return False
        path = path.split("?", 1)[0]
        return fnmatchcase(path, self.path) or (self.path.endswith("/*") and path == self.path[:-2])

    def matches_scopes(self, scopes) -> bool:
        """Whether an authorization asking for these scope strings is selected by the `scope` glob (step-up).
        A wildcard-type scope counts for every type: patient/*.rs matches 'patient/MedicationRequest.*'."""
        glob = self.params.get("scope")
        if glob is None:
            return True
        return any(_scope_hits(glob, word) for word in scopes)

    def describe(self) -> str:
        """The fault in plain words, e.g. "answer 500 to every 3rd GET on /fhir/*, at most twice"."""
        return _describe(self)


def _scope_hits(glob: str, word: str) -> bool:
    if fnmatchcase(word, glob):
        return True
    context, slash, rest = word.partition("/")
    glob_context, glob_slash, glob_rest = glob.partition("/")
    glob_type, dot, _ = glob_rest.partition(".")
    if slash and glob_slash and dot and rest.startswith("*.") and not any(c in glob_type for c in "*?["):
        return fnmatchcase(f"{context}/{glob_type}{rest[1:]}", glob)
    return False


def parse_fault(text: str) -> FaultSpec:
    """Parse a fault spec; raises FaultSpecError with a one-sentence message."""
    if not isinstance(text, str):
        raise FaultSpecError(f"a fault spec must be a string, got {type(text).__name__}")
    spec = text.strip()
    if not spec:
        raise FaultSpecError("empty fault spec (expected KIND[:key=value,...])")
    if len(spec) > MAX_SPEC_LENGTH:
        raise FaultSpecError(f"fault spec is too long ({len(spec)} characters, at most {MAX_SPEC_LENGTH})")
    head, colon, rest = spec.partition(":")
    name = head.strip()
    if not name:
        raise FaultSpecError(f"missing kind before ':' in {_quoted(spec)}")
    kind = _KINDS.get(name.lower())
    if kind is None:
        close = difflib.get_close_matches(name.lower(), KINDS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known kinds: {', '.join(KINDS)}"
        raise FaultSpecError(f"unknown kind {_quoted(name)} ({hint})")
    raws: dict[str, str] = {}
    if colon:
        if not rest.strip():
            raise FaultSpecError(f"nothing after ':' in {_quoted(spec)}")
        for item in rest.split(","):
            item = item.strip()
            if not item:
                raise FaultSpecError(f"empty item between commas in {_quoted(spec)}")
            given, equals, raw = item.partition("=")
            given = given.strip()
            if not equals:
                raise FaultSpecError(f"missing '=' in {_quoted(item)}")
            if not given:
                raise FaultSpecError(f"missing key before '=' in {_quoted(item)}")
            key = given.lower()
            if key not in kind.keys:
                raise _not_taken(kind, given)
            if key in raws:
                raise FaultSpecError(f"duplicate key '{key}'")
            raws[key] = raw.strip()
    values = {key: _PARAMS[key][0](key, raw) for key, raw in raws.items()}
    params = {}
    for key in kind.params:
        if key in values:
            params[key] = values[key]
        elif _PARAMS[key][1] is _REQUIRED:
            raise FaultSpecError(f"{kind.name} needs '{key}' (e.g. '{kind.name}:{key}={_PARAMS[key][2]}')")
        else:
            params[key] = _PARAMS[key][1]
    return FaultSpec(
        kind=kind.name, params=params,
        path=values.get("path", kind.default_path),
        method=values.get("method"), every=values.get("every"),
        rate=values.get("rate"), count=values.get("count"), text=spec)


def _not_taken(kind: _Kind, given: str) -> FaultSpecError:
    if not kind.keys:
        return FaultSpecError(f"{kind.name} does not take {_quoted(given)} (it takes no keys)")
    close = [] if given.lower() in _ALL_KEYS else difflib.get_close_matches(given.lower(), kind.keys, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"it takes {', '.join(kind.keys)}"
    return FaultSpecError(f"{kind.name} does not take {_quoted(given)} ({hint})")


# ---- describe ---------------------------------------------------------------------------

def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _target(spec: FaultSpec, noun: str) -> str:
    every = "every" if not spec.every or spec.every == 1 else f"every {_ordinal(spec.every)}"
    return f"{every} {noun}"


def _tail(spec: FaultSpec) -> str:
    tail = ""
    if spec.rate is not None:
        tail += f", with probability {_number(spec.rate)}"
    if spec.count is not None:
        times = {1: "once", 2: "twice"}.get(spec.count, f"{spec.count} times")
        tail += f", at most {times}"
    return tail


def _describe(spec: FaultSpec) -> str:
    p = spec.params
    if spec.kind in REQUEST_KINDS:
        target = _target(spec, f"{spec.method or 'request'} on {spec.path}")
        what = {
            "throttle": lambda: f"answer 429 (Retry-After: {p['retry_after']} s) to {target}",
            "error": lambda: f"answer {p['status']} to {target}",
            "jwks-down": lambda: f"answer 503 to {target}",
            "latency": lambda: f"wait {p['ms']} ms before answering {target}",
            "drop": lambda: f"close the connection without answering {target}",
            "slow-body": lambda: f"drip the answer at {p['bytes_per_second']} bytes/s to {target}",
        }[spec.kind]()
        return what + _tail(spec)
    if spec.kind == "deny":
        return f"end {_target(spec, 'authorization')} in access_denied{_tail(spec)}"
    if spec.kind == "step-up":
        scopes = "" if p["scope"] == "*" else f" asking for {p['scope']}"
        return (f"demand a second factor (step-up to urn:mockehr:loa:2) at "
                f"{_target(spec, 'authorization' + scopes)}{_tail(spec)}")
    if spec.kind == "expire-refresh":
        return f"answer invalid_grant to {_target(spec, 'refresh grant')}{_tail(spec)}"
    if spec.kind == "transient-error":
        return f"answer 500 (transient) to {_target(spec, 'bulk export status poll')}{_tail(spec)}"
    if spec.kind == "file-generation-failed":
        return f"fail {_target(spec, 'bulk export')} (500 at its status URL){_tail(spec)}"
    if spec.kind == "some-file-generation-failed":
        return f"fail every second file of {_target(spec, 'bulk export')} (listed in error[]){_tail(spec)}"
    if spec.kind == "file-expired":
        return f"answer 410 (expired) to {_target(spec, 'bulk export file download')}{_tail(spec)}"
    if spec.kind == "rotate-keys":
        old = "keeping the old keys in the JWKS" if p["keep_old"] else "dropping the old keys"
        return f"rotate the signing keys once, {old}"
    if spec.kind == "revoke-all":
        return "revoke every token issued so far"
    if spec.kind == "token-lifetime":
        return f"issue access tokens that live {p['seconds']} s"
    if spec.kind == "clock":
        offset = p["offset"]
        if offset == 0:
            return "run the server clock on time"
        return f"run the server clock {abs(offset)} s {'ahead' if offset > 0 else 'behind'}"
    if spec.kind == "bad-signature":
        return "sign new tokens with a key that is not in the JWKS"
    raise AssertionError(f"no description for kind {spec.kind!r}")  # pragma: no cover
