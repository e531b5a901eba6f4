"""Shaping search results over real HTTP: _sort, _include/_revinclude, _summary, _elements, _total, paging."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fhir.conftest import ids, link, typed_ids

ALL_PATIENTS = ["pat-1", "pat-2", "pat-3", "pat-4", "pat-5"]


# -- _sort --------------------------------------------------------------------------

@pytest.mark.parametrize("sort, expected", [
    ("birthdate", ["pat-2", "pat-1", "pat-4", "pat-3", "pat-5"]),  # pat-5 has none: last
    ("-birthdate", ["pat-3", "pat-4", "pat-1", "pat-2", "pat-5"]),  # still last when descending
    ("gender,-birthdate", ["pat-3", "pat-1", "pat-4", "pat-2", "pat-5"]),
    ("family", ["pat-4", "pat-1", "pat-5", "pat-2", "pat-3"]),  # García, Müller: accents ignored
    ("-_id", ["pat-5", "pat-4", "pat-3", "pat-2", "pat-1"]),
    ("_id", ALL_PATIENTS),
    ("active,_id", ["pat-2", "pat-1", "pat-4", "pat-3", "pat-5"]),  # false < true, then missing
    ("-_lastUpdated", ["pat-5", "pat-4", "pat-3", "pat-2", "pat-1"]),
])
def test_sort_patients(api, sort, expected):
    assert ids(api.search("Patient", {"_sort": sort})) == expected


def test_sort_by_date_descending_puts_missing_last(api):
    bundle = api.search("Observation", {"_sort": "-date"})
    assert ids(bundle) == ["obs-4", "obs-2", "obs-1", "obs-6", "obs-3", "obs-5"]
    bundle = api.search("Observation", {"_sort": "date"})
    assert ids(bundle) == ["obs-3", "obs-6", "obs-1", "obs-2", "obs-4", "obs-5"]


def test_sort_with_repeated_parameters_and_paging(api):
    first = api.search("Patient", [("_sort", "gender"), ("_sort", "-birthdate"), ("_count", "2")])
    assert ids(first) == ["pat-3", "pat-1"]
    second = api.search(link(first, "next"))
    assert ids(second) == ["pat-4", "pat-2"]


# -- _include / _revinclude ----------------------------------------------------------

def test_include(api):
    bundle = api.search("Observation", {"_id": "obs-1", "_include": "Observation:performer"})
    assert typed_ids(bundle, "match") == ["Observation/obs-1"]
    assert typed_ids(bundle, "include") == ["Practitioner/prac-1"]
    assert bundle["total"] == 1  # included resources do not count
    included = bundle["entry"][1]
    assert included["fullUrl"] == f"{api.base}/Practitioner/prac-1"


def test_include_medication_reference(api):
    bundle = api.search("MedicationRequest", {"patient": "pat-1", "_include": "MedicationRequest:medication"})
    assert typed_ids(bundle) == ["MedicationRequest/mr-1", "Medication/med-1"]


def test_include_each_target_once(api):
    bundle = api.search("Observation", [("patient", "pat-1"), ("_include", "Observation:subject"),
                                        ("_include", "Observation:patient")])
    assert typed_ids(bundle, "match") == ["Observation/obs-1", "Observation/obs-2", "Observation/obs-5"]
    assert typed_ids(bundle, "include") == ["Patient/pat-1"]


def test_include_with_a_target_type(api):
    query = {"_id": "obs-1", "_include": "Observation:performer:Practitioner"}
    assert typed_ids(api.search("Observation", query), "include") == ["Practitioner/prac-1"]
    query = {"_id": "obs-1", "_include": "Observation:performer:Organization"}
    assert typed_ids(api.search("Observation", query), "include") == []


def test_include_iterate(api):
    bundle = api.search("Observation", [("_id", "obs-1"), ("_include", "Observation:encounter"),
                                        ("_include:iterate", "Encounter:service-provider")])
    assert typed_ids(bundle, "include") == ["Encounter/enc-1", "Organization/org-1"]
    # without :iterate an _include must start from the searched type
    response = api.get("Observation", params=[("_id", "obs-1"), ("_include", "Observation:encounter"),
                                              ("_include", "Encounter:service-provider")])
    assert response.status_code == 400
    assert "names Encounter, but this search is for Observation" in response.text


def test_include_of_an_unknown_type_is_reported(api):
    bundle = api.search("Observation", {"_id": "obs-1", "_include": "Foo:bar"})
    assert ids(bundle) == ["obs-1"]
    outcome = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome")
    assert "_include=Foo:bar is not supported" in outcome["issue"][0]["diagnostics"]


def test_revinclude(api):
    bundle = api.search("Observation", {"_id": "obs-1", "_revinclude": "Provenance:target"})
    assert typed_ids(bundle, "match") == ["Observation/obs-1"]
    assert typed_ids(bundle, "include") == ["Provenance/prov-1"]
    bundle = api.search("Patient", {"_id": "pat-1", "_revinclude": "Observation:subject"})
    assert typed_ids(bundle, "include") == ["Observation/obs-1", "Observation/obs-2", "Observation/obs-5"]
    bundle = api.search("Observation", {"_id": "obs-3", "_revinclude": "Provenance:target"})
    assert typed_ids(bundle) == ["Observation/obs-3"]


def test_revinclude_iterate(api):
    bundle = api.search("Patient", [("_id", "pat-1"), ("_revinclude", "Observation:subject"),
                                    ("_revinclude:iterate", "Provenance:target")])
    assert typed_ids(bundle, "include") == ["Observation/obs-1", "Observation/obs-2", "Observation/obs-5",
                                            "Provenance/prov-1"]


def test_include_skips_deleted_targets_and_sees_new_ones(api):
    assert api.delete("Provenance/prov-1").status_code == 200
    assert api.delete("Observation/obs-1").status_code == 200
    bundle = api.search("Encounter", {"_id": "enc-1", "_revinclude": "Observation:encounter"})
    assert typed_ids(bundle, "include") == ["Observation/obs-2"]


# -- _summary, _elements, _total -------------------------------------------------------

def test_summary_count(api):
    bundle = api.search("Observation", {"_summary": "count", "category": "vital-signs"})
    assert bundle["total"] == 3
    assert "entry" not in bundle


def test_summary_data_drops_text_and_marks_subsetted(api):
    bundle = api.search("Patient", {"_id": "pat-2", "_summary": "data"})
    patient = bundle["entry"][0]["resource"]
    assert "text" not in patient
    assert patient["name"] == [{"family": "Smith", "given": ["John"]}]
    assert patient["meta"]["tag"] == [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                                       "code": "SUBSETTED", "display": "Resource encoded in summary mode"}]
    assert "text" in api.get("Patient/pat-2").json()  # the stored resource keeps it


def test_summary_text(api):
    patient = api.search("Patient", {"_id": "pat-2", "_summary": "text"})["entry"][0]["resource"]
    assert set(patient) == {"resourceType", "id", "meta", "text"}
    assert patient["meta"]["tag"][0]["code"] == "SUBSETTED"


def test_summary_false_is_everything(api):
    bundle = api.search("Patient", {"_id": "pat-2", "_summary": "false"})
    assert bundle["entry"][0]["resource"] == api.get("Patient/pat-2").json()


def test_elements(api):
    bundle = api.search("Patient", {"_id": "pat-1", "_elements": "gender,birthDate"})
    patient = bundle["entry"][0]["resource"]
    assert set(patient) == {"resourceType", "id", "meta", "gender", "birthDate"}
    assert patient["gender"] == "female" and patient["birthDate"] == "1980-05-17"
    assert patient["meta"]["tag"][-1]["code"] == "SUBSETTED"
    assert patient["meta"]["profile"]  # meta is kept, with what it had


def test_total_none_and_accurate(api):
    bundle = api.search("Patient", {"_total": "none"})
    assert "total" not in bundle
    assert ids(bundle) == ALL_PATIENTS
    assert api.search("Patient", {"_total": "accurate", "gender": "male"})["total"] == 2


# -- paging --------------------------------------------------------------------------

def _walk(api, bundle: dict, relation: str) -> list[list[str]]:
    pages = [ids(bundle)]
    for _ in range(20):
        url = link(bundle, relation)
        if url is None:
            return pages
        bundle = api.search(url)
        pages.append(ids(bundle))
    raise AssertionError("paging did not end")


def test_paging_walks_every_result_exactly_once(api):
    first = api.search("Patient", {"_count": "2", "gender": "female,male,unknown"})
    assert first["total"] == 5
    assert link(first, "previous") is None
    pages = _walk(api, first, "next")
    assert pages == [["pat-1", "pat-2"], ["pat-3", "pat-4"], ["pat-5"]]

    last = api.search(link(first, "last"))
    assert ids(last) == ["pat-5"]
    assert link(last, "next") is None
    assert _walk(api, last, "previous") == [["pat-5"], ["pat-3", "pat-4"], ["pat-1", "pat-2"]]
    assert ids(api.search(link(last, "first"))) == ["pat-1", "pat-2"]
    query = dict(parse_qsl(urlsplit(link(first, "next")).query))
    assert query == {"gender": "female,male,unknown", "_count": "2", "_offset": "2"}


def test_paging_links_use_the_base_url(api):
    bundle = api.search("Patient", {"_count": "1"})
    for relation in ("self", "first", "next", "last"):
        assert link(bundle, relation).startswith(f"{api.base}/Patient?"), relation


def test_paging_an_exact_multiple(api):
    first = api.search("Observation", {"_count": "3"})
    assert _walk(api, first, "next") == [["obs-1", "obs-2", "obs-3"], ["obs-4", "obs-5", "obs-6"]]
    assert ids(api.search(link(first, "last"))) == ["obs-4", "obs-5", "obs-6"]


def test_paging_a_post_search_gives_get_links_with_the_form_parameters(api):
    response = api.post("Observation/_search", data={"patient": "pat-1", "_count": "2"})
    assert response.status_code == 200
    first = response.json()
    assert ids(first) == ["obs-1", "obs-2"]
    assert ids(api.search(link(first, "next"))) == ["obs-5"]


def test_paging_sorted_results(api):
    first = api.search("Observation", {"_sort": "-date", "_count": "4"})
    assert _walk(api, first, "next") == [["obs-4", "obs-2", "obs-1", "obs-6"], ["obs-3", "obs-5"]]


def test_count_zero_and_past_the_end(api):
    bundle = api.search("Patient", {"_count": "0"})
    assert bundle["total"] == 5 and "entry" not in bundle
    bundle = api.search("Patient", {"_count": "2", "_offset": "10"})
    assert bundle["total"] == 5 and "entry" not in bundle
    assert ids(api.search(link(bundle, "last"))) == ["pat-5"]


def test_empty_result_links(api):
    bundle = api.search("Patient", {"name": "nobody-has-this", "_count": "2"})
    assert bundle["total"] == 0
    assert "entry" not in bundle
    assert link(bundle, "next") is None and link(bundle, "previous") is None
    assert link(bundle, "last") == link(bundle, "first")


def test_count_above_the_page_limit_is_capped_and_said(server, api):
    limit = server.settings.max_page_size
    bundle = api.search("Patient", {"_count": str(limit + 1)})
    assert ids(bundle) == ALL_PATIENTS
    outcome = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome")
    assert f"pages hold {limit}" in outcome["issue"][0]["diagnostics"]
    assert f"_count={limit}" in link(bundle, "self")


# -- results follow writes ----------------------------------------------------------------

def test_search_reflects_create_update_delete_and_reset(api):
    observation = {"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
                   "subject": {"reference": "Patient/pat-3"}, "valueQuantity": {"value": 37.2}}
    created = api.post("Observation", json=observation)
    assert created.status_code == 201
    new_id = created.json()["id"]
    assert sorted(ids(api.search("Observation", {"patient": "pat-3"}))) == sorted(["obs-6", new_id])
    assert ids(api.search("Observation", {"code": "8310-5"})) == [new_id]

    moved = dict(created.json(), subject={"reference": "Patient/pat-2"}, valueQuantity={"value": 38.5})
    assert api.put(f"Observation/{new_id}", json=moved).status_code == 200
    assert ids(api.search("Observation", {"patient": "pat-3"})) == ["obs-6"]
    assert sorted(ids(api.search("Observation", {"patient": "pat-2"}))) == sorted(["obs-3", "obs-4", new_id])
    assert ids(api.search("Observation", {"value-quantity": "38.5"})) == [new_id]
    assert ids(api.search("Observation", {"value-quantity": "37.2"})) == []

    assert api.delete(f"Observation/{new_id}").status_code == 200
    assert ids(api.search("Observation", {"code": "8310-5"})) == []
    assert api.search("Observation", {"_summary": "count"})["total"] == 6

    again = api.post("Observation", json=observation).json()["id"]
    assert ids(api.search("Observation", {"code": "8310-5"})) == [again]
    api.store.reset()
    assert ids(api.search("Observation", {"code": "8310-5"})) == []
    assert api.get(f"Observation/{again}").status_code == 404


def test_reset_restores_updated_and_deleted_seed_resources(api):
    patient = api.get("Patient/pat-3").json()
    patient["name"] = [{"family": "Renamed"}]
    assert api.put("Patient/pat-3", json=patient).status_code == 200
    assert api.delete("Patient/pat-5").status_code == 200
    assert ids(api.search("Patient", {"family": "renamed"})) == ["pat-3"]
    api.store.reset()
    assert ids(api.search("Patient", {"family": "renamed"})) == []
    assert ids(api.search("Patient", {"family": "smithson"})) == ["pat-3"]
    assert api.get("Patient/pat-5").status_code == 200
    assert api.get("Patient/pat-3").headers["ETag"] == 'W/"1"'
    history = api.get("Patient/pat-3/_history").json()
    assert history["total"] == 1


# -- the bundles are valid FHIR -----------------------------------------------------------

def test_bundles_validate_as_r4(api):
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    searchset = api.search("Observation", [("_count", "2"), ("_include", "Observation:subject"),
                                           ("_revinclude", "Provenance:target"), ("shoe-size", "1")])
    assert [e["search"]["mode"] for e in searchset["entry"]] == ["match", "match", "include", "include", "outcome"]
    Bundle.model_validate(searchset)
    assert api.delete("Patient/pat-5").status_code == 200
    history = api.get("_history", params={"_count": "3"}).json()
    assert "resource" not in history["entry"][0]
    Bundle.model_validate(history)
    Bundle.model_validate(api.search("Patient/pat-1/$everything"))
    Bundle.model_validate(api.search("Patient", {"_summary": "count"}))
    OperationOutcome.model_validate(api.get("Patient/nope").json())
    OperationOutcome.model_validate(api.delete("Patient/pat-4").json())
