"""FaultBoard: the live, thread-safe set of faults, and what fires when.

Pure: no Flask, no I/O, no clock. One lock guards everything, so counters are
exact under concurrent requests. Each fault draws its `rate` from its own
random.Random seeded with (board seed, fault id): the same seed, the same faults
added in the same order and the same sequence of matching requests give the same
firing pattern, whatever the other faults do. Concurrent requests reach the lock
in scheduling order, so under concurrency the pattern is fixed per arrival
order, not per client-side send order.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from .spec import (ANSWER_KINDS, EVENT_KINDS, LASTING_KINDS, ONE_SHOT_KINDS, REQUEST_KINDS,
                   FaultSpec, parse_fault)


@dataclass(frozen=True)
class Firing:
    """A fault firing: what the caller must do, in `action`.

    throttle {"status": 429, "retry_after": S}    error {"status": N}    jwks-down {"status": 503}
    drop {"drop": True}    latency {"sleep_ms": MS}    slow-body {"bytes_per_second": B}
    deny {"error": "access_denied"}    expire-refresh {"error": "invalid_grant"}
    step-up {"step_up": "urn:mockehr:loa:2"}
    transient-error {"status": 500, "issue": "transient"}    file-generation-failed {"fail": "export"}
    some-file-generation-failed {"fail": "some-files"}    file-expired {"status": 410}
    rotate-keys {"rotate_keys": True, "keep_old": BOOL}    revoke-all {"revoke_all": True}
    """

    fault_id: str
    spec: FaultSpec
    action: dict = field(hash=False)


def _action(spec: FaultSpec) -> dict:
    p = spec.params
    return {
        "throttle": lambda: {"status": 429, "retry_after": p["retry_after"]},
        "error": lambda: {"status": p["status"]},
        "jwks-down": lambda: {"status": 503},
        "drop": lambda: {"drop": True},
        "latency": lambda: {"sleep_ms": p["ms"]},
        "slow-body": lambda: {"bytes_per_second": p["bytes_per_second"]},
        "deny": lambda: {"error": "access_denied"},
        "expire-refresh": lambda: {"error": "invalid_grant"},
        "step-up": lambda: {"step_up": "urn:mockehr:loa:2"},
        "transient-error": lambda: {"status": 500, "issue": "transient"},
        "file-generation-failed": lambda: {"fail": "export"},
        "some-file-generation-failed": lambda: {"fail": "some-files"},
        "file-expired": lambda: {"status": 410},
        "rotate-keys": lambda: {"rotate_keys": True, "keep_old": p["keep_old"]},
        "revoke-all": lambda: {"revoke_all": True},
    }[spec.kind]()


class _Entry:
    __slots__ = ("id", "spec", "rng", "seen", "fired")

    def __init__(self, fault_id: str, spec: FaultSpec, seed: int):
        self.id = fault_id
        self.spec = spec
        self.rng = random.Random(f"{seed}:{fault_id}")
        self.seen = 0   # matching requests / decisions so far
        self.fired = 0

    @property
    def limit(self) -> int | None:
        return 1 if self.spec.kind in ONE_SHOT_KINDS else self.spec.count

    @property
    def spent(self) -> bool:
        return self.limit is not None and self.fired >= self.limit

    def step(self) -> bool:
        """Count one matching request or decision; True if `every` and `rate` select it."""
        self.seen += 1
        if self.spec.every and self.seen % self.spec.every:
            return False
        return self.spec.rate is None or self.rng.random() < self.spec.rate


class FaultBoard:
    """The faults in force. Spent faults (their `count` reached, or a one-shot
    applied) stay listed with "spent": true and never fire again; remove or
    clear them to tidy up."""

    def __init__(self, seed: int = 0):
        self._lock = threading.Lock()
        self._seed = seed
        self._entries: dict[str, _Entry] = {}
        self._next_id = 1

    @property
    def seed(self) -> int:
        return self._seed

    def add(self, spec: FaultSpec | str) -> str:
        """Add a fault (parsing it if a string; FaultSpecError if it does not parse); returns its id."""
        if isinstance(spec, str):
            spec = parse_fault(spec)
        elif not isinstance(spec, FaultSpec):
            raise TypeError(f"add() takes a FaultSpec or a spec string, not {type(spec).__name__}")
        with self._lock:
            fault_id = f"f{self._next_id}"
            self._next_id += 1
            self._entries[fault_id] = _Entry(fault_id, spec, self._seed)
            return fault_id

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            return self._entries.pop(fault_id, None) is not None

    def clear(self) -> None:
        """Remove every fault; ids keep counting up (an old id never names a new fault)."""
        with self._lock:
            self._entries.clear()

    def reset(self, seed: int | None = None) -> None:
        """Clear, restart ids at f1 and reseed (with `seed`, or the current seed), so a run repeats."""
        with self._lock:
            self._entries.clear()
            self._next_id = 1
            if seed is not None:
                self._seed = seed

    def list(self) -> list[dict]:
        """JSON-ready, in the order added. `remaining` is null when the fault has no limit."""
        with self._lock:
            return [{
                "id": e.id, "spec": e.spec.text, "kind": e.spec.kind,
                "description": e.spec.describe(), "fired": e.fired,
                "remaining": None if e.limit is None else max(e.limit - e.fired, 0),
                "spent": e.spent,
            } for e in self._entries.values()]

    def on_request(self, method: str, path: str) -> list[Firing]:
        """The request faults that fire for this request, in the order added.

        Every live request fault whose `path` and `method` select the request counts it
        (for `every`) and, if `every` selects it, draws once (for `rate`). Of those that
        pass, all latency and slow-body faults fire, and at most one answer fault
        (throttle, error, jwks-down, drop): the first added; the others pass over this
        request without firing or using up their `count`. When drop fires, slow-body
        does not (there is no body to drip). The caller waits the sum of `sleep_ms`,
        then answers with the answer firing if any, dripped if slow-body fired.
        """
        method = method.upper()
        path = path.split("?", 1)[0]
        with self._lock:
            chosen = [e for e in self._entries.values()
                      if e.spec.kind in REQUEST_KINDS and not e.spent
                      and e.spec.matches(method, path) and e.step()]
            answer = next((e for e in chosen if e.spec.kind in ANSWER_KINDS), None)
            chosen = [e for e in chosen if e.spec.kind not in ANSWER_KINDS or e is answer]
            if answer is not None and answer.spec.kind == "drop":
                chosen = [e for e in chosen if e.spec.kind != "slow-body"]
            return [self._fire(e) for e in chosen]

    def on_event(self, kind: str, scopes=None) -> Firing | None:
        """For a decision point of an EVENT_KINDS kind ("deny" and "step-up" at authorize,
        "expire-refresh" at the refresh grant; the bulk kinds at a status poll, a kick-off, a file
        download): the firing, or None. Each live fault of that kind counts the
        decision (`every`, then one `rate` draw); the first added that passes fires.
        `scopes` (the requested scope strings, for step-up): only faults whose `scope` glob
        selects one of them count the decision; None selects every fault of the kind."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"on_event() takes one of {sorted(EVENT_KINDS)}, not {kind!r}")
        with self._lock:
            passing = [e for e in self._entries.values()
                       if e.spec.kind == kind and not e.spent
                       and (scopes is None or e.spec.matches_scopes(scopes)) and e.step()]
            return self._fire(passing[0]) if passing else None

    def active(self, kind: str) -> FaultSpec | None:
        """For token-lifetime, clock and bad-signature: the spec in force (the last added
        of that kind still present), or None."""
        if kind not in LASTING_KINDS:
            raise ValueError(f"active() takes one of {sorted(LASTING_KINDS)}, not {kind!r}")
        with self._lock:
            found = [e.spec for e in self._entries.values() if e.spec.kind == kind]
            return found[-1] if found else None

    def take_one_shots(self) -> list[Firing]:
        """The rotate-keys and revoke-all faults not yet applied, in the order added, now
        marked spent: the caller applies each once (after add, and at serve start)."""
        with self._lock:
            return [self._fire(e) for e in self._entries.values()
                    if e.spec.kind in ONE_SHOT_KINDS and not e.spent]

    @staticmethod
    def _fire(entry: _Entry) -> Firing:
        entry.fired += 1
        return Firing(entry.id, entry.spec, _action(entry.spec))
