"""Pushed authorization requests (RFC 9126), pure: the records behind request_uri values.

A client POSTs its authorization request to the PAR endpoint (mockehr.auth.par_http), which
validates it as the authorize endpoint would and keeps it here under a fresh `request_uri`; the
authorize endpoint then takes it back, once. A used or expired record is kept a while longer, so
that a reuse or a late arrival is answered with the request's own (already verified) redirect_uri
and state rather than an error page.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Callable

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
LIFETIME = 60  # seconds a request_uri can be used (RFC 9126 2.2: "typically between 5 and 600 seconds")
KEPT = 600  # seconds a used or expired record is remembered, to say what happened to it
# Parameters of client authentication: they authenticate the push and are not part of the request.
CLIENT_AUTH_PARAMS = ("client_secret", "client_assertion", "client_assertion_type")


@dataclass
class PushedRequest:
    request_uri: str
    client_id: str
    params: dict  # the authorization request's parameters, as pushed (client authentication removed)
    created: float
    expires: float
    used: bool = False


@dataclass(frozen=True)
class Taken:
    """What the authorize endpoint gets for a request_uri."""

    record: PushedRequest | None  # None: not one of this client's (never issued, forgotten, or another's)
    problem: str | None = None  # what is wrong: reused, expired, or pushed by another client


def request_params(form: dict, client_id: str) -> dict:
    """The authorization request inside a PAR body: client authentication out, client_id in."""
    params = {name: value for name, value in form.items() if name not in CLIENT_AUTH_PARAMS}
    params["client_id"] = client_id
    return params


@dataclass
class PushedRequests:
    clock: Callable[[], float]
    lifetime: int = LIFETIME
    _records: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, client_id: str, params: dict) -> PushedRequest:
        now = self.clock()
        record = PushedRequest(REQUEST_URI_PREFIX + secrets.token_urlsafe(24), client_id, dict(params), now,
                               now + self.lifetime)
        with self._lock:
            for uri, old in list(self._records.items()):
                if old.expires + KEPT < now:
                    del self._records[uri]
            self._records[record.request_uri] = record
        return record

    def take(self, request_uri: str, client_id: str) -> Taken:
        """The record for request_uri, marked used (atomically: of two racing takes, one gets a problem).
        Another client's request_uri is not found (and stays usable by its own client)."""
        now = self.clock()
        with self._lock:
            record = self._records.get(request_uri)
            if record is None:
                return Taken(None)
            if record.client_id != client_id:
                return Taken(None, f"request_uri {request_uri} was pushed by another client than '{client_id}'")
            if record.used:
                return Taken(record, f"request_uri {request_uri} was already used; a pushed authorization request "
                                     "is good for one authorization request: push it again")
            if record.expires < now:
                return Taken(record, f"request_uri {request_uri} expired {int(now - record.expires)} s ago (it "
                                     f"lives {self.lifetime} s): push the authorization request again")
            record.used = True
            return Taken(record)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
