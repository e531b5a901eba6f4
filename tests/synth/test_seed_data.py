"""The committed seed_data/ is exactly what the generator and writer produce today."""

from __future__ import annotations

from pathlib import Path

import orjson

from mockehr import synth
from mockehr.synth.writer import GENERATOR_VERSION

SEED_DATA = Path(__file__).resolve().parents[2] / "seed_data"
REGENERATE = "regenerate it with: python -m mockehr seed --out seed_data"


def test_committed_seed_data_matches_generator(dataset, tmp_path):
    written = synth.write_dataset(dataset, tmp_path)
    expected = sorted(p.name for p in tmp_path.iterdir())
    assert sorted(p.name for p in SEED_DATA.iterdir()) == expected, REGENERATE
    for name in expected:
        assert (SEED_DATA / name).read_bytes() == (tmp_path / name).read_bytes(), f"{name} drifted; {REGENERATE}"
    assert sum(written.values()) == len(dataset.resources)


def test_write_then_load_round_trips(dataset, tmp_path):
    (tmp_path / "Stale.ndjson").write_text("{}\n")
    written = synth.write_dataset(dataset, tmp_path / "nested" / "out")
    assert synth.load_dataset_dir(tmp_path / "nested" / "out") == dataset.resources
    synth.write_dataset(dataset, tmp_path)
    assert not (tmp_path / "Stale.ndjson").exists()
    assert synth.load_dataset_dir(tmp_path) == dataset.resources
    assert written == {t: sum(r["resourceType"] == t for r in dataset.resources) for t in written}


def test_file_format(dataset, tmp_path):
    synth.write_dataset(dataset, tmp_path)
    for path in sorted(tmp_path.glob("*.ndjson")):
        data = path.read_bytes()
        assert data.endswith(b"\n") and not data.endswith(b"\n\n")
        lines = data.split(b"\n")[:-1]
        ids = [orjson.loads(line)["id"] for line in lines]
        assert ids == sorted(ids), path.name
        for line in lines:
            resource = orjson.loads(line)
            assert resource["resourceType"] == path.stem
            assert orjson.dumps(resource, option=orjson.OPT_SORT_KEYS) == line   # compact, sorted keys
    manifest = orjson.loads((tmp_path / "manifest.json").read_bytes())
    assert manifest["generator"] == f"mockehr synth {GENERATOR_VERSION}"
    assert (manifest["seed"], manifest["patients"], manifest["anchor"]) == (
        synth.DEFAULT_SEED, synth.DEFAULT_PATIENTS, dataset.anchor)
    assert sum(manifest["counts"].values()) == len(dataset.resources)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f"mockehr seed --patients {synth.DEFAULT_PATIENTS} --seed {synth.DEFAULT_SEED} --out seed_data" in readme
    for entry in dataset.catalogue:
        assert f"`{entry['id']}`" in readme and entry["name"] in readme
    assert "`pr-okafor`" in readme


def test_catalogue_describes_every_patient(dataset, by_type):
    patients = {p["id"]: p for p in by_type["Patient"]}
    assert [e["id"] for e in dataset.catalogue] == sorted(patients)
    for entry in dataset.catalogue:
        patient = patients[entry["id"]]
        assert entry["birthDate"] == patient["birthDate"] and entry["sex"] == patient["gender"]
        assert entry["story"] and entry["good_for"]
        assert entry["counts"]["Patient"] == 1
