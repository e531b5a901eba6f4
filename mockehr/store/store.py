"""The resource store: the seed dataset as a read-only base, writes in an overlay.

Every write is persisted to the overlay before it is applied in memory and
acknowledged. All state changes happen under one re-entrant lock, which the
FHIR layer also takes for check-then-write sequences (conditional create).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator

from mockehr.store.index import Extractor, SearchIndex, TypeIndex
from mockehr.store.overlay import Overlay


@dataclass(frozen=True, slots=True)
class Version:
    type: str
    id: str
    vid: int
    last_updated: str  # FHIR instant
    method: str  # SEED, POST, PUT, DELETE
    resource: dict | None  # None when this version is a deletion

    @property
    def deleted(self) -> bool:
        return self.resource is None

    def to_document(self) -> dict:
        return {"type": self.type, "id": self.id, "vid": self.vid, "lastUpdated": self.last_updated,
                "method": self.method, "resource": self.resource}

    @classmethod
    def from_document(cls, doc: dict) -> "Version":
        return cls(doc["type"], doc["id"], doc["vid"], doc["lastUpdated"], doc["method"], doc["resource"])


class VersionConflict(Exception):
    def __init__(self, current: int):
        super().__init__(current)
        self.current = current


def instant(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _seed_version(resource: dict) -> Version:
    meta = resource.get("meta") or {}
    return Version(resource["resourceType"], resource["id"], int(meta.get("versionId", 1)),
                   meta.get("lastUpdated", "1970-01-01T00:00:00Z"), "SEED", resource)


class Store:
    def __init__(self, base: list[dict], overlay: Overlay, extractor: Extractor,
                 clock: Callable[[], float] = time.time):
        self.lock = threading.RLock()
        self._overlay = overlay
        self._clock = clock
        self._index = SearchIndex(extractor)
        self._base: dict[str, dict[str, Version]] = {}
        for resource in base:
            self._base.setdefault(resource["resourceType"], {})[resource["id"]] = _seed_version(resource)
        self._current: dict[str, dict[str, Version]] = {t: dict(ids) for t, ids in self._base.items()}
        self._history: dict[tuple[str, str], list[Version]] = {}
        # Oldest first: every version written through the overlay (for type/system history).
        self._log: list[Version] = []
        for doc in overlay.documents():
            self._apply(Version.from_document(doc))

    # -- reading ---------------------------------------------------------
    def types(self) -> list[str]:
        return sorted(self._current)

    def read(self, rtype: str, rid: str) -> Version | None:
        """The latest version (possibly a deletion), or None if never existed."""
        return self._current.get(rtype, {}).get(rid)

    def vread(self, rtype: str, rid: str, vid: int) -> Version | None:
        for version in self.history(rtype, rid):
            if version.vid == vid:
                return version
        return None

    def history(self, rtype: str, rid: str) -> list[Version]:
        """Versions of one resource, newest first."""
        versions = self._history.get((rtype, rid))
        if versions is None:
            base = self._base.get(rtype, {}).get(rid)
            return [base] if base else []
        return list(reversed(versions))

    def all_history(self, rtype: str | None = None) -> list[Version]:
        """Every version of a type (or of everything), newest first."""
        with self.lock:
            written = [v for v in self._log if rtype in (None, v.type)]
            seeds = [v for t, ids in self._base.items() if rtype in (None, t) for v in ids.values()]
        # Oldest first by time, ties kept in write order (the sort is stable), then flipped:
        # two writes in the same millisecond still come out newest first.
        combined = seeds + written
        combined.sort(key=lambda v: v.last_updated)
        combined.reverse()
        return combined

    def live(self, rtype: str) -> Iterator[dict]:
        for version in list(self._current.get(rtype, {}).values()):
            if version.resource is not None:
                yield version.resource

    def count(self, rtype: str) -> int:
        return len(self.index(rtype).ids)

    def index(self, rtype: str) -> TypeIndex:
        """The search index of a type, built on first use."""
        index = self._index.get(rtype)
        if index is None:
            with self.lock:
                index = self._index.get(rtype) or self._index.build(rtype, self.live(rtype))
        return index

    # -- writing ---------------------------------------------------------
    def create(self, rtype: str, resource: dict) -> Version:
        with self.lock:
            rid = str(uuid.uuid4())
            return self._write(rtype, rid, 1, "POST", resource)

    def update(self, rtype: str, rid: str, resource: dict, if_match: int | None = None) -> tuple[Version, bool]:
        """Write a new version; (version, created). Raises VersionConflict on an If-Match miss."""
        with self.lock:
            current = self.read(rtype, rid)
            current_vid = current.vid if current else 0
            if if_match is not None and (current is None or current.deleted or if_match != current_vid):
                raise VersionConflict(current_vid)
            created = current is None or current.deleted
            return self._write(rtype, rid, current_vid + 1, "PUT", resource), created

    def delete(self, rtype: str, rid: str) -> Version | None:
        """Mark deleted; None if there was nothing live to delete."""
        with self.lock:
            current = self.read(rtype, rid)
            if current is None or current.deleted:
                return None
            return self._commit(Version(rtype, rid, current.vid + 1, self._now(), "DELETE", None))

    def reset(self) -> None:
        """Back to the seed: drop the overlay and every change made since."""
        with self.lock:
            self._overlay.clear()
            touched = {(v.type, v.id) for v in self._log}
            for rtype, rid in touched:
                base = self._base.get(rtype, {}).get(rid)
                if base is None:
                    self._current.get(rtype, {}).pop(rid, None)
                    self._index.drop(rtype, rid)
                else:
                    self._current[rtype][rid] = base
                    self._index.put(rtype, base.resource)
            self._history.clear()
            self._log.clear()

    # -- internals -------------------------------------------------------
    def _now(self) -> str:
        return instant(self._clock())

    def _write(self, rtype: str, rid: str, vid: int, method: str, resource: dict) -> Version:
        stamp = self._now()
        body = dict(resource)
        body["resourceType"] = rtype
        body["id"] = rid
        meta = dict(body.get("meta") or {})
        meta["versionId"] = str(vid)
        meta["lastUpdated"] = stamp
        body["meta"] = meta
        return self._commit(Version(rtype, rid, vid, stamp, method, body))

    def _commit(self, version: Version) -> Version:
        self._overlay.append(version.to_document())  # durable before acknowledged
        self._apply(version)
        return version

    def _apply(self, version: Version) -> None:
        key = (version.type, version.id)
        if key not in self._history:
            base = self._base.get(version.type, {}).get(version.id)
            self._history[key] = [base] if base else []
        self._history[key].append(version)
        self._log.append(version)
        self._current.setdefault(version.type, {})[version.id] = version
        if version.deleted:
            self._index.drop(version.type, version.id)
        else:
            self._index.put(version.type, version.resource)
