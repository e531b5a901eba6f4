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


class DurableJSONStorage(Storage):
    """A TinyDB storage that keeps the data in memory and replaces the file atomically."""

    _TEMP_PREFIX, _TEMP_SUFFIX = ".overlay-", ".tmp"

    def __init__(self, path: str | os.PathLike):
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # A kill between writing a temp file and renaming it leaves the temp file behind
        # (never acknowledged, so never needed): clear those before they pile up.
        for stale in self._path.parent.glob(f"{self._TEMP_PREFIX}*{self._TEMP_SUFFIX}"):
            stale.unlink(missing_ok=True)
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
        payload = orjson.dumps(data)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=self._TEMP_PREFIX, suffix=self._TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
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
