"""Faults and time around Bulk Data export, over real HTTP.

The bulk fault kinds (transient-error, file-generation-failed, some-file-generation-failed,
file-expired), the request faults (throttle, error) on the status and file URLs, each firing
audited; the bulk delay (202s with progress, never a 429 unless a fault asks), cancel while
running, and files that expire.
"""

from __future__ import annotations

import time

import pytest

from mockehr.fhir.bulk import SplitPolicy
from tests.bulk.conftest import check_in_progress, check_manifest, check_outcome, start_bulk, stop_bulk


def _fired_once(ehr, since: int, fault: dict, **details) -> dict:
    events = ehr.fired(since, fault["id"])
    assert len(events) == 1, events
    event = events[0]
    assert event["fault_kind"] == fault["kind"] and event["spec"] == fault["spec"]
    for key, value in details.items():
        assert event[key] == value, event
    return event


# ---- the bulk kinds ------------------------------------------------------------------------------

def test_transient_error_fails_a_poll_and_the_export_goes_on(ehr, token):
    fault = ehr.add_fault("transient-error:count=1")
    since = ehr.last_event_id()
    status_url = ehr.kickoff("$export", token, {"_type": "Patient"})
    job = status_url.rsplit("/", 1)[1]
    answer = ehr.poll(status_url, token)
    body = check_outcome(answer, 500, "transient")
    assert fault["id"] in body["issue"][0]["diagnostics"] and answer.headers["Retry-After"] == "1"
    manifest = check_manifest(ehr.wait(status_url, token), ehr)
    assert ehr.exported_ids(manifest, token) == {"Patient": {"pat-a", "pat-b", "pat-c"}}
    _fired_once(ehr, since, fault, job=job, path=f"/fhir/$export-status/{job}")
    assert ehr.fault(fault["id"])["spent"] is True


def test_transient_error_every_second_poll(ehr, token):
    ehr.add_fault("transient-error:every=2")
    status_url = ehr.kickoff("$export", token, {"_type": "Patient"})
    ehr.wait(status_url, token)  # done
    codes = [ehr.poll(status_url, token).status_code for _ in range(4)]
    assert codes == [500, 200, 500, 200] or codes == [200, 500, 200, 500]


def test_file_generation_failed_ends_the_job_in_a_500(ehr, token):
    fault = ehr.add_fault("file-generation-failed:count=1")
    since = ehr.last_event_id()
    status_url = ehr.kickoff("$export", token)
    job = status_url.rsplit("/", 1)[1]
    for _ in range(2):  # and it stays failed
        body = check_outcome(ehr.wait(status_url, token), 500, "processing")
        assert "failed" in body["issue"][0]["diagnostics"] and fault["id"] in body["issue"][0]["diagnostics"]
    _fired_once(ehr, since, fault, job=job)
    assert not (ehr.exports.files.root() / job).exists()
    assert ehr.export("$export", token, {"_type": "Patient"})["output"]  # spent: the next export works


def test_some_file_generation_failed_lists_errors_and_keeps_the_rest(ehr, token):
    fault = ehr.add_fault("some-file-generation-failed")
    since = ehr.last_event_id()
    exports = ehr.exports
    saved = exports.policy
    exports.policy = SplitPolicy(max_lines=1)
    try:
        status_url = ehr.kickoff("$export", token, {"_type": "Observation"})
        manifest = ehr.manifest(status_url, token)
    finally:
        exports.policy = saved
    _fired_once(ehr, since, fault, job=status_url.rsplit("/", 1)[1], path="/fhir/$export")
    assert [e["url"].rsplit("/", 1)[1] for e in manifest["output"]] == ["1.Observation.ndjson", "3.Observation.ndjson"]
    assert [e["type"] for e in manifest["error"]] == ["OperationOutcome"] * 2  # split by the same limit
    outcomes = ehr.errors(manifest, token)
    messages = [o["issue"][0]["diagnostics"] for o in outcomes]
    assert len(outcomes) == sum(e["count"] for e in manifest["error"]) == 2
    assert "2.Observation.ndjson" in messages[0] and "4.Observation.ndjson" in messages[1]
    assert all(fault["id"] in m for m in messages)
    failed_url = manifest["output"][0]["url"].replace("1.Observation", "2.Observation")
    check_outcome(ehr.download(failed_url, token), 404, "not-found")
    assert len(ehr.exported_ids(manifest, token)["Observation"]) == 2


def test_some_file_generation_failed_fails_a_lone_file(ehr, token):
    ehr.add_fault("some-file-generation-failed:count=1")
    manifest = ehr.export("$export", token, {"_type": "Patient"})
    assert manifest["output"] == []
    assert "1.Patient.ndjson" in ehr.errors(manifest, token)[0]["issue"][0]["diagnostics"]


def test_file_expired_answers_410(ehr, token):
    manifest = ehr.export("$export", token, {"_type": "Patient"})
    url = manifest["output"][0]["url"]
    fault = ehr.add_fault("file-expired:count=1")
    since = ehr.last_event_id()
    body = check_outcome(ehr.download(url, token), 410, "deleted")
    assert "no longer available" in body["issue"][0]["diagnostics"]
    _fired_once(ehr, since, fault, file="1.Patient.ndjson")
    assert ehr.download(url, token).status_code == 200


def test_bulk_kinds_are_refused_with_a_suggestion(ehr):
    answer = ehr.admin("POST", "faults", json={"spec": "transient_error"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "unknown kind 'transient_error' (did you mean 'transient-error'?)"
    answer = ehr.admin("POST", "faults", json={"spec": "file-expired:path=/fhir/*"})
    assert answer.json()["error"] == "file-expired does not take 'path' (it takes every, rate, count)"


# ---- request faults on the bulk URLs ---------------------------------------------------------------

def test_throttle_on_status_polls(ehr, token):
    fault = ehr.add_fault("throttle:path=/fhir/$export-status/*,retry_after=2,count=2")
    since = ehr.last_event_id()
    status_url = ehr.kickoff("$export", token, {"_type": "Patient"})  # the kick-off is not selected
    for _ in range(2):
        answer = ehr.poll(status_url, token)
        check_outcome(answer, 429, "throttled")
        assert answer.headers["Retry-After"] == "2"
    check_manifest(ehr.wait(status_url, token), ehr)
    assert len(ehr.fired(since, fault["id"])) == 2


def test_error_on_file_downloads(ehr, token):
    manifest = ehr.export("$export", token, {"_type": "Patient"})
    fault = ehr.add_fault("error:status=503,path=/fhir/$export-files/*,count=1")
    check_outcome(ehr.download(manifest["output"][0]["url"], token), 503, "transient")
    assert ehr.download(manifest["output"][0]["url"], token).status_code == 200
    assert ehr.fault(fault["id"])["fired"] == 1


# ---- time: delay, progress, cancel, expiry --------------------------------------------------------

@pytest.fixture(scope="module")
def slow(bulk_dataset):
    """Every export takes at least a second."""
    ehr = start_bulk(bulk_dataset, bulk_delay=1.0)
    yield ehr
    stop_bulk(ehr)


def test_delay_makes_the_export_take_time_and_the_poller_is_never_throttled(slow):
    token = slow.bulk_token()
    began = time.monotonic()
    status_url = slow.kickoff("$export", token)
    answers = []
    while True:
        answer = slow.poll(status_url, token)  # as fast as it can: no 429 without a fault
        answers.append(answer)
        if answer.status_code != 202:
            break
        check_in_progress(answer)
        time.sleep(0.05)
    took = time.monotonic() - began
    assert 1.0 <= took < 10
    assert len(answers) > 3 and {a.status_code for a in answers} == {202, 200}
    percents = [int(a.headers["X-Progress"].split("%")[0]) for a in answers[:-1]]
    assert percents == sorted(percents) and percents[-1] > percents[0]
    check_manifest(answers[-1], slow)


def test_cancel_while_running(slow):
    token = slow.bulk_token()
    status_url = slow.kickoff("$export", token)
    check_in_progress(slow.poll(status_url, token))
    job_id = status_url.rsplit("/", 1)[1]
    cancelled = slow.http.delete(status_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert cancelled.status_code == 202
    assert cancelled.json()["resourceType"] == "OperationOutcome"
    check_outcome(slow.poll(status_url, token), 404, "not-found")
    time.sleep(1.2)  # past the delay: the job thread ended without coming back
    check_outcome(slow.poll(status_url, token), 404, "not-found")
    assert not (slow.exports.files.root() / job_id).exists()


def test_files_expire(slow):
    token = slow.bulk_token()
    exports = slow.exports
    saved = exports.lifetime
    exports.lifetime = 1.0
    try:
        status_url = slow.kickoff("$export", token, {"_type": "Patient"})
        manifest = slow.manifest(status_url, token)
        assert slow.download(manifest["output"][0]["url"], token).status_code == 200
        time.sleep(1.1)
        body = check_outcome(slow.download(manifest["output"][0]["url"], token), 410, "deleted")
        assert "expired" in body["issue"][0]["diagnostics"]
        assert "expired" in check_outcome(slow.poll(status_url, token), 404)["issue"][0]["diagnostics"]
    finally:
        exports.lifetime = saved
