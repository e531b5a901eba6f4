"""Bulk Data export (HL7 Bulk Data Access IG v2), the pure part: parameters, authorization, manifest.

No Flask, no threads, no files here. The kick-off request becomes an `ExportRequest`
(`check_headers`, `pairs_from_parameters`, `parse_kickoff`), the token's scopes decide
which types it may export (`authorize`), the file split rule is `SplitPolicy`, and the
status answers are built by `manifest`, `progress_text` and `retry_after`.
bulk_jobs.py runs the export in a thread, bulk_files.py writes the files, bulk_routes.py
is the HTTP side. Every problem a client can cause is a FHIRError (400, or 403 for scopes).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qsl

from mockehr.fhir import search
from mockehr.fhir.outcome import FHIRError
from mockehr.fhir.searchparams import PATIENT_COMPARTMENT, RESOURCE_TYPES
from mockehr.fhir.values import BadValue, date_range

BULK_CAPABILITY = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
OPERATION_DEFINITIONS = {
    "system": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    "patient": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
    "group": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
}
LEVELS = tuple(OPERATION_DEFINITIONS)
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
KICKOFF_ACCEPT = "application/fhir+json"

# What a Patient or Group export is about: the patients and their compartments. Other
# served types (Practitioner, Medication, ...) come along when those resources point at them.
PATIENT_TYPES = ("Patient", *sorted(t for t in PATIENT_COMPARTMENT if t != "Patient"))
_SERVED = frozenset(RESOURCE_TYPES)

PARAMETERS = ("_outputFormat", "_since", "_type", "_typeFilter", "_elements", "patient", "includeAssociatedData")
_SINGLE = ("_outputFormat", "_since")
_FILTER_START = re.compile(r",(?=[A-Z][A-Za-z]*\?)")  # a comma that starts the next Type?query
_ELEMENT = re.compile(r"^(?:(?P<type>[A-Z][A-Za-z]*)\.)?(?P<name>[a-z][A-Za-z0-9]*)$")
_PATIENT_REF = re.compile(r"^(?:.*/)?Patient/(?P<id>[A-Za-z0-9\-.]{1,64})$")

DEFAULT_MAX_LINES = 10_000          # resources per file
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # bytes per file (a file always holds at least one resource)


def _bad(message: str, expression: str | None = None) -> FHIRError:
    return FHIRError(400, "invalid", message, expression)


def _forbidden(message: str, scope: str = "") -> FHIRError:
    headers = {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'} if scope else {}
    return FHIRError(403, "forbidden", message, headers=headers)


@dataclass
class ExportRequest:
    """A checked kick-off request. `types` None: every type the export level covers."""

    level: str                                   # system | patient | group
    group: str | None = None
    types: tuple[str, ...] | None = None
    since: str | None = None
    since_epoch: float | None = None
    output_format: str = NDJSON
    # type -> OR of AND-groups of (param, value), the same shape as granular scope filters
    type_filters: dict = field(default_factory=dict)
    elements: dict = field(default_factory=dict)  # "*" -> for every type; a type -> for that type
    patients: tuple[str, ...] | None = None       # POST `patient` parameters (ids)
    lenient: bool = False
    notes: list = field(default_factory=list)     # what handling=lenient let through, said in error[]

    def elements_for(self, rtype: str) -> list[str] | None:
        names = [*self.elements.get("*", ()), *self.elements.get(rtype, ())]
        return names or None


# ---- headers and bodies --------------------------------------------------------------------

def _media_types(header: str | None) -> list[str]:
    return [m.split(";")[0].strip().lower() for m in (header or "").split(",") if m.strip()]


def _prefer_tokens(header: str | None) -> dict[str, str]:
    tokens = {}
    for part in (header or "").split(","):
        for piece in part.split(";"):
            name, _, value = piece.strip().partition("=")
            if name.strip():
                tokens[name.strip().lower()] = value.strip().strip('"').lower()
    return tokens


def check_headers(accept: str | None, prefer: str | None) -> bool:
    """The kick-off headers: Accept: application/fhir+json and Prefer: respond-async, else a 400.
    Answers whether Prefer also says handling=lenient."""
    wanted = _media_types(accept)
    if KICKOFF_ACCEPT not in wanted:
        got = f"Accept: {accept}" if accept else "no Accept header"
        raise _bad(f"a bulk export kick-off needs 'Accept: {KICKOFF_ACCEPT}' (the format of its "
                   f"OperationOutcome answers); the request has {got}")
    tokens = _prefer_tokens(prefer)
    if "respond-async" not in tokens:
        got = f"Prefer: {prefer}" if prefer else "no Prefer header"
        raise _bad(f"a bulk export is asynchronous: send 'Prefer: respond-async'; the request has {got}")
    return tokens.get("handling") == "lenient"


def pairs_from_parameters(body: object) -> list[tuple[str, str]]:
    """(name, value) pairs of a POSTed Parameters resource; valueReference gives its reference."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        kind = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise _bad(f"a POST kick-off body must be a Parameters resource, got {kind!r}")
    pairs = []
    for i, parameter in enumerate(body.get("parameter") or []):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or not name:
            raise _bad(f"Parameters.parameter[{i}] has no name", f"Parameters.parameter[{i}].name")
        values = [k for k in parameter if k.startswith("value")]
        if len(values) != 1:
            raise _bad(f"parameter '{name}' must carry exactly one value[x]", f"Parameters.parameter[{i}]")
        value = parameter[values[0]]
        if values[0] == "valueReference" and isinstance(value, dict):
            value = value.get("reference")
        if not isinstance(value, str):
            raise _bad(f"parameter '{name}': {values[0]} must be a string (or a Reference with a reference)",
                       f"Parameters.parameter[{i}].{values[0]}")
        pairs.append((name, value))
    return pairs


# ---- the kick-off parameters ----------------------------------------------------------------

def parse_kickoff(level: str, pairs: list[tuple[str, str]], *, group: str | None = None,
                  lenient: bool = False, post: bool = False) -> ExportRequest:
    """Check every kick-off parameter; raises FHIRError 400 naming the first problem. With
    handling=lenient, what the server does not support is ignored and noted instead."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    req = ExportRequest(level, group=group, lenient=lenient)

    def refuse(message: str) -> None:
        if not lenient:
            raise _bad(message)
        req.notes.append(f"{message} (ignored: Prefer: handling=lenient)")

    values: dict[str, list[str]] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            refuse(f"'{name}' is not a $export parameter this server supports (it supports {', '.join(PARAMETERS)})")
            continue
        values.setdefault(name, []).append(value)
    for name in _SINGLE:
        if len(set(values.get(name, []))) > 1:
            raise _bad(f"{name} is given {len(values[name])} times with different values; give it once")

    fmt = values.get("_outputFormat", [NDJSON])[0].strip()
    if fmt not in OUTPUT_FORMATS:
        raise _bad(f"_outputFormat '{fmt}' is not supported; use one of {', '.join(OUTPUT_FORMATS)}",
                   "_outputFormat")
    req.output_format = NDJSON
    if "_since" in values:
        req.since = values["_since"][0].strip()
        try:
            req.since_epoch = date_range(req.since)[0]
        except BadValue as exc:
            raise _bad(f"_since: {exc}", "_since") from None
    if "_type" in values:
        req.types = _types(values["_type"], level, refuse)
    if "_typeFilter" in values:
        req.type_filters = _type_filters(values["_typeFilter"], req.types, refuse)
    if "_elements" in values:
        req.elements = _elements(values["_elements"])
    if "patient" in values:
        req.patients = _patients(values["patient"], level, post)
    if "includeAssociatedData" in values:
        refuse(f"includeAssociatedData ({', '.join(values['includeAssociatedData'])}) is not supported: this server "
               "keeps no Provenance presets")
    return req


def _split(raws: list[str]) -> list[str]:
    return [item.strip() for raw in raws for item in raw.split(",") if item.strip()]


def _types(raws: list[str], level: str, refuse) -> tuple[str, ...]:
    wanted: list[str] = []
    for name in _split(raws):
        if name not in _SERVED:
            refuse(f"_type: '{name}' is not a resource type this server serves")
        elif name not in wanted:
            wanted.append(name)
    if not wanted:
        raise _bad("_type leaves nothing to export", "_type")
    if level != "system" and not set(wanted) & set(PATIENT_TYPES):
        raise _bad(f"_type asks only for {', '.join(wanted)}, outside the patient compartment: a {level}-level "
                   "export exports patients' data (those types come along when that data points at them); "
                   "use the system-level $export for them", "_type")
    return tuple(wanted)


def _type_filters(raws: list[str], types: tuple[str, ...] | None, refuse) -> dict:
    filters: dict[str, list] = {}
    for raw in raws:
        for query in _FILTER_START.split(raw):
            query = query.strip()
            if not query:
                continue
            rtype, mark, rest = query.partition("?")
            if not mark or not rest:
                raise _bad(f"_typeFilter '{query}' is not a query like Observation?category=laboratory", "_typeFilter")
            if rtype not in _SERVED:
                refuse(f"_typeFilter '{query}': '{rtype}' is not a resource type this server serves")
                continue
            if types is not None and rtype not in types:
                refuse(f"_typeFilter '{query}' is about {rtype}, which _type does not ask for")
                continue
            pairs = parse_qsl(rest, keep_blank_values=True)
            results = sorted({name for name, _ in pairs if name in search.RESULT_PARAMS})
            if results:
                raise _bad(f"_typeFilter '{query}': {', '.join(results)} shape search results and cannot filter an "
                           "export", "_typeFilter")
            try:
                parsed = search.parse(rtype, pairs)
            except FHIRError as exc:
                raise _bad(f"_typeFilter '{query}': {exc.diagnostics}", "_typeFilter") from None
            if parsed.ignored:
                refuse(f"_typeFilter '{query}': {'; '.join(parsed.ignored)}")
                known = {c.param for c in parsed.criteria}
                pairs = [(n, v) for n, v in pairs if n.partition(":")[0] in known]
                if not pairs:
                    continue
            filters.setdefault(rtype, []).append(tuple(pairs))
    return {rtype: tuple(groups) for rtype, groups in filters.items()}


def _elements(raws: list[str]) -> dict:
    elements: dict[str, list[str]] = {}
    for item in _split(raws):
        m = _ELEMENT.match(item)
        if not m:
            raise _bad(f"_elements: '{item}' is not an element name like 'id' or 'Patient.name' (only top-level "
                       "elements)", "_elements")
        rtype = m.group("type") or "*"
        if rtype != "*" and rtype not in _SERVED:
            raise _bad(f"_elements: '{item}' names '{rtype}', not a resource type this server serves", "_elements")
        elements.setdefault(rtype, []).append(m.group("name"))
    return {rtype: tuple(names) for rtype, names in elements.items()}


def _patients(raws: list[str], level: str, post: bool) -> tuple[str, ...]:
    if not post:
        raise _bad("the 'patient' parameter is accepted in a POSTed Parameters body only", "patient")
    if level == "system":
        raise _bad("the 'patient' parameter applies to Patient and Group exports, not to the system-level $export",
                   "patient")
    ids = []
    for raw in raws:
        m = _PATIENT_REF.match(raw.strip())
        if not m:
            raise _bad(f"patient: '{raw}' is not a reference like Patient/123", "patient")
        ids.append(m.group("id"))
    return tuple(dict.fromkeys(ids))


# ---- authorization ------------------------------------------------------------------------

def authorize(req: ExportRequest, contexts: set[str], user: str | None,
              decide: Callable[[str], object]) -> dict[str, tuple | None]:
    """Which types this token may export, each with its granular-scope filters (None: no filter).

    system/ scopes may start any export; user/ scopes only a Group export by a practitioner;
    patient/ scopes none. `decide(rtype)` is the auth side's answer for reading that type
    (an enforce.Decision). Types the token may not read are left out; asking for one in
    _type is a 403 naming the scope it lacks (noted and left out under handling=lenient)."""
    if "system" not in contexts:
        if "user" not in contexts:
            raise _forbidden("a bulk export needs system/ scopes (a backend service, client_credentials) or, for a "
                             "Group, user/ scopes of a practitioner; this token has "
                             + (", ".join(f"{c}/" for c in sorted(contexts)) + " scopes" if contexts
                                else "no resource scopes"), "system/*.rs")
        if req.level != "group":
            raise _forbidden(f"user/ scopes may start a Group export only, not a {req.level}-level one; the "
                             "system-level and Patient exports need system/ scopes", "system/*.rs")
        if not (user or "").startswith("Practitioner/"):
            raise _forbidden(f"a Group export with user/ scopes must be started by a practitioner; this token's "
                             f"user is {user or 'nobody'}")
    wanted = req.types or RESOURCE_TYPES
    allowed: dict[str, tuple | None] = {}
    for rtype in wanted:
        decision = decide(rtype)
        if decision.allowed and decision.patient is None:
            allowed[rtype] = decision.filters
        elif req.types is not None:
            scope = decision.missing_scope or f"system/{rtype}.r"
            message = f"the token may not export {rtype}: {decision.reason or 'its scopes are limited to one patient'}"
            if not req.lenient:
                raise _forbidden(message, scope)
            req.notes.append(f"{message} (left out: Prefer: handling=lenient)")
    primary = [t for t in allowed if req.level == "system" or t in PATIENT_TYPES]
    if not primary:
        what = "any resource type" if req.level == "system" else "any type of the patient compartment"
        raise _forbidden(f"the token's scopes do not allow reading {what}, so there is nothing it may export",
                         "system/*.rs")
    return allowed


def group_patients(group: dict) -> list[str]:
    """Ids of the Patients a Group lists (members marked inactive left out)."""
    ids = []
    for member in group.get("member") or []:
        if member.get("inactive") is True:
            continue
        m = _PATIENT_REF.match(str((member.get("entity") or {}).get("reference", "")))
        if m and m.group("id") not in ids:
            ids.append(m.group("id"))
    return ids


# ---- files, progress, manifest ----------------------------------------------------------------

@dataclass(frozen=True)
class SplitPolicy:
    """When an output file is full: at `max_lines` resources, or when the next line would take
    it past `max_bytes` (a file always takes its first line, however long)."""

    max_lines: int = DEFAULT_MAX_LINES
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self):
        if self.max_lines < 1 or self.max_bytes < 1:
            raise ValueError("max_lines and max_bytes must be at least 1")

    def fits(self, lines: int, size: int, next_size: int) -> bool:
        return lines == 0 or (lines < self.max_lines and size + next_size <= self.max_bytes)


def file_name(seq: int, rtype: str) -> str:
    return f"{seq}.{rtype}.ndjson"


def failed_files(count: int) -> list[int]:
    """The some-file-generation-failed fault: which output files (1-based, in manifest order)
    fail: every second one, and a lone file too (so the fault always shows)."""
    if count == 1:
        return [1]
    return list(range(2, count + 1, 2))


def progress_text(fraction: float, activity: str) -> str:
    """X-Progress: under 100 characters, as the IG asks."""
    text = f"{math.floor(max(0.0, min(fraction, 1.0)) * 100)}% complete, {activity}"
    return text if len(text) < 100 else text[:96] + "..."


def retry_after(remaining: float) -> int:
    """Seconds a poller should wait: about what is left, at least 1, at most 10."""
    return max(1, min(10, math.ceil(remaining)))


def manifest(transaction_time: str, request_url: str, outputs: list[dict], errors: list[dict]) -> dict:
    """The complete-status body; `output` and `error` are always present, possibly empty."""
    return {"transactionTime": transaction_time, "request": request_url, "requiresAccessToken": True,
            "output": [dict(o) for o in outputs], "error": [dict(e) for e in errors]}
