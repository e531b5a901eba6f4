"""Fault specs and the fault board: parsing, messages, descriptions, matching, firing."""

from __future__ import annotations

import random
import threading

import pytest

from mockehr.faults import (EVENT_KINDS, KINDS, LASTING_KINDS, ONE_SHOT_KINDS, REQUEST_KINDS,
                            STATE_KINDS, FaultBoard, FaultSpec, FaultSpecError, Firing, parse_fault)

# ---- parsing: defaults and keys ---------------------------------------------------------

DEFAULTS = {
    "throttle": ({"retry_after": 1}, "/fhir/*"),
    "error": ({"status": 500}, "/fhir/*"),
    "drop": ({}, "/fhir/*"),
    "slow-body": ({"bytes_per_second": 1024}, "/fhir/*"),
    "jwks-down": ({}, "/auth/jwks"),
    "deny": ({}, None),
    "expire-refresh": ({}, None),
    "rotate-keys": ({"keep_old": False}, None),
    "revoke-all": ({}, None),
    "bad-signature": ({}, None),
}


def test_kind_sets_partition_the_kinds():
    assert REQUEST_KINDS | EVENT_KINDS | STATE_KINDS == set(KINDS)
    assert not (REQUEST_KINDS & EVENT_KINDS or REQUEST_KINDS & STATE_KINDS or EVENT_KINDS & STATE_KINDS)
    assert ONE_SHOT_KINDS | LASTING_KINDS == STATE_KINDS
    assert len(KINDS) == 18  # 14 (step-up included) + the 4 bulk export kinds (tests/bulk/test_bulk_fault_specs.py)


@pytest.mark.parametrize("kind", sorted(DEFAULTS))
def test_kind_parses_with_defaults(kind):
    spec = parse_fault(kind)
    params, path = DEFAULTS[kind]
    assert spec == FaultSpec(kind=kind, params=params, path=path)
    assert spec.text == kind
    assert (spec.method, spec.every, spec.rate, spec.count) == (None, None, None, None)


@pytest.mark.parametrize("text, kind, params", [
    ("latency:ms=200", "latency", {"ms": 200}),
    ("token-lifetime:seconds=60", "token-lifetime", {"seconds": 60}),
    ("clock:offset=300", "clock", {"offset": 300}),
    ("clock:offset=-300", "clock", {"offset": -300}),
    ("clock:offset=+5", "clock", {"offset": 5}),
    ("clock:offset=0", "clock", {"offset": 0}),
    ("throttle:retry_after=30", "throttle", {"retry_after": 30}),
    ("throttle:retry_after=0", "throttle", {"retry_after": 0}),
    ("error:status=503", "error", {"status": 503}),
    ("error:status=400", "error", {"status": 400}),
    ("error:status=599", "error", {"status": 599}),
    ("slow-body:bytes_per_second=10", "slow-body", {"bytes_per_second": 10}),
    ("rotate-keys:keep_old=true", "rotate-keys", {"keep_old": True}),
    ("token-lifetime:seconds=31536000", "token-lifetime", {"seconds": 31536000}),
    ("latency:ms=0", "latency", {"ms": 0}),
])
def test_kind_specific_keys(text, kind, params):
    spec = parse_fault(text)
    assert (spec.kind, spec.params) == (kind, params)


@pytest.mark.parametrize("raw, value", [
    ("true", True), ("True", True), ("yes", True), ("YES", True), ("1", True),
    ("false", False), ("FALSE", False), ("no", False), ("0", False),
])
def test_bool_values(raw, value):
    assert parse_fault(f"rotate-keys:keep_old={raw}").params == {"keep_old": value}


@pytest.mark.parametrize("kind", sorted(REQUEST_KINDS))
def test_request_kinds_take_every_selector(kind):
    extra = ",ms=5" if kind == "latency" else ""
    spec = parse_fault(f"{kind}:path=/auth/token,method=post,every=3,rate=0.25,count=5{extra}")
    assert (spec.path, spec.method, spec.every, spec.rate, spec.count) == ("/auth/token", "POST", 3, 0.25, 5)


@pytest.mark.parametrize("selector, value, attr, expected", [
    ("path", "/fhir/Patient*", "path", "/fhir/Patient*"),
    ("method", "GET", "method", "GET"),
    ("method", "delete", "method", "DELETE"),
    ("every", "1", "every", 1),
    ("every", "10", "every", 10),
    ("rate", "0", "rate", 0.0),
    ("rate", "1", "rate", 1.0),
    ("rate", ".5", "rate", 0.5),
    ("rate", "0.125", "rate", 0.125),
    ("count", "1", "count", 1),
])
def test_each_selector_alone(selector, value, attr, expected):
    spec = parse_fault(f"throttle:{selector}={value}")
    assert getattr(spec, attr) == expected
    assert isinstance(getattr(spec, attr), type(expected))


@pytest.mark.parametrize("kind", sorted(EVENT_KINDS))
def test_event_kinds_take_every_rate_count(kind):
    spec = parse_fault(f"{kind}:every=2,rate=0.5,count=3")
    assert (spec.path, spec.method, spec.every, spec.rate, spec.count) == (None, None, 2, 0.5, 3)


def test_whitespace_and_case_are_tolerated():
    spec = parse_fault("  Throttle :  Retry_After = 3 ,  every= 2 ,METHOD=get , path = /fhir/Patient/*  ")
    assert spec == FaultSpec(kind="throttle", params={"retry_after": 3}, path="/fhir/Patient/*",
                             method="GET", every=2)
    assert spec.text == "Throttle :  Retry_After = 3 ,  every= 2 ,METHOD=get , path = /fhir/Patient/*"


def test_value_may_hold_equals_and_colon():
    assert parse_fault("error:path=/fhir/a=b:c").path == "/fhir/a=b:c"


def test_spec_is_frozen_and_hashable():
    spec = parse_fault("throttle:every=2")
    with pytest.raises(AttributeError):
        spec.every = 3
    assert hash(spec) == hash(parse_fault(" throttle : every=2 "))


# ---- parsing: error messages -------------------------------------------------------------

ERRORS = [
    ("", "empty fault spec (expected KIND[:key=value,...])"),
    ("   ", "empty fault spec (expected KIND[:key=value,...])"),
    ("throtle", "unknown kind 'throtle' (did you mean 'throttle'?)"),
    ("rotate_keys", "unknown kind 'rotate_keys' (did you mean 'rotate-keys'?)"),
    ("Throtle:every=2", "unknown kind 'Throtle' (did you mean 'throttle'?)"),
    ("xyz", "unknown kind 'xyz' (known kinds: throttle, error, latency, rotate-keys, token-lifetime, "
            "deny, expire-refresh, revoke-all, drop, clock, bad-signature, jwks-down, slow-body, step-up, transient-error, "
            "file-generation-failed, some-file-generation-failed, file-expired)"),
    (":every=2", "missing kind before ':' in ':every=2'"),
    ("throttle:", "nothing after ':' in 'throttle:'"),
    ("throttle: ", "nothing after ':' in 'throttle:'"),
    ("throttle:every=2,,count=1", "empty item between commas in 'throttle:every=2,,count=1'"),
    ("throttle:every=2,", "empty item between commas in 'throttle:every=2,'"),
    ("throttle:retry=2", "throttle does not take 'retry' (did you mean 'retry_after'?)"),
    ("throttle:cont=2", "throttle does not take 'cont' (did you mean 'count'?)"),
    ("throttle:status=503",
     "throttle does not take 'status' (it takes retry_after, path, method, every, rate, count)"),
    ("throttle:color=red",
     "throttle does not take 'color' (it takes retry_after, path, method, every, rate, count)"),
    ("deny:path=/auth/authorize", "deny does not take 'path' (it takes every, rate, count)"),
    ("expire-refresh:method=POST", "expire-refresh does not take 'method' (it takes every, rate, count)"),
    ("rotate-keys:count=1", "rotate-keys does not take 'count' (it takes keep_old)"),
    ("rotate-keys:keepold=1", "rotate-keys does not take 'keepold' (did you mean 'keep_old'?)"),
    ("token-lifetime:seconds=5,every=2", "token-lifetime does not take 'every' (it takes seconds)"),
    ("clock:offset=5,rate=0.5", "clock does not take 'rate' (it takes offset)"),
    ("revoke-all:count=1", "revoke-all does not take 'count' (it takes no keys)"),
    ("bad-signature:path=/x", "bad-signature does not take 'path' (it takes no keys)"),
    ("throttle:retry_after", "missing '=' in 'retry_after'"),
    ("throttle:every=2,count", "missing '=' in 'count'"),
    ("throttle:=5", "missing key before '=' in '=5'"),
    ("throttle:every=2,every=3", "duplicate key 'every'"),
    ("throttle:every=2,EVERY=3", "duplicate key 'every'"),
    ("throttle:every=x", "'every' must be a whole number >= 1, got 'x'"),
    ("throttle:every=0", "'every' must be a whole number >= 1, got '0'"),
    ("throttle:every=1.5", "'every' must be a whole number >= 1, got '1.5'"),
    ("throttle:every=", "'every' must be a whole number >= 1, got ''"),
    ("throttle:count=-1", "'count' must be a whole number >= 1, got '-1'"),
    ("throttle:count=1_000", "'count' must be a whole number >= 1, got '1_000'"),
    ("throttle:rate=1.5", "'rate' must be between 0 and 1, got '1.5'"),
    ("throttle:rate=-0.1", "'rate' must be between 0 and 1, got '-0.1'"),
    ("throttle:rate=half", "'rate' must be between 0 and 1, got 'half'"),
    ("throttle:rate=nan", "'rate' must be between 0 and 1, got 'nan'"),
    ("throttle:rate=1e-3", "'rate' must be between 0 and 1, got '1e-3'"),
    ("error:status=200", "'status' must be an HTTP error status 400-599, got '200'"),
    ("error:status=600", "'status' must be an HTTP error status 400-599, got '600'"),
    ("error:status=5xx", "'status' must be an HTTP error status 400-599, got '5xx'"),
    ("error:status=0500", "'status' must be an HTTP error status 400-599, got '0500'"),
    ("throttle:retry_after=-1",
     "'retry_after' must be a whole number of seconds from 0 to 86400, got '-1'"),
    ("throttle:retry_after=soon",
     "'retry_after' must be a whole number of seconds from 0 to 86400, got 'soon'"),
    ("latency:ms=1.5", "'ms' must be a whole number of milliseconds from 0 to 3600000, got '1.5'"),
    ("latency:ms=3600001", "'ms' must be a whole number of milliseconds from 0 to 3600000, got '3600001'"),
    ("token-lifetime:seconds=0",
     "'seconds' must be a whole number of seconds from 1 to 31536000, got '0'"),
    ("clock:offset=ahead",
     "'offset' must be a whole number of seconds from -315360000 to 315360000, got 'ahead'"),
    ("slow-body:bytes_per_second=0", "'bytes_per_second' must be a whole number >= 1, got '0'"),
    ("rotate-keys:keep_old=maybe", "'keep_old' must be true or false, got 'maybe'"),
    ("throttle:method=G T", "'method' must be an HTTP method such as GET or POST, got 'G T'"),
    ("throttle:method=", "'method' must be an HTTP method such as GET or POST, got ''"),
    ("throttle:path=fhir/*", "'path' must be a glob over the URL path starting with '/', got 'fhir/*'"),
    ("throttle:path=/a b", "'path' must be a glob over the URL path starting with '/', got '/a b'"),
    ("latency", "latency needs 'ms' (e.g. 'latency:ms=200')"),
    ("latency:every=2", "latency needs 'ms' (e.g. 'latency:ms=200')"),
    ("token-lifetime", "token-lifetime needs 'seconds' (e.g. 'token-lifetime:seconds=60')"),
    ("clock", "clock needs 'offset' (e.g. 'clock:offset=-300')"),
    ("throttle:every=" + "x" * 70,
     "'every' must be a whole number >= 1, got '" + "x" * 57 + "...'"),
]


@pytest.mark.parametrize("text, message", ERRORS, ids=[t or "<empty>" for t, _ in ERRORS])
def test_error_messages(text, message):
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_first_problem_wins():
    with pytest.raises(FaultSpecError, match="'every'"):
        parse_fault("throttle:every=0,rate=2")


def test_too_long_and_not_a_string():
    with pytest.raises(FaultSpecError) as caught:
        parse_fault("throttle:path=/" + "a" * 1000)
    assert str(caught.value) == "fault spec is too long (1015 characters, at most 1000)"
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(None)
    assert str(caught.value) == "a fault spec must be a string, got NoneType"


# ---- describe ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("throttle", "answer 429 (Retry-After: 1 s) to every request on /fhir/*"),
    ("throttle:every=3,method=get,count=5",
     "answer 429 (Retry-After: 1 s) to every 3rd GET on /fhir/*, at most 5 times"),
    ("throttle:every=1", "answer 429 (Retry-After: 1 s) to every request on /fhir/*"),
    ("error", "answer 500 to every request on /fhir/*"),
    ("error:status=503,every=2,rate=0.5,count=1",
     "answer 503 to every 2nd request on /fhir/*, with probability 0.5, at most once"),
    ("error:every=11,count=2", "answer 500 to every 11th request on /fhir/*, at most twice"),
    ("error:every=21,rate=1", "answer 500 to every 21st request on /fhir/*, with probability 1"),
    ("error:every=112", "answer 500 to every 112th request on /fhir/*"),
    ("error:every=103", "answer 500 to every 103rd request on /fhir/*"),
    ("latency:ms=250,path=/auth/token,method=POST",
     "wait 250 ms before answering every POST on /auth/token"),
    ("drop:rate=0.1", "close the connection without answering every request on /fhir/*, with probability 0.1"),
    ("slow-body:bytes_per_second=64",
     "drip the answer at 64 bytes/s to every request on /fhir/*"),
    ("jwks-down", "answer 503 to every request on /auth/jwks"),
    ("jwks-down:count=1", "answer 503 to every request on /auth/jwks, at most once"),
    ("deny", "end every authorization in access_denied"),
    ("deny:every=2,count=3", "end every 2nd authorization in access_denied, at most 3 times"),
    ("expire-refresh", "answer invalid_grant to every refresh grant"),
    ("expire-refresh:rate=0.25", "answer invalid_grant to every refresh grant, with probability 0.25"),
    ("rotate-keys", "rotate the signing keys once, dropping the old keys"),
    ("rotate-keys:keep_old=yes", "rotate the signing keys once, keeping the old keys in the JWKS"),
    ("revoke-all", "revoke every token issued so far"),
    ("token-lifetime:seconds=60", "issue access tokens that live 60 s"),
    ("clock:offset=300", "run the server clock 300 s ahead"),
    ("clock:offset=-90", "run the server clock 90 s behind"),
    ("clock:offset=0", "run the server clock on time"),
    ("bad-signature", "sign new tokens with a key that is not in the JWKS"),
])
def test_describe(text, words):
    assert parse_fault(text).describe() == words


# ---- matching ----------------------------------------------------------------------------

@pytest.mark.parametrize("glob, path, hit", [
    ("/fhir/*", "/fhir/Patient", True),
    ("/fhir/*", "/fhir/Patient/123/_history/1", True),
    ("/fhir/*", "/fhir", True),                  # a trailing /* also covers the bare prefix
    ("/fhir/*", "/fhir/Patient?name=x", True),   # the query is not part of the path
    ("/fhir/*", "/fhirx", False),
    ("/fhir/*", "/auth/token", False),
    ("/fhir/*", "/FHIR/Patient", False),         # case-sensitive
    ("/fhir/Patient*", "/fhir/Patient/1", True),
    ("/fhir/Patient*", "/fhir/Observation", False),
    ("/auth/token", "/auth/token", True),
    ("/auth/token", "/auth/token/x", False),
    ("/fhir/[PO]*", "/fhir/Observation", True),
])
def test_path_glob(glob, path, hit):
    assert parse_fault(f"error:path={glob}").matches("GET", path) is hit


def test_method_selector_matches():
    spec = parse_fault("error:method=post")
    assert spec.matches("POST", "/fhir/Patient")
    assert spec.matches("post", "/fhir/Patient")
    assert not spec.matches("GET", "/fhir/Patient")
    assert parse_fault("error").matches("PATCH", "/fhir/Patient/1")


def test_non_request_kinds_match_no_request():
    assert not parse_fault("deny").matches("GET", "/fhir/Patient")


# ---- the board: request faults -------------------------------------------------------------

def fired(board: FaultBoard, requests) -> list[int]:
    """Indexes (1-based) of the requests on which any fault fired."""
    return [i for i, (method, path) in enumerate(requests, 1) if board.on_request(method, path)]


def test_every_fires_on_the_nth_matching_requests_only():
    board = FaultBoard()
    board.add("throttle:every=3")
    hits = []
    matching = 0
    for _ in range(30):
        for path in ("/fhir/Patient", "/auth/token", "/"):   # two of three requests do not match
            firings = board.on_request("GET", path)
            if path.startswith("/fhir"):
                matching += 1
                if firings:
                    hits.append(matching)
            else:
                assert firings == []
    assert hits == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]


def test_every_counts_only_method_matches():
    board = FaultBoard()
    board.add("error:every=2,method=POST")
    requests = [("GET", "/fhir/Patient"), ("POST", "/fhir/Patient"), ("GET", "/fhir/Patient"),
                ("POST", "/fhir/Patient"), ("POST", "/fhir/Observation"), ("POST", "/fhir/Patient")]
    assert fired(board, requests) == [4, 6]


def test_firing_actions():
    board = FaultBoard()
    ids = [board.add(t) for t in ("throttle:retry_after=7", "latency:ms=40", "slow-body:bytes_per_second=9")]
    firings = board.on_request("GET", "/fhir/Patient")
    assert firings == [
        Firing(ids[0], parse_fault("throttle:retry_after=7"), {"status": 429, "retry_after": 7}),
        Firing(ids[1], parse_fault("latency:ms=40"), {"sleep_ms": 40}),
        Firing(ids[2], parse_fault("slow-body:bytes_per_second=9"), {"bytes_per_second": 9}),
    ]
    assert [f.fault_id for f in firings] == ["f1", "f2", "f3"]


@pytest.mark.parametrize("text, action", [
    ("error:status=502", {"status": 502}),
    ("jwks-down", {"status": 503}),
    ("drop", {"drop": True}),
])
def test_answer_actions(text, action):
    board = FaultBoard()
    board.add(text)
    path = "/auth/jwks" if text == "jwks-down" else "/fhir/Patient"
    assert [f.action for f in board.on_request("GET", path)] == [action]
    assert board.on_request("GET", "/elsewhere") == []


def test_count_stops_after_n_and_stays_listed_as_spent():
    board = FaultBoard()
    fault_id = board.add("error:count=2")
    assert fired(board, [("GET", "/fhir/Patient")] * 6) == [1, 2]
    assert board.list() == [{"id": fault_id, "spec": "error:count=2", "kind": "error",
                             "description": "answer 500 to every request on /fhir/*, at most twice",
                             "fired": 2, "remaining": 0, "spent": True}]


def test_count_with_every():
    board = FaultBoard()
    board.add("error:count=2,every=2")
    assert fired(board, [("GET", "/fhir/Patient")] * 10) == [2, 4]


def test_latency_composes_with_an_answer():
    board = FaultBoard()
    board.add("latency:ms=100")
    board.add("throttle:every=2")
    kinds = [[f.spec.kind for f in board.on_request("GET", "/fhir/Patient")] for _ in range(4)]
    assert kinds == [["latency"], ["latency", "throttle"], ["latency"], ["latency", "throttle"]]


def test_one_answer_per_request_and_the_shadowed_fault_keeps_its_count():
    board = FaultBoard()
    board.add("throttle:count=2")
    board.add("error:count=1")
    kinds = [[f.spec.kind for f in board.on_request("GET", "/fhir/x")] for _ in range(4)]
    assert kinds == [["throttle"], ["throttle"], ["error"], []]
    assert [(f["fired"], f["remaining"], f["spent"]) for f in board.list()] == [(2, 0, True), (1, 0, True)]


def test_shadowed_fault_still_counts_for_every():
    board = FaultBoard()
    board.add("throttle:count=1")
    board.add("error:every=2")
    kinds = [[f.spec.kind for f in board.on_request("GET", "/fhir/x")] for _ in range(4)]
    assert kinds == [["throttle"], ["error"], [], ["error"]]   # the 2nd and 4th, as every=2 says


def test_drop_suppresses_slow_body():
    board = FaultBoard()
    board.add("slow-body")
    board.add("drop:every=2")
    kinds = [[f.spec.kind for f in board.on_request("GET", "/fhir/x")] for _ in range(2)]
    assert kinds == [["slow-body"], ["drop"]]
    assert board.list()[0]["fired"] == 1


def test_jwks_down_defaults_to_the_jwks_path():
    board = FaultBoard()
    board.add("jwks-down")
    assert board.on_request("GET", "/fhir/Patient") == []
    assert [f.action for f in board.on_request("get", "/auth/jwks")] == [{"status": 503}]


def test_request_hook_ignores_event_and_state_faults():
    board = FaultBoard()
    for text in ("deny", "expire-refresh", "rotate-keys", "revoke-all", "token-lifetime:seconds=5",
                 "clock:offset=1", "bad-signature"):
        board.add(text)
    assert board.on_request("GET", "/fhir/Patient") == []
    assert board.on_request("GET", "/auth/jwks") == []


# ---- the board: rate ---------------------------------------------------------------------

def pattern(seed: int, n: int = 64, spec: str = "error:rate=0.5") -> list[int]:
    board = FaultBoard(seed=seed)
    board.add(spec)
    return fired(board, [("GET", "/fhir/Patient")] * n)


def test_rate_is_repeatable_by_seed():
    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)


def test_rate_is_roughly_the_probability():
    hits = len(pattern(7, n=2000))
    assert 900 <= hits <= 1100
    assert pattern(7, n=200, spec="error:rate=0") == []
    assert pattern(7, n=200, spec="error:rate=1") == list(range(1, 201))


def test_rate_pattern_ignores_non_matching_requests_and_other_faults():
    quiet = pattern(7)
    board = FaultBoard(seed=7)
    board.add("error:rate=0.5")
    board.add("latency:ms=1,rate=0.3,path=/auth/*")
    hits, matching = [], 0
    for i in range(128):
        path = "/fhir/Patient" if i % 2 else "/auth/token"
        kinds = [f.spec.kind for f in board.on_request("GET", path)]
        if path.startswith("/fhir"):
            matching += 1
            if kinds:
                hits.append(matching)
    assert hits == quiet


def test_rate_draws_only_on_requests_every_selects():
    assert all(i % 3 == 0 for i in pattern(5, n=300, spec="error:every=3,rate=0.5"))


def test_reset_repeats_a_run_and_can_reseed():
    board = FaultBoard(seed=7)
    board.add("error:rate=0.5")
    first = fired(board, [("GET", "/fhir/x")] * 64)
    board.reset()
    assert board.add("error:rate=0.5") == "f1"
    assert fired(board, [("GET", "/fhir/x")] * 64) == first == pattern(7)
    board.reset(seed=8)
    assert board.seed == 8
    board.add("error:rate=0.5")
    assert fired(board, [("GET", "/fhir/x")] * 64) == pattern(8)


# ---- the board: events, state, one-shots ----------------------------------------------------

def test_on_event_every_and_count():
    board = FaultBoard()
    board.add("deny:every=2,count=2")
    results = [board.on_event("deny") for _ in range(8)]
    assert [i for i, r in enumerate(results, 1) if r] == [2, 4]
    assert results[1].action == {"error": "access_denied"}
    assert board.on_event("expire-refresh") is None


def test_on_event_first_added_wins():
    board = FaultBoard()
    board.add("expire-refresh:count=1")
    second = board.add("expire-refresh")
    first = board.on_event("expire-refresh")
    assert (first.fault_id, first.action) == ("f1", {"error": "invalid_grant"})
    assert board.on_event("expire-refresh").fault_id == second


def test_on_event_rate_is_seeded():
    def run(seed):
        board = FaultBoard(seed=seed)
        board.add("deny:rate=0.5")
        return [board.on_event("deny") is not None for _ in range(64)]
    assert run(3) == run(3) != run(4)


def test_active_lasting_faults():
    board = FaultBoard()
    assert board.active("clock") is None
    board.add("clock:offset=60")
    later = board.add("clock:offset=-60")
    board.add("token-lifetime:seconds=5")
    assert board.active("clock").params == {"offset": -60}
    assert board.active("token-lifetime").params == {"seconds": 5}
    assert board.active("bad-signature") is None
    board.remove(later)
    assert board.active("clock").params == {"offset": 60}
    board.add("bad-signature")
    assert board.active("bad-signature").kind == "bad-signature"
    assert [f["remaining"] for f in board.list()] == [None, None, None]


def test_one_shots_are_taken_once():
    board = FaultBoard()
    board.add("rotate-keys:keep_old=true")
    board.add("throttle")
    board.add("revoke-all")
    listed = board.list()
    assert [(f["fired"], f["remaining"], f["spent"]) for f in listed] == [(0, 1, False), (0, None, False),
                                                                         (0, 1, False)]
    taken = board.take_one_shots()
    assert [(f.fault_id, f.action) for f in taken] == [
        ("f1", {"rotate_keys": True, "keep_old": True}), ("f3", {"revoke_all": True})]
    assert board.take_one_shots() == []
    assert [(f["fired"], f["spent"]) for f in board.list()] == [(1, True), (0, False), (1, True)]
    board.add("rotate-keys")
    assert [f.fault_id for f in board.take_one_shots()] == ["f4"]


@pytest.mark.parametrize("method, kind", [("on_event", "throttle"), ("on_event", "clock"),
                                          ("active", "deny"), ("active", "rotate-keys")])
def test_wrong_kind_for_a_lookup(method, kind):
    with pytest.raises(ValueError):
        getattr(FaultBoard(), method)(kind)


# ---- the board: registry ---------------------------------------------------------------

def test_add_remove_clear_list():
    board = FaultBoard()
    assert board.list() == []
    a = board.add("throttle:every=3,method=GET")
    b = board.add(parse_fault("deny"))
    assert (a, b) == ("f1", "f2")
    assert board.list() == [
        {"id": "f1", "spec": "throttle:every=3,method=GET", "kind": "throttle",
         "description": "answer 429 (Retry-After: 1 s) to every 3rd GET on /fhir/*",
         "fired": 0, "remaining": None, "spent": False},
        {"id": "f2", "spec": "deny", "kind": "deny", "description": "end every authorization in access_denied",
         "fired": 0, "remaining": None, "spent": False},
    ]
    assert board.remove("f1") is True
    assert board.remove("f1") is False
    assert board.remove("nope") is False
    assert [f["id"] for f in board.list()] == ["f2"]
    board.clear()
    assert board.list() == []
    assert board.add("error") == "f3"     # clear keeps counting; reset starts over


def test_add_rejects_bad_input():
    board = FaultBoard()
    with pytest.raises(FaultSpecError, match="did you mean 'throttle'"):
        board.add("throtle")
    with pytest.raises(TypeError):
        board.add(42)
    assert board.list() == []


def test_thread_safety_every_is_exact():
    board = FaultBoard()
    board.add("error:every=10")
    counts = []
    start = threading.Barrier(8)

    def worker():
        start.wait()
        counts.append(sum(len(board.on_request("GET", "/fhir/Patient")) for _ in range(500)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 8 * 500 // 10
    assert board.list()[0]["fired"] == 400


def test_thread_safety_count_is_never_exceeded():
    board = FaultBoard()
    board.add("throttle:count=37")
    counts = []

    def worker():
        counts.append(sum(len(board.on_request("GET", "/fhir/x")) for _ in range(200)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 37


# ---- fuzz --------------------------------------------------------------------------------

_PIECES = list(KINDS) + ["throtle", "", " ", ":", ",", "=", "==", "path", "method", "every", "rate",
                          "count", "retry_after", "status", "ms", "keep_old", "seconds", "offset",
                          "bytes_per_second", "/fhir/*", "/auth/jwks", "[", "]", "*", "?", "GET",
                          "post", "0", "1", "-1", "3", "0.5", "1.5", ".", "1e9", "nan", "true", "no",
                          "200", "500", "599", "9" * 30, "\x00", "\t", "\u00e9", "\u0663", "'", '"']


def _random_spec(rng: random.Random) -> str:
    if rng.random() < 0.5:   # mostly well-formed shape, random content
        items = [f"{rng.choice(_PIECES)}={rng.choice(_PIECES)}" for _ in range(rng.randint(0, 4))]
        return rng.choice(KINDS) + (":" + ",".join(items) if items else "")
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12)))


def test_fuzz_raises_only_fault_spec_errors():
    rng = random.Random(20240601)
    parsed = 0
    board = FaultBoard()
    for _ in range(5000):
        text = _random_spec(rng)
        try:
            spec = parse_fault(text)
        except FaultSpecError as error:
            message = str(error)
            assert message and "\n" not in message and not message.endswith(".")
            continue
        parsed += 1
        assert spec.kind in KINDS
        assert parse_fault(spec.text) == spec
        assert spec.describe()
        board.add(spec)
    assert parsed > 100
    for _ in range(200):
        board.on_request(rng.choice(["GET", "POST"]), rng.choice(["/fhir/Patient", "/auth/jwks", "/"]))
        board.on_event(rng.choice(sorted(EVENT_KINDS)))
    board.take_one_shots()
    assert len(board.list()) == parsed


# ---- step-up -----------------------------------------------------------------------------

def test_step_up_parses_with_a_scope_glob_and_the_event_selectors():
    assert parse_fault("step-up") == FaultSpec(kind="step-up", params={"scope": "*"})
    spec = parse_fault("step-up:scope=patient/MedicationRequest.*,every=2,count=3")
    assert (spec.params, spec.every, spec.count, spec.path) == ({"scope": "patient/MedicationRequest.*"}, 2, 3, None)
    assert spec.kind in EVENT_KINDS and parse_fault(spec.text) == spec
    assert parse_fault("Step-Up : SCOPE = user/Observation.rs ").params == {"scope": "user/Observation.rs"}


@pytest.mark.parametrize("text, message", [
    ("stepup", "unknown kind 'stepup' (did you mean 'step-up'?)"),
    ("step_up:count=1", "unknown kind 'step_up' (did you mean 'step-up'?)"),
    ("step-up:scopes=openid", "step-up does not take 'scopes' (did you mean 'scope'?)"),
    ("step-up:path=/auth/authorize", "step-up does not take 'path' (it takes scope, every, rate, count)"),
    ("step-up:scope=", "'scope' must be a glob over one scope such as patient/MedicationRequest.*, got ''"),
    ("step-up:scope=patient/A.rs patient/B.rs",
     "'scope' must be a glob over one scope such as patient/MedicationRequest.*, got 'patient/A.rs patient/B.rs'"),
    ('step-up:scope=patient/"x"', "'scope' must be a glob over one scope such as patient/MedicationRequest.*, "
                                  "got 'patient/\"x\"'"),
    ("step-up:scope=patinet/MedicationRequest.*", "'scope' names scope context 'patinet', which is not patient, "
                                                  "user or system (did you mean 'patient/MedicationRequest.*'?)"),
    ("step-up:scope=sytem/*.rs", "'scope' names scope context 'sytem', which is not patient, user or system "
                                 "(did you mean 'system/*.rs'?)"),
    ("step-up:scope=clinic/*.rs", "'scope' names scope context 'clinic', which is not patient, user or system "
                                  "(use patient, user or system)"),
    ("step-up:scope=*,count=0", "'count' must be a whole number >= 1, got '0'"),
])
def test_step_up_error_messages(text, message):
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("text, words", [
    ("step-up", "demand a second factor (step-up to urn:mockehr:loa:2) at every authorization"),
    ("step-up:scope=patient/MedicationRequest.*,count=1",
     "demand a second factor (step-up to urn:mockehr:loa:2) at every authorization asking for "
     "patient/MedicationRequest.*, at most once"),
    ("step-up:scope=openid,every=2", "demand a second factor (step-up to urn:mockehr:loa:2) at every 2nd "
                                     "authorization asking for openid"),
])
def test_step_up_describe(text, words):
    assert parse_fault(text).describe() == words


@pytest.mark.parametrize("glob, scopes, hit", [
    ("*", ["openid"], True),
    ("*", [], False),
    ("patient/MedicationRequest.*", ["openid", "patient/MedicationRequest.rs"], True),
    ("patient/MedicationRequest.*", ["patient/MedicationRequest.read"], True),
    ("patient/MedicationRequest.*", ["patient/*.rs"], True),            # a wildcard type grants it too
    ("patient/MedicationRequest.*", ["patient/*.cruds"], True),
    ("patient/MedicationRequest.*", ["user/*.rs", "patient/Observation.rs"], False),
    ("patient/MedicationRequest.*", ["patient/MedicationRequestX.rs"], False),
    ("*/Observation.rs", ["user/Observation.rs"], True),
    ("patient/Observation.rs", ["patient/Observation.rs?category=laboratory"], False),
    ("patient/Observation.rs*", ["patient/Observation.rs?category=laboratory"], True),
    ("user/*.*", ["user/*.cruds"], True),
    ("openid", ["openid", "fhirUser"], True),
    ("offline_access", ["online_access"], False),
])
def test_step_up_scope_glob(glob, scopes, hit):
    assert parse_fault(f"step-up:scope={glob}").matches_scopes(scopes) is hit


def test_step_up_counts_only_authorizations_its_glob_selects():
    board = FaultBoard()
    board.add("step-up:scope=patient/MedicationRequest.*,every=2")
    asks = [["patient/Patient.rs"], ["patient/MedicationRequest.rs"], ["openid"], ["patient/*.rs"],
            ["patient/MedicationRequest.rs"], ["patient/MedicationRequest.rs"]]
    fired = [board.on_event("step-up", scopes=scopes) is not None for scopes in asks]
    assert fired == [False, False, False, True, False, True]  # the 2nd and 4th matching authorizations
    firing = board.on_event("step-up", scopes=["patient/MedicationRequest.rs"]) or \
        board.on_event("step-up", scopes=["patient/MedicationRequest.rs"])
    assert firing.action == {"step_up": "urn:mockehr:loa:2"} and firing.spec.kind == "step-up"
    assert board.on_event("deny") is None  # other event kinds never see it
    assert board.list()[0]["fired"] == 3


def test_step_up_count_and_unfiltered_decisions():
    board = FaultBoard()
    board.add("step-up:count=1")
    assert board.on_event("step-up") is not None  # scopes=None selects every fault of the kind
    assert board.on_event("step-up", scopes=["openid"]) is None
    assert board.list()[0]["spent"] is True
