"""In-memory search indexes, one per resource type, built on first use.

The extractor (injected, see mockehr.fhir.extract) turns a resource into
hashable keys (tokens, references) and comparable values (strings, dates,
quantities). Keys go into hash maps param -> key -> ids, so the usual
`patient=X&category=Y` search is two dict lookups and a set intersection.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

Extractor = Callable[[dict], tuple[dict[str, list[str]], dict[str, list[Any]]]]


class TypeIndex:
    def __init__(self, shared: dict | None = None) -> None:
        self.ids: set[str] = set()
        self.by_key: dict[str, dict[str, set[str]]] = {}
        self.keys_of: dict[str, dict[str, list[str]]] = {}
        self.values_of: dict[str, dict[str, list[Any]]] = {}
        # value -> the one copy of it kept (see _compact); None: keep what the extractor made
        self._shared = shared
        self.growing = True  # False once built: later writes reuse the shared copies but add none

    def add(self, rid: str, keys: dict[str, list[str]], values: dict[str, list[Any]]) -> None:
        if self._shared is not None:
            keys, values = self._compact(keys), self._compact(values)
        self.ids.add(rid)
        self.keys_of[rid] = keys
        self.values_of[rid] = values
        for param, param_keys in keys.items():
            table = self.by_key.setdefault(param, {})
            for key in param_keys:
                table.setdefault(key, set()).add(rid)

    def _compact(self, found: dict[str, list]) -> dict[str, tuple]:
        """The same keys and values in tuples, each equal string or tuple stored once: the extractor
        makes a new 'Patient/x' or 'http://loinc.org|1234-5' (and date range) for every resource that
        has it, and thousands of resources share them (half the index's memory at 1,000 patients)."""
        canonical = self._shared.setdefault if self.growing else self._shared.get  # written values: no growth
        out = {}
        for param, items in found.items():
            kept = []
            for item in items:
                if type(item) is str or type(item) is tuple:
                    try:
                        item = canonical(item, item)
                    except TypeError:  # a tuple holding something unhashable: kept as it is
                        pass
                kept.append(item)
            out[param] = tuple(kept)
        return out

    def remove(self, rid: str) -> None:
        if rid not in self.ids:
            return
        self.ids.discard(rid)
        for param, param_keys in self.keys_of.pop(rid).items():
            table = self.by_key.get(param, {})
            for key in param_keys:
                bucket = table.get(key)
                if bucket is not None:
                    bucket.discard(rid)
                    if not bucket:
                        del table[key]
        self.values_of.pop(rid, None)

    def lookup(self, param: str, key: str) -> set[str]:
        return self.by_key.get(param, {}).get(key, set())

    def has_param(self, rid: str, param: str) -> bool:
        return param in self.keys_of.get(rid, {}) or param in self.values_of.get(rid, {})

    def values(self, rid: str, param: str) -> list[Any]:
        return self.values_of.get(rid, {}).get(param, [])

    def keys(self, rid: str, param: str) -> list[str]:
        return self.keys_of.get(rid, {}).get(param, [])

    def all_keys(self, rid: str) -> dict[str, list[str]]:
        """param -> keys of one resource (only the params it has); do not change it."""
        return self.keys_of.get(rid, {})


class SearchIndex:
    def __init__(self, extractor: Extractor) -> None:
        self._extract = extractor
        self._types: dict[str, TypeIndex] = {}
        self._shared: dict = {}  # the one copy of each key and value, shared by every type's index

    def built(self, rtype: str) -> bool:
        return rtype in self._types

    def build(self, rtype: str, resources: Iterable[dict]) -> TypeIndex:
        index = TypeIndex(self._shared)
        for resource in resources:
            index.add(resource["id"], *self._extract(resource))
        index.growing = False
        self._types[rtype] = index
        return index

    def get(self, rtype: str) -> TypeIndex | None:
        return self._types.get(rtype)

    def put(self, rtype: str, resource: dict) -> None:
        index = self._types.get(rtype)
        if index is not None:
            index.remove(resource["id"])
            index.add(resource["id"], *self._extract(resource))

    def drop(self, rtype: str, rid: str) -> None:
        index = self._types.get(rtype)
        if index is not None:
            index.remove(rid)

    def forget(self, rtype: str) -> None:
        self._types.pop(rtype, None)
