"""Bulk export files on disk: where they live, how they are written (split), how they are read back.

Files go under DATA_DIR/bulk/JOB/ with --data-dir (what an earlier run left there is removed
on first use: the jobs that made it are gone), else under a temporary directory removed at
exit. A type's resources stream into numbered NDJSON files, one resource per line, a new
file whenever the SplitPolicy says the current one is full; nothing is held in memory but
the line being written. Downloads stream back from disk in blocks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from mockehr.fhir.bulk import SplitPolicy, file_name

READ_BLOCK = 64 * 1024
WRITE_BUFFER = 1024 * 1024


class ExportFiles:
    """The directory of every job's files, created on first use."""

    def __init__(self, data_dir: Path | None):
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._root: Path | None = None
        self._lock = threading.Lock()

    def root(self) -> Path:
        with self._lock:
            if self._root is None:
                if self._data_dir is not None:
                    root = self._data_dir / "bulk"
                    shutil.rmtree(root, ignore_errors=True)  # files of jobs an earlier run started
                    root.mkdir(parents=True, exist_ok=True)
                else:
                    root = Path(tempfile.mkdtemp(prefix="mockehr-bulk-"))
                    weakref.finalize(self, shutil.rmtree, str(root), True)  # at exit, or when the app goes
                self._root = root
            return self._root

    def job_dir(self, job_id: str) -> Path:
        directory = self.root() / job_id
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def remove(self, job_id: str) -> None:
        if self._root is not None:
            shutil.rmtree(self._root / job_id, ignore_errors=True)


@dataclass(frozen=True)
class WrittenFile:
    name: str
    type: str
    count: int
    size: int


class SplitWriter:
    """NDJSON lines of one resource type into `{seq}.{type}.ndjson` files in `directory`;
    `next_seq()` numbers the files across the whole export (the manifest's order)."""

    def __init__(self, directory: Path, rtype: str, policy: SplitPolicy, next_seq: Callable[[], int]):
        self.directory = directory
        self.rtype = rtype
        self.policy = policy
        self._next_seq = next_seq
        self._handle: BinaryIO | None = None
        self._name = ""
        self._lines = 0
        self._size = 0
        self.files: list[WrittenFile] = []

    def write(self, line: bytes) -> None:
        """One resource, serialized without its newline."""
        if b"\n" in line:
            raise ValueError("an NDJSON line cannot hold a newline")
        length = len(line) + 1
        if self._handle is None or not self.policy.fits(self._lines, self._size, length):
            self._finish()
            self._name = file_name(self._next_seq(), self.rtype)
            self._handle = open(self.directory / self._name, "wb", buffering=WRITE_BUFFER)
        self._handle.write(line)
        self._handle.write(b"\n")
        self._lines += 1
        self._size += length

    def close(self) -> list[WrittenFile]:
        self._finish()
        return self.files

    def _finish(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self.files.append(WrittenFile(self._name, self.rtype, self._lines, self._size))
            self._handle, self._lines, self._size = None, 0, 0

    def abandon(self) -> None:
        """Close without listing the file being written (the job was cancelled or failed)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class FileChunks:
    """A file's bytes for a streamed response; opened at once, so a file removed meanwhile
    (a cancel, an expiry) still downloads whole. Closed by the server when the answer ends."""

    def __init__(self, path: Path):
        self._handle = open(path, "rb")
        self.size = os.fstat(self._handle.fileno()).st_size

    def __iter__(self):
        while True:
            block = self._handle.read(READ_BLOCK)
            if not block:
                break
            yield block
        self.close()

    def close(self) -> None:
        self._handle.close()
