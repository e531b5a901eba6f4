"""Reading a dataset directory (one NDJSON file per resource type), fast.

The default dataset is read once per process and shared read-only by every
app built in it: the store never mutates base resources, it writes copies.

A dataset written by `mockehr seed` has a fixed "today" (manifest.json's
`anchor`). When served, its dates are moved forward by whole weeks so that
the anchor falls in the current week: the newborn stays a newborn, "three
days ago" stays recent, and visits stay on the weekdays they were on.
"""

from __future__ import annotations

import gc
import re
from datetime import date
from functools import lru_cache
from pathlib import Path

import orjson


class DatasetError(RuntimeError):
    pass


# A JSON string that starts with a full date: "2024-03-05" or "2024-03-05T10:00:00Z".
_DATE_START = re.compile(rb'"(\d{4}-\d{2}-\d{2})(?=["T])')


def week_shift(anchor: date, today: date) -> int:
    """Days to add to the dataset's dates: whole weeks, so weekdays are kept."""
    return (today - anchor).days // 7 * 7


def shift_dates(raw: bytes, days: int) -> bytes:
    """Move every full date in NDJSON bytes by `days` (partial dates like '2019' stay)."""
    if days == 0:
        return raw
    moved: dict[bytes, bytes] = {}

    def move(match: re.Match) -> bytes:
        text = match.group(1)
        if text not in moved:
            try:
                shifted = date.fromordinal(date.fromisoformat(text.decode()).toordinal() + days)
                moved[text] = shifted.isoformat().encode()
            except ValueError:
                moved[text] = text  # not a calendar date: leave it as it is
        return b'"' + moved[text]

    return _DATE_START.sub(move, raw)


def dataset_anchor(path: Path) -> date | None:
    manifest = Path(path) / "manifest.json"
    if not manifest.exists():
        return None
    try:
        return date.fromisoformat(orjson.loads(manifest.read_bytes())["anchor"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise DatasetError(f"{manifest} has no valid 'anchor' date") from None


def parse_ndjson(raw: bytes, name: str) -> list[dict]:
    resources = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"{name} line {number} is not JSON: {exc}") from None
        if not isinstance(resource, dict) or "resourceType" not in resource or "id" not in resource:
            raise DatasetError(f"{name} line {number} is not a FHIR resource with an id")
        resources.append(resource)
    return resources


def read_dataset_dir(path: Path, today: date | None = None) -> tuple[dict, ...]:
    """Every resource in the directory; dates moved to `today` when the dataset has an anchor."""
    path = Path(path)
    files = sorted(path.glob("*.ndjson"))
    if not files:
        raise DatasetError(f"{path} holds no *.ndjson files; write one with `mockehr seed --out {path}`")
    anchor = dataset_anchor(path)
    days = week_shift(anchor, today) if anchor and today else 0
    resources: list[dict] = []
    # Half a million small acyclic objects: pausing the cyclic GC halves the load time.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for file in files:
            resources += parse_ndjson(shift_dates(file.read_bytes(), days), file.name)
    finally:
        if was_enabled:
            gc.enable()
    return tuple(resources)


@lru_cache(maxsize=4)
def cached_dataset_dir(path: Path, today: date | None) -> tuple[dict, ...]:
    return read_dataset_dir(path, today)


@lru_cache(maxsize=4)
def cached_generated(patients: int, seed: int, today: date | None) -> tuple[dict, ...]:
    from mockehr import synth  # Faker is only imported when a dataset is generated

    generated = synth.generate_dataset(patients=patients, seed=seed)
    if today is None:
        return tuple(generated.resources)
    days = week_shift(date.fromisoformat(generated.anchor), today)
    raw = b"\n".join(orjson.dumps(r) for r in generated.resources)
    return tuple(parse_ndjson(shift_dates(raw, days), "generated dataset"))
