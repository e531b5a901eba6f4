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
    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.by_key: dict[str, dict[str, set[str]]] = {}
        self.keys_of: dict[str, dict[str, list[str]]] = {}
        self.values_of: dict[str, dict[str, list[Any]]] = {}

    def add(self, rid: str, keys: dict[str, list[str]], values: dict[str, list[Any]]) -> None:
        self.ids.add(rid)
        self.keys_of[rid] = keys
        self.values_of[rid] = values
        for param, param_keys in keys.items():
            table = self.by_key.setdefault(param, {})
            for key in param_keys:
                table.setdefault(key, set()).add(rid)

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


class SearchIndex:
    def __init__(self, extractor: Extractor) -> None:
        self._extract = extractor
        self._types: dict[str, TypeIndex] = {}

    def built(self, rtype: str) -> bool:
        return rtype in self._types

    def build(self, rtype: str, resources: Iterable[dict]) -> TypeIndex:
        index = TypeIndex()
        for resource in resources:
            index.add(resource["id"], *self._extract(resource))
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
