"""Bulk export jobs: each runs in its own thread, streaming the store into NDJSON files.

A job exports resources as they were at its transactionTime (the kick-off): a resource
written since is exported in its version of that moment, or not at all if it is newer
(one deleted between the kick-off and the moment the job reaches its type is left out:
the job picks its resources from the live index).
Its time is proportional to the data; with a delay (serve --bulk-delay) it also takes at
least that long, its progress moving with the clock. Cancel (DELETE) stops it and
removes its files; a finished job's files live `lifetime` seconds (the manifest's
Expires), then the job is forgotten. Finished, cancelled or expired, a job leaves a
tombstone so the status URL can say why it answers 404.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson

from mockehr.fhir import bulk
from mockehr.fhir.access import compartment_ids, filtered_ids
from mockehr.fhir.bundle import shape
from mockehr.fhir.extract import reference_target
from mockehr.fhir.searchparams import reference_params
from mockehr.fhir.bulk_files import ExportFiles, SplitWriter, WrittenFile
from mockehr.fhir.outcome import Problem, operation_outcome
from mockehr.fhir.values import BadValue, date_range
from mockehr.store.store import Store, instant

log = logging.getLogger("mockehr.bulk")

FILE_LIFETIME = 3600   # seconds the files of a finished export stay downloadable
CHECK_EVERY = 200      # resources between two looks at the cancel flag and the progress
_TOMBSTONES = 1000


class Cancelled(Exception):
    pass


@dataclass
class ExportJob:
    id: str
    client_id: str
    request: bulk.ExportRequest
    allowed: dict                        # type -> granular-scope filters (None: none)
    request_url: str                     # the kick-off URL, for the manifest
    files_url: str                       # absolute URL of this job's files, without the file name
    transaction_time: str                # FHIR instant of the kick-off
    patients: list | None = None         # the patients of a Patient/Group export (None: all)
    fail_all: str | None = None          # file-generation-failed fault: why the job fails
    fail_some: str | None = None         # some-file-generation-failed fault: why files fail
    state: str = "running"               # running | completed | failed
    started: float = field(default_factory=time.time)
    finished: float | None = None
    expires: float | None = None
    done: int = 0
    total: int = 0
    seq: int = 0                         # files numbered so far
    activity: str = "selecting resources"
    outputs: list = field(default_factory=list)   # WrittenFile, manifest order
    errors: list = field(default_factory=list)    # WrittenFile of OperationOutcomes
    failure: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    @property
    def types(self) -> list[str]:
        return list(self.allowed)

    def file(self, name: str) -> WrittenFile | None:
        return next((f for f in [*self.outputs, *self.errors] if f.name == name), None)

    def manifest(self) -> dict:
        def entry(f: WrittenFile) -> dict:
            return {"type": f.type, "url": f"{self.files_url}/{f.name}", "count": f.count}
        return bulk.manifest(self.transaction_time, self.request_url, [entry(f) for f in self.outputs],
                             [entry(f) for f in self.errors])


class BulkExports:
    """The export jobs of one app."""

    def __init__(self, store: Store, data_dir: Path | None = None, delay: float = 0.0,
                 clock: Callable[[], float] | None = None, lifetime: float = FILE_LIFETIME,
                 policy: bulk.SplitPolicy | None = None):
        self.store = store
        self.files = ExportFiles(data_dir)
        self.delay = max(0.0, float(delay or 0))
        self.data_clock = clock or time.time   # the store's clock: transactionTime and lastUpdated agree
        self.lifetime = lifetime
        self.policy = policy or bulk.SplitPolicy()
        self._jobs: dict[str, ExportJob] = {}
        self._gone: OrderedDict[str, tuple[str, str]] = OrderedDict()  # job id -> (cancelled|expired, why)
        self._lock = threading.Lock()

    # -- the registry ------------------------------------------------------------------
    def start(self, client_id: str, request: bulk.ExportRequest, allowed: dict, request_url: str,
              fhir_base: str, patients: list | None = None, fail_all: str | None = None,
              fail_some: str | None = None) -> ExportJob:
        self.purge()
        job_id = uuid.uuid4().hex
        job = ExportJob(job_id, client_id, request, allowed, request_url, f"{fhir_base}/$export-files/{job_id}",
                        instant(self.data_clock()), patients, fail_all, fail_some)
        with self._lock:
            self._jobs[job_id] = job
        thread = threading.Thread(target=self._run, args=(job,), name=f"bulk-export-{job_id[:8]}", daemon=True)
        thread.start()
        return job

    def get(self, job_id: str) -> ExportJob | None:
        self.purge()
        with self._lock:
            return self._jobs.get(job_id)

    def why_gone(self, job_id: str) -> tuple[str, str] | None:
        """("cancelled" | "expired", why in words) of a job no longer here; None if never known."""
        with self._lock:
            return self._gone.get(job_id)

    def cancel_all(self) -> int:
        """POST /admin/reset: every job is cancelled and its files removed; answers how many."""
        with self._lock:
            job_ids = list(self._jobs)
        return sum(self.cancel(job_id) for job_id in job_ids)

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is None:
                return False
            self._bury(job_id, "cancelled", f"it was cancelled (DELETE) at {_http_time(time.time())}")
        job.cancel.set()
        self.files.remove(job_id)
        return True

    def purge(self) -> None:
        """Forget finished jobs whose files expired, and remove those files."""
        now = time.time()
        with self._lock:
            expired = [j for j in self._jobs.values() if j.expires is not None and j.expires <= now]
            for job in expired:
                del self._jobs[job.id]
                self._bury(job.id, "expired", f"its files expired at {_http_time(job.expires)}")
        for job in expired:
            self.files.remove(job.id)

    def _bury(self, job_id: str, kind: str, why: str) -> None:
        self._gone[job_id] = (kind, why)
        while len(self._gone) > _TOMBSTONES:
            self._gone.popitem(last=False)

    # -- progress ------------------------------------------------------------------------
    def progress(self, job: ExportJob) -> tuple[float, float]:
        """(fraction done, seconds probably left) of a running job."""
        elapsed = time.time() - job.started
        work = job.done / job.total if job.total else 0.0
        rate = job.done / elapsed if job.done and elapsed > 0 else 0.0
        left = (job.total - job.done) / rate if rate else 1.0
        if self.delay:
            work = min(work, elapsed / self.delay)
            left = max(left, self.delay - elapsed)
        return min(work, 0.99), left

    # -- the work --------------------------------------------------------------------------
    def _run(self, job: ExportJob) -> None:
        try:
            directory = self.files.job_dir(job.id)
            _Export(self, job, directory).run()
            self._wait_out_delay(job)
            if job.fail_all:
                raise _Failed(job.fail_all)
            failed = self._fail_some(job, directory) if job.fail_some else []
            if job.request.notes or failed:
                self._write_errors(job, directory, failed)
            job.activity = "done"
            job.finished = time.time()
            job.expires = job.finished + self.lifetime
            job.state = "completed"
        except Cancelled:
            self.files.remove(job.id)
        except _Failed as failed:
            self._fail(job, str(failed))
        except Exception as exc:  # a bug: say so at the status URL rather than poll forever
            if job.cancel.is_set():  # its directory went away under it: that is the cancel, not a bug
                self.files.remove(job.id)
                return
            log.exception("bulk export %s failed", job.id)
            self._fail(job, f"internal error ({type(exc).__name__}) while exporting; this is a mockehr bug, "
                            "please report it")

    def _fail(self, job: ExportJob, why: str) -> None:
        self.files.remove(job.id)
        job.outputs, job.errors = [], []
        job.failure = why
        job.finished = time.time()
        job.expires = job.finished + self.lifetime
        job.state = "failed"

    def _wait_out_delay(self, job: ExportJob) -> None:
        left = self.delay - (time.time() - job.started)
        if left > 0:
            job.activity = "finishing"
            if job.cancel.wait(left):
                raise Cancelled()
        if job.cancel.is_set():
            raise Cancelled()

    def _fail_some(self, job: ExportJob, directory: Path) -> list[WrittenFile]:
        """The some-file-generation-failed fault: the failing files go; answers them."""
        failing = set(bulk.failed_files(len(job.outputs)))
        kept, failed = [], []
        for position, written in enumerate(job.outputs, 1):
            (failed if position in failing else kept).append(written)
        for written in failed:
            (directory / written.name).unlink(missing_ok=True)
        job.outputs = kept
        return failed

    def _write_errors(self, job: ExportJob, directory: Path, failed: list[WrittenFile]) -> None:
        """One OperationOutcome per line: what handling=lenient left out, and each failed file."""
        issues = [Problem("warning", "not-supported", note) for note in job.request.notes]
        issues += [Problem("error", "exception", f"{job.fail_some}: failed to generate {f.name} ({f.count} {f.type} "
                                                  "resources); export again to get them") for f in failed]
        writer = SplitWriter(directory, "OperationOutcome", self.policy, job.next_seq)
        for problem in issues:
            outcome = operation_outcome([problem])
            writer.write(orjson.dumps(outcome))
        job.errors = writer.close()


class _Failed(Exception):
    pass


class _Export:
    """One run of one job: which resources, in which files."""

    def __init__(self, owner: BulkExports, job: ExportJob, directory: Path):
        self.store = owner.store
        self.policy = owner.policy
        self.job = job
        self.directory = directory
        self.request = job.request
        level = self.request.level
        self.primary = [t for t in job.types if level == "system" or t in bulk.PATIENT_TYPES]
        self.supporting = [t for t in job.types if t not in self.primary]
        self.references: dict[str, set[str]] = {t: set() for t in self.supporting}

    def run(self) -> None:
        job = self.job
        if job.patients is None and self.request.level != "system":
            job.patients = sorted(resource["id"] for resource in self.store.live("Patient"))
        plan = [(rtype, self._ids(rtype)) for rtype in self.primary]
        job.total = sum(len(ids) for _, ids in plan)
        for rtype, ids in plan:
            self._write(rtype, ids)
        for rtype in self.supporting:  # what the patients' data points at
            ids = self._narrowed(rtype, self.references[rtype])
            job.total += len(ids)
            self._write(rtype, ids)

    def _ids(self, rtype: str) -> list[str]:
        if self.job.patients is None and not self._filters(rtype):
            # everything of the type: straight from the store, no search index to build
            return sorted(resource["id"] for resource in self.store.live(rtype))
        index = self.store.index(rtype)
        with self.store.lock:
            if self.job.patients is None:
                ids = set(index.ids)
            elif rtype == "Patient":
                ids = set(self.job.patients) & index.ids
            else:
                ids = set()
                for patient in self.job.patients:
                    ids |= compartment_ids(self.store, rtype, patient) or set()
        return self._narrowed(rtype, ids)

    def _filters(self, rtype: str) -> list:
        return [f for f in (self.job.allowed.get(rtype), self.request.type_filters.get(rtype)) if f]

    def _narrowed(self, rtype: str, ids: set[str]) -> list[str]:
        """Only what the token's granular scopes and the _typeFilter let through."""
        filters = self._filters(rtype)
        if filters:
            index = self.store.index(rtype)
            with self.store.lock:
                for groups in filters:
                    ids = ids & filtered_ids(index, rtype, groups)
        return sorted(ids)

    def _write(self, rtype: str, ids: list[str]) -> None:
        job = self.job
        job.activity = f"exporting {rtype}"
        writer = SplitWriter(self.directory, rtype, self.policy, job.next_seq)
        elements = self.request.elements_for(rtype)
        required = _required(rtype) if elements else frozenset()
        collect = bool(self.supporting) and rtype in self.primary
        try:
            for n, rid in enumerate(ids, 1):
                if n % CHECK_EVERY == 0 and job.cancel.is_set():
                    raise Cancelled()
                job.done += 1
                resource = self._as_of(rtype, rid)
                if resource is None or not self._since_ok(resource):
                    continue
                if collect:
                    self._collect(rtype, rid)
                if elements:
                    resource = shape(resource, None, elements, required)
                writer.write(orjson.dumps(resource))
        except BaseException:
            writer.abandon()
            raise
        job.outputs.extend(writer.close())

    def _as_of(self, rtype: str, rid: str) -> dict | None:
        """The resource as it was at the transactionTime (None: deleted or not yet there)."""
        tt = self.job.transaction_time
        for version in self.store.history(rtype, rid):  # newest first
            if version.method == "SEED" or version.last_updated <= tt:
                return version.resource
        return None

    def _since_ok(self, resource: dict) -> bool:
        if self.request.since_epoch is None:
            return True
        try:
            return date_range((resource.get("meta") or {}).get("lastUpdated", ""))[0] > self.request.since_epoch
        except BadValue:
            return True  # no usable lastUpdated: included, as the IG allows

    def _collect(self, rtype: str, rid: str) -> None:
        index = self.store.index(rtype)
        for param in reference_params(rtype):
            for key in index.keys(rid, param):
                target = reference_target(key) if "/" in key else None
                if target and target[0] in self.references:
                    self.references[target[0]].add(target[1])


def _required(rtype: str) -> frozenset:
    from mockehr.fhir.validate import required_elements

    return required_elements(rtype)


def _http_time(epoch: float) -> str:
    from email.utils import formatdate

    return formatdate(epoch, usegmt=True)
