"""Export jobs on a real Store, without HTTP: what a job exports as of its transactionTime,
how it fails, and how delay, progress and cancel behave."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from mockehr.fhir import bulk
from mockehr.fhir.bulk_jobs import BulkExports, ExportJob, _Export
from mockehr.fhir.extract import extract
from mockehr.store.overlay import Overlay
from mockehr.store.store import Store, instant
from tests.auth.conftest import new_observation
from tests.bulk.conftest import DATASET


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def store_with(clock: Clock) -> Store:
    return Store([dict(r) for r in DATASET], Overlay(None), extract, clock)


def wait_until(check, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def run_job(exports: BulkExports, tmp_path, transaction_time: str, level: str = "system", types=None,
            patients=None) -> ExportJob:
    req = bulk.parse_kickoff(level, [("_type", ",".join(types))] if types else [])
    allowed = {t: None for t in (types or ["Patient", "Observation", "Encounter"])}
    job = ExportJob("job1", "client", req, allowed, "http://h/fhir/$export", "http://h/fhir/$export-files/job1",
                    transaction_time, patients)
    _Export(exports, job, tmp_path).run()
    return job


def lines(tmp_path, job: ExportJob, rtype: str) -> list[dict]:
    return [orjson.loads(line) for f in job.outputs if f.type == rtype
            for line in (tmp_path / f.name).read_bytes().splitlines()]


def test_resources_are_exported_as_they_were_at_the_transaction_time(tmp_path):
    clock = Clock()
    store = store_with(clock)
    exports = BulkExports(store, clock=clock)
    clock.now += 10
    before = store.create("Observation", new_observation("pat-a"))           # written before the kick-off
    changed = store.create("Observation", new_observation("pat-b"))
    clock.now += 10
    transaction_time = instant(clock.now)
    clock.now += 10
    store.update("Observation", changed.id, {**changed.resource, "status": "amended"})  # after: not seen
    after = store.create("Observation", new_observation("pat-c"))                      # after: not exported
    store.update("Patient", "pat-c", {**store.read("Patient", "pat-c").resource, "active": False})
    job = run_job(exports, tmp_path, transaction_time, types=["Observation", "Patient"])
    observations = {o["id"]: o for o in lines(tmp_path, job, "Observation")}
    assert before.id in observations and after.id not in observations
    assert observations[changed.id]["status"] == "final" and observations[changed.id]["meta"]["versionId"] == "1"
    patients = {p["id"]: p for p in lines(tmp_path, job, "Patient")}
    assert set(patients) == {"pat-a", "pat-b", "pat-c"} and patients["pat-c"]["active"] is True  # the seed version
    assert job.done == job.total == 4 + 2 + 1 + 3  # every id looked at once (the new one, skipped, too)


def test_a_resource_deleted_before_the_transaction_time_is_not_exported(tmp_path):
    clock = Clock()
    store = store_with(clock)
    clock.now += 10
    store.delete("Observation", "obs-b-lab")
    job = run_job(BulkExports(store, clock=clock), tmp_path, instant(clock.now + 1), types=["Observation"])
    assert {o["id"] for o in lines(tmp_path, job, "Observation")} == {"obs-a-vital", "obs-a-lab", "obs-b-vital"}


def test_patient_level_job_takes_every_patient_and_what_they_reference(tmp_path):
    clock = Clock()
    store = store_with(clock)
    req = bulk.parse_kickoff("patient", [])
    allowed = {t: None for t in ("Patient", "MedicationRequest", "Medication", "Organization")}
    job = ExportJob("j", "c", req, allowed, "u", "f", instant(clock.now + 1))
    _Export(BulkExports(store, clock=clock), job, tmp_path).run()
    assert job.patients == ["pat-a", "pat-b", "pat-c"]
    assert [f.type for f in job.outputs] == ["Patient", "MedicationRequest", "Medication"]  # supporting last


def test_a_bug_fails_the_job_with_a_message(tmp_path, monkeypatch):
    def boom(self):
        raise RuntimeError("kaboom")
    monkeypatch.setattr(_Export, "run", boom)
    exports = BulkExports(store_with(Clock()))
    job = exports.start("c", bulk.parse_kickoff("system", []), {"Patient": None}, "u", "http://h/fhir")
    wait_until(lambda: job.state != "running")
    assert job.state == "failed" and "mockehr bug" in job.failure and job.outputs == []
    assert not (exports.files.root() / job.id).exists()


def test_delay_progress_and_cancel():
    exports = BulkExports(store_with(Clock()), delay=5)
    job = exports.start("c", bulk.parse_kickoff("system", []), {"Patient": None}, "u", "http://h/fhir")
    wait_until(lambda: job.activity == "finishing")  # the work is done in no time; the delay is left
    fraction, left = exports.progress(job)
    assert fraction < 0.5 and 3 < left <= 5
    assert bulk.retry_after(left) == 5
    assert job.state == "running" and exports.get(job.id) is job
    assert exports.cancel(job.id) is True and exports.cancel(job.id) is False
    name = f"bulk-export-{job.id[:8]}"
    wait_until(lambda: all(t.name != name for t in threading.enumerate()), timeout=2)  # woke up and stopped
    assert job.state == "running"  # never completed
    assert exports.get(job.id) is None and exports.why_gone(job.id)[0] == "cancelled"
    assert not (exports.files.root() / job.id).exists()


def test_finished_jobs_expire(tmp_path):
    exports = BulkExports(store_with(Clock()), lifetime=0.5)
    job = exports.start("c", bulk.parse_kickoff("system", []), {"Patient": None}, "u", "http://h/fhir")
    wait_until(lambda: job.state == "completed")
    assert exports.get(job.id) is job and (exports.files.root() / job.id / "1.Patient.ndjson").exists()
    time.sleep(0.6)
    assert exports.get(job.id) is None
    kind, why = exports.why_gone(job.id)
    assert kind == "expired" and why.startswith("its files expired at ") and why.endswith(" GMT")
    assert not (exports.files.root() / job.id).exists()


@pytest.mark.parametrize("fail_all, fail_some, state", [("fault f1", None, "failed"), (None, "fault f2", "completed")])
def test_fault_flags_shape_the_end(fail_all, fail_some, state):
    exports = BulkExports(store_with(Clock()))
    job = exports.start("c", bulk.parse_kickoff("system", []), {"Patient": None, "Encounter": None}, "u",
                        "http://h/fhir", fail_all=fail_all, fail_some=fail_some)
    wait_until(lambda: job.state != "running")
    assert job.state == state
    if fail_all:
        assert job.failure == "fault f1" and job.outputs == job.errors == []
    else:
        manifest = job.manifest()
        assert [o["type"] for o in manifest["output"]] == ["Patient"]  # the 2nd file (Encounter) failed
        assert [(e["type"], e["count"]) for e in manifest["error"]] == [("OperationOutcome", 1)]
        assert manifest["error"][0]["url"] == f"http://h/fhir/$export-files/{job.id}/3.OperationOutcome.ndjson"
