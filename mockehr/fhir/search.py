"""FHIR search (pure): parse a query into criteria, run it against a type's index.

Parameters: token, string, reference, date, quantity, uri, with the
modifiers each supports; repeated parameters AND, comma-separated values OR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mockehr.fhir import values as v
from mockehr.fhir.extract import reference_target
from mockehr.fhir.outcome import FHIRError
from mockehr.fhir.searchparams import DEFINITIONS, params_for
from mockehr.store.index import TypeIndex

MODIFIERS = {
    "token": {None, "text", "not", "missing"},
    "reference": {None, "missing"},  # plus a target type name: subject:Patient
    "string": {None, "exact", "contains", "missing"},
    "date": {None, "missing"},
    "quantity": {None, "missing"},
    "uri": {None, "missing"},
}
RESULT_PARAMS = {"_count", "_offset", "_sort", "_include", "_revinclude", "_summary", "_elements",
                 "_total", "_format", "_pretty", "_include:iterate", "_revinclude:iterate"}
SUMMARY_MODES = {"count", "data", "text", "false"}
TOTAL_MODES = {"none", "estimate", "accurate"}


@dataclass(frozen=True)
class Criterion:
    param: str
    ptype: str
    modifier: str | None
    values: tuple  # OR'ed, already parsed for their type


@dataclass(frozen=True)
class Include:
    source: str  # resource type holding the reference
    param: str
    target: str | None = None
    iterate: bool = False


@dataclass
class SearchRequest:
    rtype: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = 50
    offset: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    include: list[Include] = field(default_factory=list)
    revinclude: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: str | None = None
    ignored: list[str] = field(default_factory=list)  # what we did not understand, said back


def _bad(message: str, expression: str | None = None) -> FHIRError:
    return FHIRError(400, "invalid", message, expression)


def _int(name: str, raw: str, minimum: int = 0) -> int:
    digits = raw[1:] if raw.startswith("-") else raw
    if not (digits.isascii() and digits.isdigit()):  # int() would take '1_0', ' 5' and '٥'
        raise _bad(f"{name} must be a whole number, got '{raw}'")
    number = int(raw)
    if number < minimum:
        raise _bad(f"{name} must be at least {minimum}, got {number}")
    return number


def parse(rtype: str, pairs: list[tuple[str, str]], *, strict: bool = False,
          default_count: int = 50, max_count: int = 1000) -> SearchRequest:
    request = SearchRequest(rtype, count=default_count)
    known = params_for(rtype)

    def unknown(message: str) -> None:
        if strict:
            raise _bad(message + " (Prefer: handling=strict)")
        request.ignored.append(message)

    for name, raw in pairs:
        if name in RESULT_PARAMS:
            _result_param(request, name, raw, max_count, unknown)
            continue
        if raw == "":
            continue  # FHIR: a parameter with an empty value is ignored
        base, _, modifier = name.partition(":")
        if "." in base:
            unknown(f"chained parameter '{name}' is not supported; it was ignored")
            continue
        if base not in known:
            unknown(f"unknown search parameter '{base}' for {rtype}; it was ignored")
            continue
        ptype = known[base][0]
        modifier = modifier or None
        if modifier not in MODIFIERS[ptype] and not (ptype == "reference" and modifier in DEFINITIONS):
            raise _bad(f"modifier ':{modifier}' is not supported on {ptype} parameter '{base}'")
        request.criteria.append(Criterion(base, ptype, modifier, _parse_values(base, ptype, modifier, raw)))
    return request


def _result_param(request: SearchRequest, name: str, raw: str, max_count: int, unknown) -> None:
    if name == "_count":
        request.count = _int("_count", raw)
        if request.count > max_count:
            request.ignored.append(f"_count={request.count} is above this server's page limit; pages hold {max_count}")
            request.count = max_count
    elif name == "_offset":
        request.offset = _int("_offset", raw)
    elif name == "_sort":
        for key in filter(None, raw.split(",")):
            desc = key.startswith("-")
            param = key.lstrip("-")
            if param not in params_for(request.rtype):
                raise _bad(f"cannot sort by '{param}': not a search parameter of {request.rtype}")
            request.sort.append((param, desc))
    elif name.startswith("_include") or name.startswith("_revinclude"):
        reverse = name.startswith("_revinclude")
        include = _parse_include(request.rtype, raw, reverse, name.endswith(":iterate"))
        if include is None:
            unknown(f"{name}={raw} is not supported; it was ignored")
        else:
            (request.revinclude if reverse else request.include).append(include)
    elif name == "_summary":
        if raw == "true":
            raise _bad("_summary=true is not supported; use count, data, text or false")
        if raw not in SUMMARY_MODES:
            raise _bad(f"_summary must be one of count, data, text, false; got '{raw}'")
        request.summary = raw
    elif name == "_elements":
        request.elements = [e.strip() for e in raw.split(",") if e.strip()]
    elif name == "_total":
        if raw not in TOTAL_MODES:
            raise _bad(f"_total must be none, estimate or accurate; got '{raw}'")
        request.total = raw


def _parse_include(rtype: str, raw: str, reverse: bool, iterate: bool) -> Include | None:
    parts = raw.split(":")
    if len(parts) not in (2, 3) or parts[0] not in DEFINITIONS:
        return None
    source, param = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if not reverse and source != rtype and not iterate:
        raise _bad(f"_include={raw} names {source}, but this search is for {rtype}")
    if params_for(source).get(param, ("",))[0] != "reference":
        raise _bad(f"_include/_revinclude needs a reference parameter; '{param}' is not one on {source}")
    return Include(source, param, target, iterate)


def _parse_values(param: str, ptype: str, modifier: str | None, raw: str) -> tuple:
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise _bad(f"{param}:missing must be true or false, got '{raw}'")
        return (raw == "true",)
    items = _split_or(raw)
    try:
        if ptype == "date":
            return tuple((p, v.date_range(d)) for p, d in map(v.split_prefix, items))
        if ptype == "quantity":
            return tuple(_parse_quantity(item) for item in items)
        if ptype == "reference":
            return tuple(_reference_key(param, modifier, item) for item in items)
        if ptype == "string" and modifier != "exact" or ptype == "token" and modifier == "text":
            return tuple(v.normalize_string(item) for item in items)
    except v.BadValue as exc:
        raise _bad(f"invalid value for '{param}': {exc}", param) from None
    return tuple(items)


def _split_or(raw: str) -> list[str]:
    """Split on commas that are not escaped with a backslash."""
    items, current, escaped = [], [], False
    for ch in raw:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [item for item in items if item != ""]


def _parse_quantity(text: str) -> tuple:
    prefix, rest = v.split_prefix(text)
    number, _, unit = rest.partition("|")
    system, _, code = unit.partition("|") if "|" in unit else ("", "", unit)
    return prefix, v.number_range(number), system or None, code or None


def _reference_key(param: str, modifier: str | None, text: str) -> str:
    target = reference_target(text)
    if target:
        return f"{target[0]}/{target[1]}"
    if modifier:  # subject:Patient=123
        return f"{modifier}/{text}"
    if param == "patient":
        return f"Patient/{text}"
    return text


# -- running ---------------------------------------------------------------

class Budget:
    """A search's time allowance (Settings.search_time_budget): check() raises a 422 too-costly once spent."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds if seconds > 0 else None

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise FHIRError(422, "too-costly", f"this search took longer than the server allows ({self.seconds:g} s, "
                            "MOCKEHR_SEARCH_TIME_BUDGET) and was stopped; narrow it (a patient, code or date), "
                            "or ask for fewer _include/_revinclude")


def run(request: SearchRequest, index: TypeIndex, budget: Budget | None = None) -> list[str]:
    """Ids that match every criterion, in the requested order; `budget` stops a search that runs too long."""
    hashed = [c for c in request.criteria if _is_hashed(c)]
    filtered = [c for c in request.criteria if not _is_hashed(c)]
    candidates: set[str] | None = None
    for criterion in sorted(hashed, key=lambda c: _bucket_size(c, index)):
        buckets = [index.lookup(criterion.param, key) for key in criterion.values]
        # One value: use the index's own bucket (never mutated here); several: their union.
        matched = buckets[0] if len(buckets) == 1 else set().union(*buckets)
        candidates = matched if candidates is None else candidates & matched
        if not candidates:
            return []
    ids = index.ids if candidates is None else candidates
    if filtered:
        if budget is None or budget.deadline is None:
            ids = [rid for rid in ids if all(_matches(c, index, rid) for c in filtered)]
        else:
            kept = []
            for n, rid in enumerate(ids):
                if not n & 511:
                    budget.check()
                if all(_matches(c, index, rid) for c in filtered):
                    kept.append(rid)
            ids = kept
    if budget is not None:
        budget.check()
    return _sorted(list(ids), request.sort, index, params_for(request.rtype))


def matching(request: SearchRequest, index: TypeIndex) -> set[str]:
    """Ids that match every criterion, unordered: run() without the sort, for access filters (granular
    scopes), which only ask "is this id in?". The answer may be the index's own set: do not change it."""
    candidates: set[str] | None = None
    for criterion in sorted((c for c in request.criteria if _is_hashed(c)), key=lambda c: _bucket_size(c, index)):
        buckets = [index.lookup(criterion.param, key) for key in criterion.values]
        matched = buckets[0] if len(buckets) == 1 else set().union(*buckets)
        candidates = matched if candidates is None else candidates & matched
        if not candidates:
            return set()
    ids = index.ids if candidates is None else candidates
    filtered = [c for c in request.criteria if not _is_hashed(c)]
    if filtered:
        return {rid for rid in ids if all(_matches(c, index, rid) for c in filtered)}
    return ids


def _is_hashed(c: Criterion) -> bool:
    return c.ptype in ("token", "reference") and c.modifier not in ("text", "not", "missing")


def _bucket_size(c: Criterion, index: TypeIndex) -> int:
    return sum(len(index.lookup(c.param, key)) for key in c.values)


def _matches(c: Criterion, index: TypeIndex, rid: str) -> bool:
    if c.modifier == "missing":
        return index.has_param(rid, c.param) != c.values[0]
    if c.ptype == "token":
        if c.modifier == "not":
            keys = index.keys(rid, c.param)
            return not any(value in keys for value in c.values)
        texts = index.values(rid, c.param + ":text")
        return any(t.startswith(q) or f" {q}" in t for q in c.values for t in texts)
    found = index.values(rid, c.param)
    if c.ptype == "string":
        if c.modifier == "exact":
            return any(s == q for q in c.values for s in found)
        normalized = [v.normalize_string(s) for s in found]
        if c.modifier == "contains":
            return any(q in s for q in c.values for s in normalized)
        return any(s.startswith(q) for q in c.values for s in normalized)
    if c.ptype == "date":
        return any(v.date_matches(prefix, target, query) for prefix, query in c.values for target in found)
    if c.ptype == "quantity":
        return any(_quantity_matches(q, item) for q in c.values for item in found)
    if c.ptype == "uri":
        return any(s == q for q in c.values for s in found)
    return False


def _quantity_matches(query: tuple, item: tuple) -> bool:
    prefix, number, system, code = query
    value, item_system, item_code, item_unit = item
    if system and system != item_system:
        return False
    if code and code not in (item_code, item_unit):
        return False
    return v.number_matches(prefix, value, number)


def _sort_value(index: TypeIndex, rid: str, param: str, ptype: str) -> Any:
    if ptype in ("token", "reference"):
        # Sort by the bare code or id, not by 'system|code' or 'Type/id' keys.
        keys = [k for k in index.keys(rid, param) if "|" not in k and "/" not in k]
        return min(keys) if keys else None
    found = index.values(rid, param)
    if not found:
        return None
    if ptype == "string":
        return min(v.normalize_string(s) for s in found)
    if ptype == "date":
        return min(lo for lo, _ in found)
    if ptype == "quantity":
        return min(q[0] for q in found)
    return min(found)


def _sorted(ids: list[str], sort: list[tuple[str, bool]], index: TypeIndex, known: dict) -> list[str]:
    ids.sort()  # the default order, and the last tie-breaker: by id
    if not sort:
        return ids
    for param, desc in reversed(sort):
        if param == "_id":
            ids.sort(reverse=desc)
            continue
        ptype = known[param][0]
        keyed = [(_sort_value(index, rid, param, ptype), rid) for rid in ids]
        present = [pair for pair in keyed if pair[0] is not None]
        missing = [rid for value, rid in keyed if value is None]
        present.sort(key=lambda pair: pair[0], reverse=desc)  # stable: earlier order breaks ties
        ids = [rid for _, rid in present] + missing  # missing values last either way
    return ids
