"""The audit trail: what happened, to whom, and why it was refused.

Events are plain dicts, oldest first, in a bounded ring. Nothing secret goes
in: callers pass redacted tokens (model.redact) or none at all.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable

MAX_EVENTS = 10_000


class AuditLog:
    def __init__(self, clock: Callable[[], float] = time.time, limit: int = MAX_EVENTS):
        self._clock = clock
        self._events: deque = deque(maxlen=limit)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, kind: str, outcome: str = "success", **fields) -> dict:
        """kind: e.g. 'authorize', 'token', 'fhir'; outcome: 'success' or 'failure'; fields: who, what, why."""
        stamp = datetime.fromtimestamp(self._clock(), tz=timezone.utc).isoformat(timespec="milliseconds")
        event = {"id": 0, "time": stamp.replace("+00:00", "Z"), "type": kind, "outcome": outcome}
        event.update({k: v for k, v in fields.items() if v is not None})
        with self._lock:
            event["id"] = next(self._ids)
            self._events.append(event)
        return event

    def events(self, since_id: int = 0) -> list[dict]:
        with self._lock:
            return [e for e in self._events if e["id"] > since_id]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
