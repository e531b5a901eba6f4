"""Fault injection: parse fault specs, match them to requests and decisions, fire them.

spec.py and board.py are pure logic (no Flask, no I/O); hook.py is the Flask
side (the request hook and the fault answers), wired by the app, and the
/admin/faults API, the authorization server and the CLI use the board.

Spec grammar: `KIND[:key=value[,key=value...]]` (see DESIGN.md, "Fault specs").

| kind | own keys (default) | selectors | how it acts |
|---|---|---|---|
| throttle | retry_after=1 (0..86400 s) | path method every rate count | request: 429 + Retry-After |
| error | status=500 (400..599) | path method every rate count | request: that status |
| latency | ms (required, 0..3600000) | path method every rate count | request: wait, then answer |
| drop | - | path method every rate count | request: close the connection, no answer |
| slow-body | bytes_per_second=1024 (>= 1) | path method every rate count | request: drip the answer body |
| jwks-down | - | path (default /auth/jwks) method every rate count | request: 503 |
| deny | - | every rate count | event at authorize: error=access_denied |
| expire-refresh | - | every rate count | event at the refresh grant: invalid_grant |
| step-up | scope=* (a glob over one scope) | every rate count | event at authorize, for requests asking for a matching scope: a second factor (acr urn:mockehr:loa:2) |
| rotate-keys | keep_old=false | - | one-shot: rotate the signing keys |
| revoke-all | - | - | one-shot: revoke every token issued so far |
| token-lifetime | seconds (required, 1..31536000) | - | lasting: access token lifetime |
| clock | offset (required, seconds, may be negative) | - | lasting: server clock runs ahead/behind |
| bad-signature | - | - | lasting: new tokens signed with a key not in the JWKS |
| transient-error | - | every rate count | event at a bulk status poll: 500 OperationOutcome `transient` |
| file-generation-failed | - | every rate count | event at a bulk kick-off: the job ends in a 500 at its status URL |
| some-file-generation-failed | - | every rate count | event at a bulk kick-off: every 2nd file fails, in error[] |
| file-expired | - | every rate count | event at a bulk file download: 410, the file expired |

Selectors: `path` is an fnmatch glob over the URL path, without the query
(default /fhir/*; a glob ending in /* also matches its bare prefix, so /fhir/*
matches /fhir); `method` is compared upper-case; `every=N` fires on the Nth,
2Nth, ... request the fault selects; `rate=P` then fires with probability P
(seeded, see board.py); `count=N` fires at most N times, after which the fault
is spent (listed, never fires again). A key a kind does not take is an error
naming the kind.

Using the board:
- request hook: `board.on_request(method, path)` -> firings (see its docstring);
- authorize / refresh grant: `board.on_event("deny")`, `board.on_event("step-up", scopes=[...])`,
  `board.on_event("expire-refresh")`;
- bulk export (fhir/bulk_routes.py): `board.on_event(...)` with a BULK_KINDS kind at its kick-off,
  status poll or file download; throttle and error reach the bulk URLs like any other path;
- token issuance and clock: `board.active("token-lifetime" | "clock" | "bad-signature")`;
- after `add` and at serve start: `board.take_one_shots()` for rotate-keys and revoke-all.
"""

from .board import FaultBoard, Firing
from .spec import (ANSWER_KINDS, BULK_KINDS, DEFAULT_PATH, EVENT_KINDS, JWKS_PATH, KINDS, LASTING_KINDS,
                   ONE_SHOT_KINDS, REQUEST_KINDS, STATE_KINDS, FaultSpec, FaultSpecError, parse_fault)

__all__ = [
    "ANSWER_KINDS", "BULK_KINDS", "DEFAULT_PATH", "EVENT_KINDS", "JWKS_PATH", "KINDS", "LASTING_KINDS",
    "ONE_SHOT_KINDS", "REQUEST_KINDS", "STATE_KINDS",
    "FaultBoard", "FaultSpec", "FaultSpecError", "Firing", "parse_fault",
]
