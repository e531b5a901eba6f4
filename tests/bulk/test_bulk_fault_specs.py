"""The bulk export fault kinds in the pure fault modules: parsing, messages, descriptions, firing."""

from __future__ import annotations

import pytest

from mockehr.faults import (BULK_KINDS, EVENT_KINDS, KINDS, REQUEST_KINDS, FaultBoard, FaultSpec, FaultSpecError,
                            parse_fault)

ACTIONS = {
    "transient-error": {"status": 500, "issue": "transient"},
    "file-generation-failed": {"fail": "export"},
    "some-file-generation-failed": {"fail": "some-files"},
    "file-expired": {"status": 410},
}


def test_bulk_kinds_are_event_kinds_listed_last():
    assert BULK_KINDS == set(ACTIONS)
    assert BULK_KINDS <= EVENT_KINDS and not BULK_KINDS & REQUEST_KINDS
    assert KINDS[-4:] == ("transient-error", "file-generation-failed", "some-file-generation-failed", "file-expired")


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_parse_with_defaults_and_selectors(kind):
    assert parse_fault(kind) == FaultSpec(kind=kind, params={})
    spec = parse_fault(f" {kind.upper()} : every=2 , rate=0.5 , COUNT=3 ")
    assert (spec.kind, spec.path, spec.method, spec.every, spec.rate, spec.count) == (kind, None, None, 2, 0.5, 3)
    assert not spec.matches("GET", "/fhir/$export-status/x")  # not a request fault


@pytest.mark.parametrize("text, message", [
    ("transient_error", "unknown kind 'transient_error' (did you mean 'transient-error'?)"),
    ("file_generation_failed", "unknown kind 'file_generation_failed' (did you mean 'file-generation-failed'?)"),
    ("some_file_generation_failed",
     "unknown kind 'some_file_generation_failed' (did you mean 'some-file-generation-failed'?)"),
    ("file_expired", "unknown kind 'file_expired' (did you mean 'file-expired'?)"),
    ("file-expird", "unknown kind 'file-expird' (did you mean 'file-expired'?)"),
    ("transient-error:path=/fhir/*", "transient-error does not take 'path' (it takes every, rate, count)"),
    ("file-expired:status=404", "file-expired does not take 'status' (it takes every, rate, count)"),
    ("file-generation-failed:evry=2", "file-generation-failed does not take 'evry' (did you mean 'every'?)"),
    ("some-file-generation-failed:count=0", "'count' must be a whole number >= 1, got '0'"),
])
def test_error_messages(text, message):
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("text, words", [
    ("transient-error", "answer 500 (transient) to every bulk export status poll"),
    ("transient-error:every=3,count=1", "answer 500 (transient) to every 3rd bulk export status poll, at most once"),
    ("file-generation-failed", "fail every bulk export (500 at its status URL)"),
    ("file-generation-failed:rate=0.5", "fail every bulk export (500 at its status URL), with probability 0.5"),
    ("some-file-generation-failed", "fail every second file of every bulk export (listed in error[])"),
    ("file-expired:count=2", "answer 410 (expired) to every bulk export file download, at most twice"),
])
def test_describe(text, words):
    assert parse_fault(text).describe() == words


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_on_event_fires_with_the_kinds_action(kind):
    board = FaultBoard()
    fault_id = board.add(f"{kind}:every=2,count=2")
    fired = [board.on_event(kind) for _ in range(6)]
    assert [i for i, f in enumerate(fired, 1) if f] == [2, 4]
    assert fired[1].action == ACTIONS[kind] and fired[1].fault_id == fault_id
    others = [k for k in ACTIONS if k != kind]
    assert all(board.on_event(k) is None for k in others)
    assert board.list()[0]["spent"] is True


def test_bulk_faults_never_answer_a_request():
    board = FaultBoard()
    for kind in ACTIONS:
        board.add(kind)
    assert board.on_request("GET", "/fhir/$export-status/abc") == []
    assert board.on_request("GET", "/fhir/$export-files/abc/1.Patient.ndjson") == []


def test_request_faults_reach_the_bulk_urls():
    board = FaultBoard()
    board.add("throttle:path=/fhir/$export-status/*")
    firings = board.on_request("GET", "/fhir/$export-status/abc")
    assert [f.action for f in firings] == [{"status": 429, "retry_after": 1}]
    assert board.on_request("GET", "/fhir/$export") == []
    assert board.on_request("GET", "/fhir/$export-files/abc/1.Patient.ndjson") == []


def test_rate_is_seeded_for_bulk_kinds_too():
    def run(seed):
        board = FaultBoard(seed=seed)
        board.add("transient-error:rate=0.5")
        return [board.on_event("transient-error") is not None for _ in range(64)]
    assert run(5) == run(5) != run(6)
