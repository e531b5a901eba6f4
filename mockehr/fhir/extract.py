"""Pull search values out of a resource (pure).

`extract(resource)` answers two dicts for the store's index:
  keys   param -> hashable keys (tokens, references): looked up in hash maps
  values param -> comparable values (strings, date ranges, quantities, token text)
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

from mockehr.fhir import values as v
from mockehr.fhir.searchparams import params_for

_ABSOLUTE_REF = re.compile(r"^https?://.+/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_RELATIVE_REF = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def walk(node: Any, parts: list[str]) -> Iterator[Any]:
    """Every value at a dotted path; lists are flattened, `x[x]` matches choice elements."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item, parts)
        return
    if not parts:
        yield node
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head.startswith("extension('"):  # extension('URL'): the extensions with that url
        url = head[len("extension('"):-2]
        for ext in node.get("extension", []) if isinstance(node.get("extension"), list) else []:
            if isinstance(ext, dict) and ext.get("url") == url:
                yield from walk(ext, rest)
    elif head.endswith("[x]"):
        stem = head[:-3]
        for key, child in node.items():
            if key.startswith(stem) and key[len(stem):len(stem) + 1].isupper():
                yield from walk(child, rest)
    elif head in node:
        yield from walk(node[head], rest)


_SEGMENT = re.compile(r"extension\('[^']*'\)|[^.]+")


@lru_cache(maxsize=None)
def _segments(path: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(_SEGMENT.findall(alternative)) for alternative in path.split(" | "))


def path_values(resource: dict, path: str) -> Iterator[Any]:
    for segments in _segments(path):
        yield from walk(resource, list(segments))


def reference_target(ref: str) -> tuple[str, str] | None:
    """('Patient', '123') for 'Patient/123' or an absolute URL ending so."""
    m = _RELATIVE_REF.match(ref) or _ABSOLUTE_REF.match(ref)
    return (m.group("type"), m.group("id")) if m else None


def reference_keys(value: Any, only: str | None = None) -> list[str]:
    """Index keys of a reference; with `only`, just references to that resource type."""
    ref = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(ref, str) or not ref or ref.startswith("#"):
        return []
    target = reference_target(ref)
    if only and (target is None or target[0] != only):
        return []
    if target:
        return [f"{target[0]}/{target[1]}", target[1]]
    return [ref]


_TYPED_PATH = re.compile(r"^(?P<path>.+)\.where\(resolve\(\) is (?P<type>[A-Z][A-Za-z]+)\)$")


@lru_cache(maxsize=None)  # a few hundred distinct paths, asked for on every indexed resource
def split_typed_path(path: str) -> tuple[str, str | None]:
    """'subject.where(resolve() is Patient)' -> ('subject', 'Patient'); other paths -> (path, None)."""
    m = _TYPED_PATH.match(path)
    return (m.group("path"), m.group("type")) if m else (path, None)


def _codings(value: Any) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(system, code, text) triples for any coded shape."""
    if isinstance(value, bool):
        yield None, "true" if value else "false", None
    elif isinstance(value, str):
        yield None, value, None
    elif isinstance(value, dict):
        if "coding" in value or "text" in value and "value" not in value:
            for coding in value.get("coding", []):
                if isinstance(coding, dict):
                    yield coding.get("system"), coding.get("code"), coding.get("display")
            if value.get("text"):
                yield None, None, value["text"]
        elif "value" in value and "code" not in value:  # Identifier, ContactPoint
            type_text = (value.get("type") or {}).get("text") if isinstance(value.get("type"), dict) else None
            yield value.get("system"), str(value["value"]), type_text
        else:  # Coding, or a Quantity searched as a token
            yield value.get("system"), value.get("code"), value.get("display")


def token_keys(value: Any) -> tuple[list[str], list[str]]:
    keys, texts = [], []
    for system, code, text in _codings(value):
        keys.extend(v.token_keys(system, code))
        if text:
            texts.append(v.normalize_string(text))
    return keys, texts


_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def string_values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    parts = _NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
    out = []
    for part in parts:
        item = value.get(part)
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list):
            out.extend(x for x in item if isinstance(x, str))
    return out


def date_values(value: Any) -> list[tuple[float, float]]:
    try:
        if isinstance(value, str):
            return [v.date_range(value)]
        if isinstance(value, dict) and ("start" in value or "end" in value):
            low = v.date_range(value["start"])[0] if value.get("start") else v.NEG_INF
            high = v.date_range(value["end"])[1] if value.get("end") else v.POS_INF
            return [(low, high)]
    except v.BadValue:
        pass  # stored data that is not a date simply never matches
    return []


def quantity_values(value: Any) -> list[tuple[float, str | None, str | None, str | None]]:
    if isinstance(value, dict) and isinstance(value.get("value"), (int, float)) and not isinstance(value.get("value"), bool):
        return [(float(value["value"]), value.get("system"), value.get("code"), value.get("unit"))]
    return []


def extract(resource: dict) -> tuple[dict[str, list[str]], dict[str, list[Any]]]:
    keys: dict[str, list[str]] = {}
    values: dict[str, list[Any]] = {}
    found_by_path: dict[str, list[Any]] = {}
    for name, (ptype, path) in params_for(resource.get("resourceType", "")).items():
        path, only = split_typed_path(path)
        found = found_by_path.get(path)
        if found is None:
            found = found_by_path[path] = list(path_values(resource, path))
        if not found:
            continue
        if ptype == "token":
            texts: list[str] = []
            for item in found:
                k, t = token_keys(item)
                keys.setdefault(name, []).extend(k)
                texts.extend(t)
            if texts:
                values[name + ":text"] = texts
        elif ptype == "reference":
            refs = [key for item in found for key in reference_keys(item, only)]
            if refs:
                keys[name] = refs
        elif ptype == "string":
            strings = [s for item in found for s in string_values(item)]
            if strings:
                values[name] = strings
        elif ptype == "date":
            values[name] = [r for item in found for r in date_values(item)]
        elif ptype == "quantity":
            values[name] = [q for item in found for q in quantity_values(item)]
        elif ptype == "uri":
            values[name] = [item for item in found if isinstance(item, str)]
    return keys, values
