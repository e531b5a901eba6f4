"""Structural validation of FHIR R4 JSON resources, fast and dependency-free.

The element tables come from r4_structure.json (generated from the fhirclient
R4 models by scripts/gen_r4_structure.py), loaded lazily once. Validation is a
single walk over the JSON guided by those tables; it never raises, whatever it
is given, and returns at most MAX_ISSUES issues (plus one note if it stopped).

Checked: JSON shape, resourceType, unknown elements (with a suggestion), `_x`
primitive extension siblings, list vs single, required elements, choice groups,
primitive formats, empty values and nulls, Reference.reference syntax and local
(#id) targets, Extension (url, value[x] xor nested extensions), Narrative.div,
nested contained resources, and the REQUIRED terminology bindings listed in
validate_codes.py (code elements, and the codings of a bound CodeableConcept
that carry its system). Not checked: other bindings, invariants other than
those above, profiles, Bundle-type rules.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

import orjson

from mockehr.fhir.validate_codes import BINDINGS, ValueSet, code_problem
from mockehr.fhir.validate_primitives import ABS_URL_RE, CHECKS, REF_CONDITIONAL_RE, REF_ID_RE, kind, show

MAX_ISSUES = 50
MAX_DEPTH = 100  # nested JSON objects; legit resources stay far below
_STRUCTURE = Path(__file__).with_name("r4_structure.json")


@dataclass(frozen=True, slots=True)
class Issue:
    severity: str  # "error" | "warning"
    code: str  # OperationOutcome issue-type code: structure, required, value, ...
    expression: str  # FHIRPath-ish location, e.g. "Observation.code.coding[0].system"
    message: str


@functools.cache
def _schema() -> tuple[dict, frozenset]:
    """{type: (elements, required, choices)}, resource type names.

    elements: json name -> (type, is_list, choice group | None, is_primitive,
    required-binding ValueSet | None);
    required: ((label, member names), ...) where any member (or its `_member`)
    satisfies it; choices: group -> member names.
    """
    raw = orjson.loads(_STRUCTURE.read_bytes())
    types = {}
    for tname, spec in raw["types"].items():
        elements, choices, required = {}, {}, {}
        bindings = BINDINGS.get(tname, {})
        for name, el in spec.items():
            group = el.get("choice")
            elements[name] = (el["type"], el.get("list", False), group, el["type"][0].islower(), bindings.get(name))
            if group:
                choices.setdefault(group, []).append(name)
            if el.get("required"):
                required[f"{group}[x]" if group else name] = group or name
        choices = {g: tuple(sorted(m)) for g, m in choices.items()}
        req = tuple((label, choices.get(key, (key,))) for label, key in sorted(required.items()))
        types[tname] = (elements, req, choices)
    return types, frozenset(raw["resourceTypes"])


def resource_types() -> frozenset[str]:
    """All concrete FHIR R4 resource type names."""
    return _schema()[1]


@functools.cache
def required_elements(rtype: str) -> frozenset[str]:
    """Top-level elements a resource of this type must carry (every member of a required choice)."""
    spec = _schema()[0].get(rtype)
    if spec is None:
        return frozenset()
    return frozenset(name for _, members in spec[1] for name in members)


def validate_resource_type(name: object) -> bool:
    return isinstance(name, str) and name in _schema()[1]


class _Full(Exception):
    """Internal: the issue limit is reached, stop walking."""


class _Walk:
    __slots__ = ("issues", "types", "resources", "local_refs")

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.types, self.resources = _schema()
        self.local_refs: list[tuple[str, str]] = []

    def add(self, code: str, expression: str, message: str, severity: str = "error") -> None:
        self.issues.append(Issue(severity, code, expression, message))
        if len(self.issues) >= MAX_ISSUES:
            raise _Full


def validate_resource(resource: object) -> list[Issue]:
    """Issues that make `resource` (parsed JSON) invalid FHIR R4; [] when valid."""
    walk = _Walk()
    root = resource.get("resourceType") if isinstance(resource, dict) else None
    root = root if isinstance(root, str) and root in walk.resources else "Resource"
    try:
        _resource(walk, resource, "", False, 0)
    except _Full:
        walk.issues.append(Issue("warning", "too-costly", root,
                                 f"stopped after {MAX_ISSUES} issues; fix these and retry"))
    except RecursionError:  # only reachable with an unusually low recursion limit
        walk.issues.append(Issue("error", "too-costly", root, "resource is nested too deeply"))
    return walk.issues


def _suggest(word: str, options) -> str:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _resource(walk: _Walk, value: object, path: str, contained: bool, depth: int) -> None:
    """A whole resource: top level, contained, Bundle.entry.resource, ..."""
    where = path or "Resource"
    if not isinstance(value, dict):
        walk.add("structure", where, f"{where}: a resource must be a JSON object, got {kind(value)}")
        return
    rtype = value.get("resourceType")
    if rtype is None:
        walk.add("required", f"{where}.resourceType", f"{where}.resourceType is required")
        return
    if not isinstance(rtype, str) or rtype not in walk.resources:
        hint = _suggest(rtype, walk.resources) if isinstance(rtype, str) else ""
        walk.add("invalid", f"{where}.resourceType",
                 f"{where}.resourceType: unknown resource type {show(rtype)}{hint}")
        return
    path = path or rtype
    if contained:
        if "contained" in value:  # dom-2
            walk.add("invariant", f"{path}.contained",
                     f"{path}.contained: a contained resource cannot itself contain resources")
        _object(walk, value, rtype, path, depth)
        return
    # '#id' resolves within this resource; an exception ends the whole walk anyway
    outer, walk.local_refs = walk.local_refs, []
    _object(walk, value, rtype, path, depth)
    if walk.local_refs:
        _check_local_refs(walk, value.get("contained"))
    walk.local_refs = outer


def _check_local_refs(walk: _Walk, contained: object) -> None:
    ids = set()
    for item in contained if isinstance(contained, list) else ():
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            ids.add(item["id"])
    for expression, ref in walk.local_refs:
        if ref[1:] not in ids:
            walk.add("invariant", expression,
                     f"{expression}: '{ref}' does not match the id of any contained resource")


def _object(walk: _Walk, obj: object, tname: str, path: str, depth: int) -> None:
    """A complex-type value: checks its keys against the element table of `tname`."""
    if not isinstance(obj, dict):
        walk.add("structure", path, f"{path}: expected a JSON object ({tname}), got {kind(obj)} {show(obj)}")
        return
    if not obj:
        walk.add("value", path, f"{path}: empty object; elements must have a value or children")
        return
    if depth >= MAX_DEPTH:
        walk.add("too-costly", path, f"{path}: nested more than {MAX_DEPTH} levels deep")
        return
    elements, required, choices = walk.types[tname]
    depth += 1
    seen_choice: dict[str, str] = {}
    for key, value in obj.items():
        el = elements.get(key)
        if el is None:
            if key == "resourceType" and tname in walk.resources:
                continue
            if isinstance(key, str) and key[:1] == "_":
                base = elements.get(key[1:])
                if base is not None and base[3]:
                    _primitive_ext(walk, obj, key[1:], base[1], value, f"{path}.{key[1:]}", depth)
                    continue
            _unknown(walk, key, elements, choices, path)
            continue
        etype, is_list, group, primitive, vs = el
        if group is not None:
            if group in seen_choice:
                walk.add("structure", f"{path}.{group}",
                         f"{path}.{group}[x]: only one of {seen_choice[group]} and {key} may be present")
            else:
                seen_choice[group] = key
        if is_list and value is not None:
            if not isinstance(value, list):
                walk.add("structure", f"{path}.{key}",
                         f"{path}.{key}: expected an array, got {kind(value)}")
            elif not value:
                walk.add("value", f"{path}.{key}",
                         f"{path}.{key}: empty array; elements must have a value or children")
            else:
                for i, item in enumerate(value):
                    if item is None and primitive and _has_ext_at(obj.get("_" + key), i):
                        continue  # value given only as an extension in the `_key` array
                    _value(walk, item, etype, primitive, key, f"{path}.{key}[{i}]", depth, vs)
        elif isinstance(value, list):
            walk.add("structure", f"{path}.{key}",
                     f"{path}.{key}: expected a single value, not an array")
        else:
            _value(walk, value, etype, primitive, key, f"{path}.{key}", depth, vs)
    for label, members in required:
        if not any(m in obj or "_" + m in obj for m in members):
            hint = f" (one of {', '.join(members)})" if len(members) > 1 else ""
            walk.add("required", f"{path}.{label.removesuffix('[x]')}", f"{path}.{label} is required{hint}")
    if tname == "Extension":
        _extension(walk, obj, path)
    elif tname == "Reference":
        _reference(walk, obj.get("reference"), f"{path}.reference")


def _value(walk: _Walk, value: object, etype: str, primitive: bool, key: str, path: str, depth: int,
           vs: ValueSet | None = None) -> None:
    if value is None:
        walk.add("structure", path, f"{path}: null is not allowed; omit the element instead")
    elif primitive:
        problem = CHECKS[etype](value)
        if problem:
            walk.add("value", path, f"{path}: {problem}")
        elif vs is not None:
            problem = code_problem(vs, value)
            if problem:
                walk.add("code-invalid", path, f"{path}: {problem}")
    elif etype == "Resource":
        _resource(walk, value, path, key == "contained", depth)
    else:
        _object(walk, value, etype, path, depth)
        if vs is not None and isinstance(value, dict):
            _bound_codings(walk, value.get("coding"), vs, path)


def _bound_codings(walk: _Walk, codings: object, vs: ValueSet, path: str) -> None:
    """A CodeableConcept with a required binding: its codings in the bound system need a code of the set."""
    if not isinstance(codings, list):
        return  # reported by the walk
    for i, coding in enumerate(codings):
        if not isinstance(coding, dict) or coding.get("system") != vs.system:
            continue
        code = coding.get("code")
        if isinstance(code, str) and not CHECKS["code"](code):  # a bad code string is reported already
            problem = code_problem(vs, code)
            if problem:
                walk.add("code-invalid", f"{path}.coding[{i}].code", f"{path}.coding[{i}].code: {problem}")


def _has_ext_at(ext: object, i: int) -> bool:
    return isinstance(ext, list) and i < len(ext) and isinstance(ext[i], dict)


def _primitive_ext(walk: _Walk, obj: dict, name: str, is_list: bool, ext: object,
                   path: str, depth: int) -> None:
    """`_name`: id/extension of primitive `name`; for lists, aligned by index with nulls."""
    if not is_list:
        if isinstance(ext, list):
            walk.add("structure", path, f"{path}: _{name} must be an object, not an array")
        else:
            _object(walk, ext, "Element", path, depth)
        return
    if not isinstance(ext, list) or not ext:
        walk.add("structure", path, f"{path}: _{name} must be a non-empty array aligned with {name}")
        return
    values = obj.get(name)
    if values is not None and (not isinstance(values, list) or len(values) != len(ext)):
        walk.add("structure", path, f"{path}: _{name} must have as many items as {name}, using null as a placeholder")
    for i, item in enumerate(ext):
        if item is not None:
            _object(walk, item, "Element", f"{path}[{i}]", depth)
        elif not (isinstance(values, list) and i < len(values)):  # else reported with the value
            walk.add("structure", f"{path}[{i}]", f"{path}[{i}]: null in _{name} without a matching {name} value")


def _unknown(walk: _Walk, key: object, elements: dict, choices: dict, path: str) -> None:
    if not isinstance(key, str):
        walk.add("structure", path, f"{path}: element names must be strings, got {show(key)}")
        return
    if key in choices:
        hint = f" (a choice element needs its type: one of {', '.join(choices[key])})"
    elif key[:1] == "_" and key[1:] in elements:
        hint = f" ('_' siblings are only allowed for primitive elements; {key[1:]} is not one)"
    else:
        hint = _suggest(key, elements)
    walk.add("structure", f"{path}.{key}", f"{path}.{key}: unknown element{hint}")


def _extension(walk: _Walk, obj: dict, path: str) -> None:
    """ext-1: an extension has either a value[x] or nested extensions, not both."""
    has_value = any(isinstance(k, str) and k.startswith(("value", "_value")) for k in obj)
    if has_value and "extension" in obj:
        walk.add("invariant", path, f"{path}: an extension must have either a value[x] or nested extensions, not both")
    elif not has_value and "extension" not in obj:
        walk.add("invariant", path, f"{path}: an extension must have a value[x] or nested extensions")


def _reference(walk: _Walk, ref: object, path: str) -> None:
    """Reference.reference: Type/id[/_history/v], absolute URL, #contained or urn:uuid|oid.

    Type?search (conditional, meant for transactions) is let through: whether a
    reference may be conditional depends on how the resource arrives.
    """
    if not isinstance(ref, str) or not ref:
        return  # absent, or already reported as a bad string
    if ref[0] == "#":
        if len(ref) > 1:
            walk.local_refs.append((path, ref))
        return
    if ref.startswith(("urn:uuid:", "urn:oid:")):
        problem = CHECKS["uuid" if ref[4] == "u" else "oid"](ref)
        if problem:
            walk.add("value", path, f"{path}: {problem}")
        return
    if ABS_URL_RE.fullmatch(ref):
        return  # absolute URL: may point at another server, nothing more to check
    match = REF_ID_RE.fullmatch(ref) or REF_CONDITIONAL_RE.fullmatch(ref)
    if match is None:
        walk.add("value", path, f"{path}: {show(ref)} is not a valid reference "
                 "(expected Type/id, an absolute URL, #contained-id or urn:uuid:...)")
    elif match[1] not in walk.resources:
        walk.add("value", path, f"{path}: {show(ref)} names an unknown resource type "
                 f"'{match[1]}'{_suggest(match[1], walk.resources)}")
