"""MockEHR's state helpers: the movable clock, the requests the server saw, and the faults."""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from mockehr.api_flows import _b64json

if TYPE_CHECKING:
    from mockehr.api import MockEHR


class Clock:
    """The server's clock: real time plus an offset you move. The store (lastUpdated), the audit
    trail and the authorization server (iat/exp, code, launch and token expiry) all read it."""

    def __init__(self):
        self._offset = 0.0

    def __call__(self) -> float:
        return time.time() + self._offset

    now = __call__

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (negative: back); answers the new time (epoch seconds)."""
        self._offset += seconds
        return self()

    def reset(self) -> None:
        self._offset = 0.0


@dataclasses.dataclass(frozen=True)
class SeenRequest:
    """One request the server answered, as mockehr's capture (the protocol inspector's) recorded it.
    Secrets are redacted there (first 6 characters), so a bearer token's claims are in
    `token_claims`; `headers` holds the headers the capture keeps (Accept, Content-Type,
    Authorization, Origin, Prefer, the If-* ones, Cookie names, DPoP); status 0 means the
    connection was dropped (the drop fault). Static files and CORS preflights are not recorded."""

    id: int
    method: str
    path: str
    query: str
    headers: dict
    status: int
    body: object  # parsed JSON, a form as a dict, raw bytes, or None
    response_headers: dict
    token_claims: dict | None
    ms: float

    @property
    def args(self) -> dict:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def __str__(self) -> str:
        return f"{self.method} {self.path}{'?' + self.query if self.query else ''} -> {self.status}"


def _seen(exchange: dict) -> SeenRequest:
    body = exchange.get("req_body") or {}
    if "json" in body:
        parsed = body["json"]
    elif "form" in body:
        parsed = dict(parse_qsl(body["form"], keep_blank_values=True))
    elif "raw" in body:
        parsed = body["raw"]
        if "json" in body.get("mime", ""):
            try:
                import orjson
                parsed = orjson.loads(parsed)
            except ValueError:
                pass
    else:
        parsed = None
    claims = None
    for where, jwt in exchange.get("jwts", []):
        if where.startswith("Authorization"):
            try:
                claims = _b64json(jwt.split(".")[1])
            except (ValueError, IndexError):
                pass
    return SeenRequest(exchange["id"], exchange["method"], exchange["path"], exchange.get("query", ""),
                       dict(exchange.get("req_headers", [])), exchange.get("status", 0), parsed,
                       dict(exchange.get("resp_headers", [])), claims, round(exchange.get("ms", 0.0), 3))


class Requests:
    """The requests the server saw, oldest first (`list(ehr.requests)`, `ehr.requests[-1]`), and
    `take()`: the next one not taken yet, waiting for it, like MockWebServer's takeRequest()."""

    def __init__(self, ehr: "MockEHR"):
        self._ehr = ehr
        self._since = 0   # clear() hides what came before
        self._taken = 0   # take()'s cursor

    def _all(self, since: int) -> list[SeenRequest]:
        return [_seen(e) for e in self._ehr.app().extensions["mockehr.audit"].exchanges(max(since, self._since))]

    def __iter__(self):
        return iter(self._all(0))

    def __len__(self) -> int:
        return len(self._all(0))

    def __getitem__(self, index):
        return self._all(0)[index]

    def filter(self, method: str | None = None, path: str | None = None) -> list[SeenRequest]:
        """method (any case) and path (a glob like /fhir/Observation*) select requests."""
        return [r for r in self._all(0) if (method is None or r.method == method.upper())
                and (path is None or fnmatch.fnmatchcase(r.path, path))]

    def take(self, timeout: float = 1.0, method: str | None = None, path: str | None = None) -> SeenRequest:
        """The oldest request not taken yet (matching method/path if given; non-matching ones are
        skipped), waiting up to `timeout` seconds; TimeoutError says what was seen meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            for seen in self._all(self._taken):
                self._taken = seen.id
                if (method is None or seen.method == method.upper()) and \
                        (path is None or fnmatch.fnmatchcase(seen.path, path)):
                    return seen
            if time.monotonic() >= deadline:
                wanted = " ".join(x for x in (method, path) if x) or "any request"
                recent = ", ".join(str(r) for r in self._all(0)[-5:]) or "nothing"
                raise TimeoutError(f"no {wanted} within {timeout} s after the last one taken (latest seen: {recent})")
            time.sleep(0.005)

    def clear(self) -> None:
        """Forget what was seen so far (iteration and take() start after it)."""
        newest = self._ehr.app().extensions["mockehr.audit"].exchanges(self._since)
        if newest:
            self._since = self._taken = newest[-1]["id"]

    def _reset(self) -> None:
        self._since = self._taken = 0


class Faults:
    """The faults in force: `add(SPEC)` (the README's Faults specs), `remove(id)`, `clear()`, `list()`."""

    def __init__(self, ehr: "MockEHR"):
        self._ehr = ehr

    def _auth(self):
        return self._ehr.app().extensions["mockehr.auth"]

    def add(self, spec: str) -> dict:
        """Add a fault; answers it as GET /admin/faults lists it ({"id", "spec", ...}).
        A bad spec raises mockehr.faults.FaultSpecError (a ValueError) with the parser's message."""
        from mockehr.faults.hook import apply_one_shots

        auth = self._auth()
        fault_id = auth.faults.add(spec)
        auth.audit.record("fault", "added", fault=fault_id, spec=spec)
        apply_one_shots(auth.faults, auth)
        return next(f for f in auth.faults.list() if f["id"] == fault_id)

    def remove(self, fault) -> None:
        """Remove a fault by id (or the dict add() answered); KeyError if there is none."""
        fault_id = fault["id"] if isinstance(fault, dict) else fault
        auth = self._auth()
        if not auth.faults.remove(fault_id):
            raise KeyError(f"no fault {fault_id!r}; faults.list() shows them")
        auth.audit.record("fault", "removed", fault=fault_id)

    def clear(self) -> int:
        auth = self._auth()
        cleared = len(auth.faults.list())
        auth.faults.clear()
        auth.audit.record("fault", "cleared", count=cleared)
        return cleared

    def list(self) -> list[dict]:
        return self._auth().faults.list()

    def __iter__(self):
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())
