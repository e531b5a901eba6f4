"""The on-disk dataset: one NDJSON file per resource type, a manifest, a README catalogue."""

from __future__ import annotations

from pathlib import Path

import orjson

from mockehr.store.dataset import read_dataset_dir
from mockehr.synth.generator import Dataset
from mockehr.synth.organisation import STAFF

# Bump when the generator's output changes on purpose (then regenerate seed_data/).
GENERATOR_VERSION = 1


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _age(entry: dict) -> str:
    return f"{entry['age']}" if entry["age"] else "<1"


def render_readme(ds: Dataset, counts: dict[str, int]) -> str:
    lines = [
        "# mockehr synthetic dataset",
        "",
        f"{ds.patients} synthetic patients and {sum(counts.values())} FHIR R4 resources shaped to US Core 7.0.0.",
        "Every person, identifier and record here is made up. Regenerate it with:",
        "",
        "```",
        f"mockehr seed --patients {ds.patients} --seed {ds.seed} --out seed_data",
        "```",
        "",
        f"All dates are relative to a fixed \"today\" of **{ds.anchor}**, so the data reads the same on any day; "
        "the same patients and seed always give byte-identical files.",
        "Each `<ResourceType>.ndjson` holds one resource per line, sorted by id; `manifest.json` has the counts.",
        "",
        "## Practitioners",
        "",
        "Apps can log in as any of these (all at Riverside General Hospital and its clinic).",
        "",
    ]
    lines += _table(["id", "name", "NPI", "role"],
                    [[f"`{s.id}`", s.display, s.npi, s.specialty[1]] for s in STAFF])
    lines += ["", "## Patients", "",
              "The first patient by id is the one a standalone launch opens by default.", ""]
    lines += _table(["id", "name", "age", "sex", "story", "good for testing"],
                    [[f"`{e['id']}`", e["name"], _age(e), e["sex"], e["story"], "; ".join(e["good_for"])]
                     for e in ds.catalogue])
    lines += ["", "## Resources", ""]
    lines += _table(["resource type", "count"], [[t, str(n)] for t, n in sorted(counts.items())])
    return "\n".join(lines) + "\n"


def write_dataset(ds: Dataset, out_dir: str | Path) -> dict[str, int]:
    """Write ds into out_dir (created if need be; stale .ndjson files removed first)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out.glob("*.ndjson")):
        stale.unlink()
    lines_by_type: dict[str, list[bytes]] = {}
    for resource in ds.resources:
        lines_by_type.setdefault(resource["resourceType"], []).append(
            orjson.dumps(resource, option=orjson.OPT_SORT_KEYS))
    counts: dict[str, int] = {}
    for resource_type in sorted(lines_by_type):
        lines = lines_by_type[resource_type]
        (out / f"{resource_type}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
        counts[resource_type] = len(lines)
    manifest = {"generator": f"mockehr synth {GENERATOR_VERSION}", "seed": ds.seed, "patients": ds.patients,
                "anchor": ds.anchor, "counts": counts}
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                                        + b"\n")
    (out / "README.md").write_bytes(render_readme(ds, counts).encode("utf-8"))
    return counts


def load_dataset_dir(path: str | Path) -> list[dict]:
    """Every resource written by write_dataset, in file (type) then line (id) order, dates as written."""
    return list(read_dataset_dir(Path(path), today=None))
