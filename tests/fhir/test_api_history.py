"""history (instance, type, system) and Patient/$everything over real HTTP."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import RESOURCES, diagnostics, link, typed_ids

SEED_PATIENTS_NEWEST_FIRST = ["Patient/pat-5", "Patient/pat-4", "Patient/pat-3", "Patient/pat-2", "Patient/pat-1"]


def history(api, path: str, params=None) -> dict:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "history"
    return body


def entry_keys(bundle: dict) -> list[str]:
    """'Type/id@vid' per entry (deletions have no resource: taken from fullUrl and etag)."""
    out = []
    for entry in bundle.get("entry", []):
        typed = "/".join(entry["fullUrl"].split("/")[-2:])
        vid = entry["response"]["etag"][3:-1]
        out.append(f"{typed}@{vid}")
    return out


def _update(api, path: str, **changes) -> None:
    resource = api.get(path).json()
    resource.update(changes)
    assert api.put(path, json=resource).status_code == 200


# -- instance ---------------------------------------------------------------------------

def test_instance_history_newest_first_with_deletion(api):
    _update(api, "Patient/pat-5", gender="other")
    _update(api, "Patient/pat-5", gender="female")
    assert api.delete("Patient/pat-5").status_code == 200
    bundle = history(api, "Patient/pat-5/_history")
    assert bundle["total"] == 4
    assert entry_keys(bundle) == ["Patient/pat-5@4", "Patient/pat-5@3", "Patient/pat-5@2", "Patient/pat-5@1"]
    deletion, latest, first_update, seed = bundle["entry"]
    assert "resource" not in deletion
    assert deletion["request"] == {"method": "DELETE", "url": "Patient/pat-5"}
    assert latest["resource"]["gender"] == "female" and latest["resource"]["meta"]["versionId"] == "3"
    assert latest["request"] == {"method": "PUT", "url": "Patient/pat-5"}
    assert first_update["resource"]["gender"] == "other"
    assert seed["resource"]["gender"] == "unknown"
    assert seed["response"]["lastModified"] == "2024-01-06T00:00:00Z"
    assert deletion["fullUrl"] == f"{api.base}/Patient/pat-5"


def test_instance_history_of_a_created_resource(api):
    created = api.post("Patient", json={"resourceType": "Patient", "gender": "male"})
    new_id = created.json()["id"]
    bundle = history(api, f"Patient/{new_id}/_history")
    assert entry_keys(bundle) == [f"Patient/{new_id}@1"]
    assert bundle["entry"][0]["request"] == {"method": "POST", "url": "Patient"}
    assert bundle["entry"][0]["response"]["status"].startswith("201")


def test_instance_history_errors(api):
    response = api.get("Patient/nope/_history")
    assert response.status_code == 404
    assert diagnostics(response.json()) == "Patient/nope is not known to this server"
    assert api.get("Foo/1/_history").status_code == 404
    assert api.get("Patient/bad$id/_history").status_code == 400


# -- type and system ----------------------------------------------------------------------

def test_type_history(api):
    bundle = history(api, "Patient/_history")
    assert bundle["total"] == 5
    assert entry_keys(bundle) == [f"{p}@1" for p in SEED_PATIENTS_NEWEST_FIRST]

    _update(api, "Patient/pat-2", active=True)
    created = api.post("Patient", json={"resourceType": "Patient", "gender": "male"}).json()["id"]
    assert api.delete("Patient/pat-5").status_code == 200
    bundle = history(api, "Patient/_history")
    assert bundle["total"] == 8
    assert entry_keys(bundle)[:3] == ["Patient/pat-5@2", f"Patient/{created}@1", "Patient/pat-2@2"]
    assert entry_keys(bundle)[3:] == [f"{p}@1" for p in SEED_PATIENTS_NEWEST_FIRST]
    assert "Observation" not in str(entry_keys(bundle))


def test_writes_in_quick_succession_come_out_newest_first(api):
    made = [api.post("Patient", json={"resourceType": "Patient", "gender": "male"}).json()["id"]
            for _ in range(5)]
    bundle = history(api, "Patient/_history", {"_count": "5"})
    assert entry_keys(bundle) == [f"Patient/{rid}@1" for rid in reversed(made)]


def test_system_history(api):
    bundle = history(api, "_history")
    assert bundle["total"] == len(RESOURCES)
    _update(api, "Observation/obs-3", status="final")
    bundle = history(api, "_history", {"_count": "2"})
    assert bundle["total"] == len(RESOURCES) + 1
    assert entry_keys(bundle) == ["Observation/obs-3@2", "Patient/pat-5@1"]


def test_history_since(api):
    bundle = history(api, "Patient/_history", {"_since": "2024-01-04T00:00:00Z"})
    assert entry_keys(bundle) == ["Patient/pat-5@1", "Patient/pat-4@1", "Patient/pat-3@1"]
    bundle = history(api, "Patient/_history", {"_since": "2024-01-04"})
    assert bundle["total"] == 3
    _update(api, "Patient/pat-1", active=False)
    bundle = history(api, "Patient/pat-1/_history", {"_since": "2024-06-01T00:00:00Z"})
    assert entry_keys(bundle) == ["Patient/pat-1@2"]
    assert history(api, "_history", {"_since": "2999-01-01T00:00:00Z"})["total"] == 0


@pytest.mark.parametrize("params, message", [
    ({"_since": "last tuesday"}, "_since:"),
    ({"_count": "many"}, "_count must be a whole number, got 'many'"),
    ({"_count": "²"}, "_count must be a whole number, got '²'"),  # isdigit() but not int()
    ({"_offset": "-3"}, "_offset must be a whole number"),
])
def test_history_bad_parameters_are_400(api, params, message):
    response = api.get("Patient/_history", params=params)
    assert response.status_code == 400
    assert message in diagnostics(response.json())


def test_history_paging_walks_every_version_once(api):
    for status in ("final", "amended", "corrected"):
        _update(api, "Observation/obs-1", status=status)
    seen: list[str] = []
    bundle = history(api, "_history", {"_count": "3"})
    total = bundle["total"]
    assert total == len(RESOURCES) + 3
    for _ in range(20):
        seen.extend(entry_keys(bundle))
        url = link(bundle, "next")
        if url is None:
            break
        bundle = history(api, url)
    assert len(seen) == total
    assert len(set(seen)) == total
    assert seen[:3] == ["Observation/obs-1@4", "Observation/obs-1@3", "Observation/obs-1@2"]
    assert "Observation/obs-1@1" in seen
    last = history(api, link(bundle, "last"))
    assert entry_keys(last) == seen[-(total % 3 or 3):]
    assert link(history(api, link(last, "previous")), "next") == link(last, "self")


# -- $everything ------------------------------------------------------------------------

EVERYTHING_PAT_1 = ["Patient/pat-1", "Condition/cond-1", "Encounter/enc-1", "MedicationRequest/mr-1",
                    "Observation/obs-1", "Observation/obs-2", "Observation/obs-5",
                    "Practitioner/prac-1", "Organization/org-1", "Medication/med-1"]


def test_everything(api):
    bundle = api.search("Patient/pat-1/$everything")
    assert bundle["total"] == 10
    assert typed_ids(bundle) == EVERYTHING_PAT_1
    assert {e["search"]["mode"] for e in bundle["entry"]} == {"match"}


def test_everything_of_another_patient_stays_in_its_compartment(api):
    bundle = api.search("Patient/pat-2/$everything")
    assert typed_ids(bundle) == ["Patient/pat-2", "Condition/cond-2", "Encounter/enc-2",
                                 "Observation/obs-3", "Observation/obs-4"]
    assert typed_ids(api.search("Patient/pat-5/$everything")) == ["Patient/pat-5"]


def test_everything_paging(api):
    first = api.search("Patient/pat-1/$everything", {"_count": "4"})
    pages = [typed_ids(first)]
    bundle = first
    while link(bundle, "next"):
        bundle = api.search(link(bundle, "next"))
        pages.append(typed_ids(bundle))
    assert [len(p) for p in pages] == [4, 4, 2]
    assert sum(pages, []) == EVERYTHING_PAT_1
    assert typed_ids(api.search(link(first, "last"))) == EVERYTHING_PAT_1[8:]


def test_everything_type_filter(api):
    bundle = api.search("Patient/pat-1/$everything", {"_type": "Observation,Patient"})
    assert typed_ids(bundle) == ["Patient/pat-1", "Observation/obs-1", "Observation/obs-2", "Observation/obs-5"]
    bundle = api.search("Patient/pat-1/$everything", {"_type": "Medication"})
    assert typed_ids(bundle) == ["Medication/med-1"]
    response = api.get("Patient/pat-1/$everything", params={"_type": "Foo"})
    assert response.status_code == 400
    assert "_type" in diagnostics(response.json())


def test_everything_by_post_and_since(api):
    response = api.post("Patient/pat-1/$everything", data={"_type": "Condition"})
    assert response.status_code == 200
    assert typed_ids(response.json()) == ["Condition/cond-1"]
    _update(api, "Observation/obs-2", status="amended")
    bundle = api.search("Patient/pat-1/$everything", {"_since": "2024-06-01T00:00:00Z"})
    assert typed_ids(bundle) == ["Observation/obs-2"]


def test_everything_follows_writes(api):
    made = api.post("Provenance", json={
        "resourceType": "Provenance", "target": [{"reference": "Patient/pat-1"}],
        "recorded": "2024-02-01T00:00:00Z", "agent": [{"who": {"reference": "Practitioner/prac-1"}}]})
    assert made.status_code == 201, made.text
    prov = made.json()["id"]
    assert f"Provenance/{prov}" in typed_ids(api.search("Patient/pat-1/$everything"))
    assert api.search("Provenance", {"patient": "pat-1"})["entry"][0]["resource"]["id"] == prov
    assert api.search("Provenance", {"patient": "obs-1"})["total"] == 0  # prov-1 targets an Observation
    assert api.delete("Condition/cond-1").status_code == 200
    assert "Condition/cond-1" not in typed_ids(api.search("Patient/pat-1/$everything"))


def test_everything_errors(api):
    assert api.get("Patient/nope/$everything").status_code == 404
    assert api.delete("Patient/pat-5").status_code == 200
    assert api.get("Patient/pat-5/$everything").status_code == 410
    assert api.get("Patient/pat-1/$everything", params={"_count": "x"}).status_code == 400
    assert api.get("Patient/pat-1/$everything", params={"_since": "soon"}).status_code == 400
