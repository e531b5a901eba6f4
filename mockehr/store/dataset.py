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
import os
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
    # split() with the group keeps the dates at the odd positions: each distinct date is computed
    # once and the pieces joined, instead of a Python callback per match (faster on 5 MB).
    parts = _DATE_START.split(raw)
    dates = parts[1::2]
    moved: dict[bytes, bytes] = {}
    for text in set(dates):
        try:
            shifted = date.fromordinal(date.fromisoformat(text.decode()).toordinal() + days)
            moved[text] = b'"' + shifted.isoformat().encode()
        except ValueError:
            moved[text] = b'"' + text  # not a calendar date: leave it as it is
    parts[1::2] = [moved[text] for text in dates]
    return b"".join(parts)


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


def freeze_gc() -> None:
    """Take the objects alive now, the cached dataset among them, out of the cyclic GC's sight.

    Why: a cached dataset is ~half a million dicts, lists and strings that live as long as the
    process and are never garbage, yet every full collection walks them all again; in a test
    process that starts and resets servers, that made create_app cost 60-100 ms at random
    instead of ~25 ms (bench/api_bench.py). gc.freeze() after the first load ends that.

    Why it is acceptable inside a user's test process: freezing frees nothing early and breaks
    nothing. Frozen objects are still freed by reference counting (the dataset is acyclic: an
    evicted dataset is freed whole); the only cost is that reference *cycles* among objects that
    were alive at this moment (modules, session fixtures: things that live to the end anyway)
    are never collected if they become garbage later. It happens once per dataset load, not per
    app or test. A later load (another dataset, mid-session) first collects, so that the stopped
    servers waiting for the collector are freed rather than frozen; the first load skips that
    full collection (10-25 ms), as a process has made little cyclic garbage by then.
    MOCKEHR_GC_FREEZE=0 turns it off; gc.unfreeze() undoes it."""
    if os.environ.get("MOCKEHR_GC_FREEZE", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if gc.get_freeze_count():
        gc.collect()
    gc.freeze()


@lru_cache(maxsize=4)
def cached_dataset_dir(path: Path, today: date | None) -> tuple[dict, ...]:
    resources = read_dataset_dir(path, today)
    freeze_gc()
    return resources


@lru_cache(maxsize=4)
def cached_generated(patients: int, seed: int, today: date | None) -> tuple[dict, ...]:
    from mockehr import synth  # Faker is only imported when a dataset is generated

    generated = synth.generate_dataset(patients=patients, seed=seed)
    if today is None:
        resources = tuple(generated.resources)
    else:
        days = week_shift(date.fromisoformat(generated.anchor), today)
        raw = b"\n".join(orjson.dumps(r) for r in generated.resources)
        resources = tuple(parse_ndjson(shift_dates(raw, days), "generated dataset"))
    del generated
    gc.collect()  # the generator's garbage goes now, not into the frozen set (this took seconds anyway)
    freeze_gc()
    return resources
