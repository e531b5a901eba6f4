"""The audit trail: what happened, to whom, and why it was refused.

Events are plain dicts, oldest first, in a bounded ring. Nothing secret goes
in: callers pass redacted tokens (model.redact) or none at all.

Next to the events, a second bounded ring holds the HTTP exchanges that
mockehr.capture records (already redacted). Events and exchanges draw their
ids from one counter, so one number (`since`) is a cursor over both; an event
recorded while a captured request runs carries that request's `request_id`.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable

# A safety net under the callers' own redaction: a JWT (say, an access token sent in a URL that
# lands in an event's `path`) or a secret-named query parameter keeps its first 6 characters.
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")
_SECRET_PARAM = re.compile(r"((?:access_token|refresh_token|client_secret|client_assertion|code_verifier)=)([^&\s]+)")
_HINTS = re.compile(r"eyJ|_token=|secret=|assertion=|verifier=")

MAX_EVENTS = 10_000
MAX_EXCHANGES = 1_000


def iso_time(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class AuditLog:
    def __init__(self, clock: Callable[[], float] = time.time, limit: int = MAX_EVENTS,
                 exchange_limit: int = MAX_EXCHANGES):
        self._clock = clock
        self._events: deque = deque(maxlen=limit)
        self._exchanges: deque = deque(maxlen=exchange_limit)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # () -> request id of the captured request running now, or None (set by mockehr.capture)
        self.request_id: Callable[[], str | None] | None = None

    def record(self, kind: str, outcome: str = "success", **fields) -> dict:
        """kind: e.g. 'authorize', 'token', 'fhir'; outcome: 'success' or 'failure'; fields: who, what, why."""
        event = {"id": 0, "time": iso_time(self._clock()), "type": kind, "outcome": outcome}
        event.update({k: _safe(v) if isinstance(v, str) else v for k, v in fields.items() if v is not None})
        if self.request_id is not None and "request_id" not in event:
            request_id = self.request_id()
            if request_id:
                event["request_id"] = request_id
        with self._lock:
            event["id"] = next(self._ids)
            self._events.append(event)
        return event

    def events(self, since_id: int = 0) -> list[dict]:
        with self._lock:
            return _newer(self._events, since_id)

    def record_exchange(self, exchange: dict) -> dict:
        """Store one captured HTTP exchange (a dict mockehr.capture built); gives it the next id."""
        with self._lock:
            exchange["id"] = next(self._ids)
            self._exchanges.append(exchange)
        return exchange

    def exchanges(self, since_id: int = 0) -> list[dict]:
        with self._lock:
            return _newer(self._exchanges, since_id)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._exchanges.clear()


def _newer(ring: deque, since_id: int) -> list[dict]:
    """Items with id > since_id, oldest first; walks from the newest end (pollers ask for a few)."""
    found = []
    for item in reversed(ring):
        if item["id"] <= since_id:
            break
        found.append(item)
    found.reverse()
    return found


def _redacted(match: re.Match) -> str:
    value = match.group(0)
    return value[:6] + "…" if len(value) > 12 else "…"


def _safe(text: str) -> str:
    if _HINTS.search(text) is None:
        return text
    text = _JWT.sub(_redacted, text)
    return _SECRET_PARAM.sub(lambda m: m.group(1) + (m.group(2)[:6] + "…" if len(m.group(2)) > 12 else "…"), text)
