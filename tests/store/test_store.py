"""mockehr.store: versions, history, reset, indexes, and the durable overlay."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from mockehr.fhir.extract import extract
from mockehr.store import dataset
from mockehr.store.overlay import DurableJSONStorage, Overlay, OverlayCorrupt
from mockehr.store.store import Store, VersionConflict, instant

BASE = [
    {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
     "gender": "female", "name": [{"family": "Alpha"}]},
    {"resourceType": "Patient", "id": "p2", "meta": {"versionId": "3", "lastUpdated": "2024-01-02T00:00:00Z"},
     "gender": "male", "name": [{"family": "Beta"}]},
    {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
     "code": {"coding": [{"code": "x"}]}},
]


class Clock:
    """A clock that only moves when told to: equal timestamps on purpose."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_store(data_dir: Path | None = None, clock=None) -> Store:
    return Store(list(BASE), Overlay(data_dir), extract, clock=clock or Clock())


def lookup(store: Store, rtype: str, param: str, key: str) -> set[str]:
    return set(store.index(rtype).lookup(param, key))


# -- versions ---------------------------------------------------------------------------

def test_seed_versions_come_from_meta():
    store = make_store()
    assert store.types() == ["Observation", "Patient"]
    p2 = store.read("Patient", "p2")
    assert (p2.vid, p2.last_updated, p2.method, p2.deleted) == (3, "2024-01-02T00:00:00Z", "SEED", False)
    o1 = store.read("Observation", "o1")
    assert (o1.vid, o1.last_updated) == (1, "1970-01-01T00:00:00Z")  # no meta: version 1 at the epoch
    assert store.read("Patient", "nope") is None
    assert store.history("Patient", "nope") == []


def test_create_update_delete_versions():
    clock = Clock()
    store = make_store(clock=clock)
    created = store.create("Patient", {"resourceType": "Patient", "id": "ignored", "gender": "other",
                                       "meta": {"versionId": "7", "tag": [{"code": "t"}]}})
    assert created.id != "ignored" and created.vid == 1 and created.method == "POST"
    assert created.resource["id"] == created.id
    assert created.resource["meta"] == {"versionId": "1", "lastUpdated": instant(clock.now),
                                        "tag": [{"code": "t"}]}
    clock.now += 1.5
    updated, was_created = store.update("Patient", created.id, dict(created.resource, gender="female"))
    assert (updated.vid, was_created, updated.method) == (2, False, "PUT")
    assert updated.last_updated == instant(clock.now) == "2027-01-15T08:00:01.500Z"
    deleted = store.delete("Patient", created.id)
    assert deleted.deleted and deleted.vid == 3 and deleted.resource is None
    assert store.delete("Patient", created.id) is None
    assert [v.vid for v in store.history("Patient", created.id)] == [3, 2, 1]
    assert store.vread("Patient", created.id, 1).resource["gender"] == "other"
    assert store.vread("Patient", created.id, 4) is None
    again, was_created = store.update("Patient", created.id, {"resourceType": "Patient"})
    assert (again.vid, was_created) == (4, True)


def test_writes_never_touch_the_callers_dict_or_the_base():
    store = make_store()
    body = {"resourceType": "Patient", "id": "p1", "gender": "other"}
    store.update("Patient", "p1", body)
    assert body == {"resourceType": "Patient", "id": "p1", "gender": "other"}
    assert BASE[0]["gender"] == "female" and BASE[0]["meta"]["versionId"] == "1"
    assert store.vread("Patient", "p1", 1).resource is BASE[0]


def test_update_if_match():
    store = make_store()
    version, _ = store.update("Patient", "p2", {"resourceType": "Patient"}, if_match=3)
    assert version.vid == 4
    with pytest.raises(VersionConflict) as conflict:
        store.update("Patient", "p2", {"resourceType": "Patient"}, if_match=3)
    assert conflict.value.current == 4
    with pytest.raises(VersionConflict) as conflict:
        store.update("Patient", "absent", {"resourceType": "Patient"}, if_match=1)
    assert conflict.value.current == 0
    store.delete("Patient", "p1")
    with pytest.raises(VersionConflict):
        store.update("Patient", "p1", {"resourceType": "Patient"}, if_match=2)


def test_all_history_is_newest_first_even_within_one_millisecond():
    store = make_store(clock=Clock())  # every write gets the same timestamp
    a = store.create("Patient", {"resourceType": "Patient"})
    b = store.create("Patient", {"resourceType": "Patient"})
    store.update("Patient", a.id, {"resourceType": "Patient", "id": a.id})
    store.create("Observation", {"resourceType": "Observation"})
    patients = [(v.id, v.vid) for v in store.all_history("Patient")]
    assert patients == [(a.id, 2), (b.id, 1), (a.id, 1), ("p2", 3), ("p1", 1)]
    everything = store.all_history()
    assert everything[0].type == "Observation"
    assert len(everything) == 3 + 4


# -- indexes -------------------------------------------------------------------------------

def test_index_is_lazy_and_follows_writes():
    store = make_store()
    assert lookup(store, "Patient", "gender", "female") == {"p1"}
    created = store.create("Patient", {"resourceType": "Patient", "gender": "female"})
    assert lookup(store, "Patient", "gender", "female") == {"p1", created.id}
    store.update("Patient", "p1", {"resourceType": "Patient", "id": "p1", "gender": "male"})
    assert lookup(store, "Patient", "gender", "female") == {created.id}
    assert lookup(store, "Patient", "gender", "male") == {"p1", "p2"}
    store.delete("Patient", created.id)
    assert lookup(store, "Patient", "gender", "female") == set()
    assert store.count("Patient") == 2
    # a type first seen through a write gets an index too
    store.create("Practitioner", {"resourceType": "Practitioner", "gender": "male"})
    assert len(lookup(store, "Practitioner", "gender", "male")) == 1


def test_writes_before_the_index_is_built_are_in_it():
    store = make_store()
    store.create("Observation", {"resourceType": "Observation", "subject": {"reference": "Patient/p2"}})
    store.delete("Observation", "o1")
    assert store.count("Observation") == 1
    assert len(lookup(store, "Observation", "patient", "Patient/p2")) == 1
    assert lookup(store, "Observation", "patient", "Patient/p1") == set()


def test_reset_restores_the_seed():
    store = make_store()
    made = store.create("Patient", {"resourceType": "Patient", "gender": "female"})
    store.update("Patient", "p1", {"resourceType": "Patient", "id": "p1", "gender": "male"})
    store.delete("Patient", "p2")
    store.create("Practitioner", {"resourceType": "Practitioner"})
    assert store.count("Patient") == 2
    store.reset()
    assert store.read("Patient", made.id) is None
    assert store.read("Patient", "p1").resource is BASE[0]
    assert store.read("Patient", "p2").vid == 3
    assert [v.vid for v in store.history("Patient", "p1")] == [1]
    assert lookup(store, "Patient", "gender", "female") == {"p1"}
    assert lookup(store, "Patient", "gender", "male") == {"p2"}
    assert store.count("Patient") == 2
    assert store.count("Practitioner") == 0
    assert len(store.all_history()) == 3


# -- overlay and durability ------------------------------------------------------------------

def test_store_reloads_its_overlay(tmp_path):
    first = make_store(tmp_path)
    made = first.create("Patient", {"resourceType": "Patient", "gender": "female"})
    first.update("Patient", made.id, {"resourceType": "Patient", "id": made.id, "gender": "male"})
    first.delete("Patient", "p2")
    second = make_store(tmp_path)
    assert [v.vid for v in second.history("Patient", made.id)] == [2, 1]
    assert second.read("Patient", made.id).resource["gender"] == "male"
    assert second.read("Patient", "p2").deleted
    assert [v.vid for v in second.history("Patient", "p2")] == [4, 3]
    assert lookup(second, "Patient", "gender", "male") == {made.id}
    second.reset()
    third = make_store(tmp_path)
    assert third.read("Patient", made.id) is None and not third.read("Patient", "p2").deleted


def test_overlay_file_is_replaced_atomically_and_leaves_no_temp_files(tmp_path):
    overlay = Overlay(tmp_path)
    for n in range(5):
        overlay.append({"n": n})
        on_disk = orjson.loads((tmp_path / Overlay.FILE_NAME).read_bytes())
        assert [doc["n"] for doc in on_disk["versions"].values()] == list(range(n + 1))
    assert sorted(os.listdir(tmp_path)) == [Overlay.FILE_NAME]
    assert [doc["n"] for doc in Overlay(tmp_path).documents()] == [0, 1, 2, 3, 4]
    assert len(Overlay(tmp_path)) == 5


def test_a_failed_write_leaves_the_old_file_no_temp_file_and_no_phantom(tmp_path, monkeypatch):
    overlay = Overlay(tmp_path)
    overlay.append({"n": 0})
    before = (tmp_path / Overlay.FILE_NAME).read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        overlay.append({"n": 1})
    monkeypatch.undo()
    assert (tmp_path / Overlay.FILE_NAME).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [Overlay.FILE_NAME]
    overlay.append({"n": 2})  # the failed document must not ride along with the next write
    assert [doc["n"] for doc in Overlay(tmp_path).documents()] == [0, 2]


def test_a_failed_write_is_not_applied_by_the_store(tmp_path, monkeypatch):
    store = make_store(tmp_path)
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        store.create("Patient", {"resourceType": "Patient", "gender": "female"})
    monkeypatch.undo()
    assert store.count("Patient") == 2
    assert store.all_history("Patient")[0].method == "SEED"


def test_temp_files_left_by_a_kill_are_cleared_on_open(tmp_path):
    Overlay(tmp_path).append({"n": 1})
    (tmp_path / ".mockehr-abc123.tmp").write_bytes(b'{"versions": {"1": {"n": 1}, "2": {"n"')
    (tmp_path / "unrelated.tmp").write_bytes(b"keep me")
    assert [doc["n"] for doc in Overlay(tmp_path).documents()] == [1]
    assert sorted(os.listdir(tmp_path)) == [Overlay.FILE_NAME, "unrelated.tmp"]


def test_durable_storage_reads_empty_and_rejects_corrupt_files(tmp_path):
    path = tmp_path / "nested" / "db.json"
    storage = DurableJSONStorage(path)  # makes the directory
    assert storage.read() is None
    path.write_bytes(b"   \n")
    assert DurableJSONStorage(path).read() is None
    path.write_bytes(b'{"versions": {"1": {"a"')
    with pytest.raises(OverlayCorrupt, match="is not valid JSON"):
        DurableJSONStorage(path)
    path.write_bytes(b"{}")
    storage = DurableJSONStorage(path)
    storage.write({"t": {"1": {"x": 1}}})
    assert orjson.loads(path.read_bytes()) == {"t": {"1": {"x": 1}}}
    storage.close()


def test_memory_overlay():
    overlay = Overlay()
    assert overlay.path is None
    overlay.append({"n": 1})
    overlay.append({"n": 2})
    assert overlay.documents() == [{"n": 1}, {"n": 2}]
    overlay.clear()
    assert len(overlay) == 0


# -- datasets --------------------------------------------------------------------------------

def test_read_dataset_dir(tmp_path):
    (tmp_path / "Patient.ndjson").write_bytes(b'{"resourceType":"Patient","id":"a"}\n\n'
                                              b'{"resourceType":"Patient","id":"b"}\n')
    (tmp_path / "Observation.ndjson").write_bytes(b'{"resourceType":"Observation","id":"o"}')
    (tmp_path / "notes.txt").write_text("ignored")
    assert [r["id"] for r in dataset.read_dataset_dir(tmp_path)] == ["o", "a", "b"]


@pytest.mark.parametrize("content, message", [
    (b"{nope", "Patient.ndjson line 1 is not JSON"),
    (b'{"resourceType":"Patient","id":"a"}\n[1]', "Patient.ndjson line 2 is not a FHIR resource with an id"),
    (b'{"resourceType":"Patient"}', "line 1 is not a FHIR resource with an id"),
])
def test_read_dataset_dir_errors(tmp_path, content, message):
    (tmp_path / "Patient.ndjson").write_bytes(content)
    with pytest.raises(dataset.DatasetError, match=message):
        dataset.read_dataset_dir(tmp_path)


def test_empty_dataset_dir(tmp_path):
    with pytest.raises(dataset.DatasetError, match="holds no \\*.ndjson files"):
        dataset.read_dataset_dir(tmp_path)
