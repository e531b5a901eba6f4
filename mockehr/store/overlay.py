"""The write overlay: every version written since the seed, kept in TinyDB.

In memory by default; under --data-dir a JSON file that is replaced
atomically (write a temp file, fsync, rename, fsync the directory) on every
write, so a write that was acknowledged survives a kill at any moment and
the file is never left half-written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson
from tinydb import TinyDB
from tinydb.storages import MemoryStorage, Storage


class OverlayCorrupt(RuntimeError):
    pass


TEMP_PREFIX, TEMP_SUFFIX = ".mockehr-", ".tmp"


def atomic_write(path: Path, payload: bytes, mode: int | None = None) -> None:
    """Replace `path` with `payload` so that a kill at any moment leaves the old or the new file, whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def clear_stale_temp_files(directory: Path) -> None:
    """A kill between writing a temp file and renaming it leaves it behind (never acknowledged, never needed)."""
    for stale in directory.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


class DurableJSONStorage(Storage):
    """A TinyDB storage that keeps the data in memory and replaces the file atomically."""

    def __init__(self, path: str | os.PathLike):
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        clear_stale_temp_files(self._path.parent)
        self._data = None
        if self._path.exists():
            raw = self._path.read_bytes()
            if raw.strip():
                try:
                    self._data = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise OverlayCorrupt(f"{self._path} is not valid JSON ({exc}); "
                                         "it was not written by mockehr or was edited by hand") from None

    def read(self):
        # A shallow copy: TinyDB edits the top-level dict it reads before calling write(),
        # and a write that fails must not leave its document behind for the next one to persist.
        return dict(self._data) if isinstance(self._data, dict) else self._data

    def write(self, data) -> None:
        atomic_write(self._path, orjson.dumps(data))
        self._data = data

    def close(self) -> None:
        pass


class Overlay:
    """Append-only list of version documents, oldest first."""

    FILE_NAME = "fhir-overlay.json"

    def __init__(self, data_dir: Path | None = None):
        if data_dir is None:
            self._db = TinyDB(storage=MemoryStorage)
            self.path = None
        else:
            self.path = Path(data_dir) / self.FILE_NAME
            self._db = TinyDB(self.path, storage=DurableJSONStorage)
        self._versions = self._db.table("versions", cache_size=0)

    def append(self, document: dict) -> None:
        self._versions.insert(document)

    def documents(self) -> list[dict]:
        return [dict(doc) for doc in sorted(self._versions.all(), key=lambda d: d.doc_id)]

    def clear(self) -> None:
        self._versions.truncate()

    def __len__(self) -> int:
        return len(self._versions)
