"""Reading a dataset directory (one NDJSON file per resource type), fast.

The default dataset is read once per process and shared read-only by every
app built in it: the store never mutates base resources, it writes copies.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import orjson


class DatasetError(RuntimeError):
    pass


def read_dataset_dir(path: Path) -> tuple[dict, ...]:
    path = Path(path)
    files = sorted(path.glob("*.ndjson"))
    if not files:
        raise DatasetError(f"{path} holds no *.ndjson files; write one with `mockehr seed --out {path}`")
    resources: list[dict] = []
    for file in files:
        for number, line in enumerate(file.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DatasetError(f"{file.name} line {number} is not JSON: {exc}") from None
            if not isinstance(resource, dict) or "resourceType" not in resource or "id" not in resource:
                raise DatasetError(f"{file.name} line {number} is not a FHIR resource with an id")
            resources.append(resource)
    return tuple(resources)


@lru_cache(maxsize=4)
def cached_dataset_dir(path: Path) -> tuple[dict, ...]:
    return read_dataset_dir(path)


@lru_cache(maxsize=4)
def cached_generated(patients: int, seed: int) -> tuple[dict, ...]:
    from mockehr import synth  # Faker is only imported when a dataset is generated

    return tuple(synth.generate_dataset(patients=patients, seed=seed).resources)
