"""Bulk Data export over real HTTP on a small, exact dataset: what is exported, and every refusal.

Kick-off headers and parameters (_type, _since, _outputFormat, _typeFilter, _elements, POST
Parameters with `patient`), the three levels (system, Patient, Group), authorization (system/
and user/ scopes, patient/ refused, granular scopes, another client, no token), cancel, and
the files (split by size, streamed, only for their client).
"""

from __future__ import annotations

import time

import pytest

from mockehr.fhir.bulk import SplitPolicy
from tests.auth.conftest import OBS_CAT, new_observation, rsa_key
from tests.bulk.conftest import IDS, KICKOFF_HEADERS, check_manifest, check_outcome, start_bulk, stop_bulk

ALL_TYPES = set(IDS)


# ---- what each level exports ------------------------------------------------------------------

def test_system_export_holds_every_resource_once(ehr, token):
    manifest = ehr.export("$export", token)
    assert ehr.exported_ids(manifest, token) == IDS
    assert manifest["request"] == f"{ehr.fhir_base}/$export"
    assert manifest["error"] == []
    assert [e["type"] for e in manifest["output"]] == sorted(ALL_TYPES)  # one file per type, in type order


def test_group_export_holds_the_members_compartments_and_what_they_reference(ehr, token):
    manifest = ehr.export("Group/grp-ab/$export", token)
    assert ehr.exported_ids(manifest, token) == {
        "Patient": {"pat-a", "pat-b"}, "Encounter": {"enc-a1", "enc-a2", "enc-b1"},
        "Observation": {"obs-a-vital", "obs-a-lab", "obs-b-vital", "obs-b-lab"},
        "MedicationRequest": {"mr-a"}, "Group": {"grp-ab", "grp-c"},  # grp-c lists pat-a (inactive member)
        "Medication": {"med-1"}, "Practitioner": {"prac-1"},          # referenced by mr-a
    }


def test_group_export_leaves_out_inactive_members(ehr, token):
    manifest = ehr.export("Group/grp-c/$export", token, {"_type": "Patient,Observation"})
    assert ehr.exported_ids(manifest, token) == {"Patient": {"pat-c"}}  # pat-c has no observations


def test_patient_level_export_covers_all_patients(ehr, token):
    ids = ehr.exported_ids(ehr.export("Patient/$export", token), token)
    assert ids["Patient"] == {"pat-a", "pat-b", "pat-c"}
    assert "Organization" not in ids  # nothing in the patients' data points at org-1
    assert ids["Practitioner"] == {"prac-1"}  # prac-2 is nobody's


def test_unknown_group_is_404_and_a_bad_id_400(ehr, token):
    check_outcome(ehr.kickoff_raw("Group/no-such-group/$export", token), 404, "not-found")
    check_outcome(ehr.kickoff_raw("Group/bad id!/$export", token), 400)


# ---- kick-off headers and parameters -------------------------------------------------------------

@pytest.mark.parametrize("headers, words", [
    ({"Accept": "application/fhir+json"}, "Prefer: respond-async"),
    ({"Accept": "application/fhir+json", "Prefer": "return=minimal"}, "Prefer: respond-async"),
    ({"Prefer": "respond-async"}, "Accept: application/fhir+json"),
    ({"Prefer": "respond-async", "Accept": "application/fhir+ndjson"}, "Accept: application/fhir+json"),
    ({}, "Accept"),
])
def test_kickoff_needs_accept_and_prefer(ehr, token, headers, words):
    for path in ("$export", "Patient/$export", "Group/grp-ab/$export"):
        body = check_outcome(ehr.kickoff_raw(path, token, headers=headers), 400, "invalid")
        assert words in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("fmt", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_output_formats_accepted(ehr, token, fmt):
    manifest = ehr.export("$export", token, {"_outputFormat": fmt, "_type": "Patient"})
    assert ehr.exported_ids(manifest, token) == {"Patient": IDS["Patient"]}


@pytest.mark.parametrize("fmt", ["text/csv", "application/fhir+json", "json", ""])
def test_other_output_formats_are_400(ehr, token, fmt):
    body = check_outcome(ehr.kickoff_raw("$export", token, {"_outputFormat": fmt}), 400, "invalid")
    assert "_outputFormat" in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("params, words", [
    ({"_type": "Patient,Banana"}, "'Banana' is not a resource type"),
    ({"_since": "yesterday"}, "_since"),
    ({"_typeFilter": "Observation?colour=red"}, "unknown search parameter 'colour'"),
    ({"_typeFilter": "Observation?_sort=date"}, "_sort"),
    ({"_typeFilter": "Observation"}, "is not a query"),
    ({"_type": "Patient", "_typeFilter": "Observation?category=laboratory"}, "which _type does not ask for"),
    ({"_elements": "Patient.name.family"}, "_elements"),
    ({"_bogus": "1"}, "'_bogus' is not a $export parameter"),
    ({"includeAssociatedData": "LatestProvenanceResources"}, "includeAssociatedData"),
    ({"patient": "Patient/pat-a"}, "POSTed Parameters body only"),
])
def test_bad_parameters_are_400(ehr, token, params, words):
    body = check_outcome(ehr.kickoff_raw("Patient/$export", token, params), 400, "invalid")
    assert words in body["issue"][0]["diagnostics"]


def test_patient_level_export_of_non_compartment_types_only_is_400(ehr, token):
    body = check_outcome(ehr.kickoff_raw("Patient/$export", token, {"_type": "Practitioner"}), 400)
    assert "outside the patient compartment" in body["issue"][0]["diagnostics"]


def test_lenient_handling_exports_and_says_what_it_ignored(ehr, token):
    headers = {**KICKOFF_HEADERS, "Prefer": "respond-async, handling=lenient"}
    manifest = ehr.export("$export", token, {"_type": "Patient,Banana", "_bogus": "1"}, headers=headers)
    assert ehr.exported_ids(manifest, token) == {"Patient": IDS["Patient"]}
    notes = [o["issue"][0]["diagnostics"] for o in ehr.errors(manifest, token)]
    assert any("Banana" in n for n in notes) and any("_bogus" in n for n in notes), notes


def test_type_filter_reuses_search(ehr, token):
    filters = [f"Observation?category={OBS_CAT}|laboratory", "Encounter?date=ge2024-01-01"]
    manifest = ehr.export("$export", token, [("_type", "Observation,Encounter,Patient"),
                                             ("_typeFilter", ",".join(filters))])
    assert ehr.exported_ids(manifest, token) == {
        "Observation": {"obs-a-lab", "obs-b-lab"}, "Encounter": {"enc-a2"}, "Patient": IDS["Patient"]}


def test_type_filters_of_one_type_are_ored_and_commas_inside_a_query_stay(ehr, token):
    manifest = ehr.export("$export", token, [
        ("_type", "Observation"),
        ("_typeFilter", "Observation?subject=Patient/pat-a&category=laboratory"),
        ("_typeFilter", "Observation?subject=Patient/pat-b,Patient/pat-c&category=vital-signs")])
    assert ehr.exported_ids(manifest, token) == {"Observation": {"obs-a-lab", "obs-b-vital"}}


def test_elements_subset_the_resources(ehr, token):
    manifest = ehr.export("$export", token, {"_type": "Patient,Encounter", "_elements": "Patient.gender,id"})
    found = ehr.exported(manifest, token)
    for patient in found["Patient"]:
        assert set(patient) == {"resourceType", "id", "meta", "gender"}
        assert any(t.get("code") == "SUBSETTED" for t in patient["meta"]["tag"])
    for encounter in found["Encounter"]:  # required elements stay: status, class
        assert set(encounter) == {"resourceType", "id", "meta", "status", "class"}


def test_since_exports_only_what_changed_after_it(ehr, token, writes):
    before = ehr.export("$export", token)["transactionTime"]
    time.sleep(0.01)
    created = ehr.fhir("POST", "Observation", ehr.bulk_token("system/*.cruds"), json=new_observation("pat-b"),
                       headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201, created.text
    manifest = ehr.export("$export", token, {"_since": before})
    assert ehr.exported_ids(manifest, token) == {"Observation": {created.json()["id"]}}
    group = ehr.export("Group/grp-ab/$export", token, {"_since": before})
    assert ehr.exported_ids(group, token) == {"Observation": {created.json()["id"]}}


def test_post_kickoff_with_parameters(ehr, token):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Patient,Observation"},
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
        {"name": "patient", "valueReference": {"reference": "Patient/pat-b"}},
    ]}
    status_url = ehr.kickoff("Group/grp-ab/$export", token, method="POST", json=body)
    manifest = ehr.manifest(status_url, token)
    assert manifest["request"] == f"{ehr.fhir_base}/Group/grp-ab/$export"
    assert ehr.exported_ids(manifest, token) == {"Patient": {"pat-b"}, "Observation": {"obs-b-vital", "obs-b-lab"}}


@pytest.mark.parametrize("path, body, words", [
    ("Group/grp-ab/$export", {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/pat-c"}}]}, "not a member of Group/grp-ab"),
    ("Patient/$export", {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/nobody"}}]}, "not known to this server"),
    ("$export", {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/pat-a"}}]}, "not to the system-level"),
    ("$export", {"resourceType": "Patient"}, "must be a Parameters resource"),
    ("$export", {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueInteger": 3}]},
     "must be a string"),
])
def test_bad_post_kickoffs_are_400(ehr, token, path, body, words):
    answer = ehr.kickoff_raw(path, token, method="POST", json=body)
    assert words in check_outcome(answer, 400, "invalid")["issue"][0]["diagnostics"]


# ---- authorization ---------------------------------------------------------------------------

def test_no_token_is_401_everywhere(ehr, token):
    assert ehr.kickoff_raw("$export", None).status_code == 401
    status_url = ehr.kickoff("$export", token, {"_type": "Patient"})
    manifest = ehr.manifest(status_url, token)
    for answer in (ehr.poll(status_url, None), ehr.download(manifest["output"][0]["url"], None),
                   ehr.http.delete(status_url, timeout=30)):
        check_outcome(answer, 401, "login")
        assert answer.headers["WWW-Authenticate"].startswith("Bearer ")


def test_patient_scopes_cannot_start_an_export(ehr):
    token = ehr.token_for("patient/*.rs", patient="pat-a")
    for path in ("$export", "Patient/$export", "Group/grp-ab/$export"):
        body = check_outcome(ehr.kickoff_raw(path, token), 403, "forbidden")
        assert "system/" in body["issue"][0]["diagnostics"]


def test_user_scopes_of_a_practitioner_export_a_group_only(ehr):
    token = ehr.token_for("user/*.rs", user="Practitioner/prac-1")
    manifest = ehr.export("Group/grp-ab/$export", token, {"_type": "Patient"})
    assert ehr.exported_ids(manifest, token) == {"Patient": {"pat-a", "pat-b"}}
    for path in ("$export", "Patient/$export"):
        assert "Group export only" in check_outcome(ehr.kickoff_raw(path, token), 403)["issue"][0]["diagnostics"]
    patient_user = ehr.token_for("user/*.rs", user="Patient/pat-a")
    assert "practitioner" in check_outcome(ehr.kickoff_raw("Group/grp-ab/$export", patient_user),
                                           403)["issue"][0]["diagnostics"]


def test_exported_types_are_limited_to_the_scopes(ehr):
    token = ehr.bulk_token("system/Patient.rs system/Observation.rs")
    manifest = ehr.export("$export", token)
    assert set(ehr.exported_ids(manifest, token)) == {"Patient", "Observation"}
    answer = ehr.kickoff_raw("$export", token, {"_type": "Patient,Encounter"})
    body = check_outcome(answer, 403, "forbidden")
    assert "Encounter" in body["issue"][0]["diagnostics"]
    assert 'scope="system/Encounter.r' in answer.headers["WWW-Authenticate"]


def test_granular_scopes_filter_the_export(ehr):
    token = ehr.bulk_token(f"system/Observation.rs?category={OBS_CAT}|vital-signs system/Patient.rs")
    manifest = ehr.export("$export", token)
    assert ehr.exported_ids(manifest, token) == {"Observation": {"obs-a-vital", "obs-b-vital"},
                                                 "Patient": IDS["Patient"]}


def test_only_the_client_that_started_it_sees_the_export(ehr, token):
    status_url = ehr.kickoff("$export", token, {"_type": "Patient"})
    manifest = ehr.manifest(status_url, token)
    other = ehr.bulk_token()
    file_url = manifest["output"][0]["url"]
    for answer in (ehr.poll(status_url, other), ehr.download(file_url, other),
                   ehr.http.delete(status_url, headers={"Authorization": f"Bearer {other}"}, timeout=30)):
        assert "another client" in check_outcome(answer, 403, "forbidden")["issue"][0]["diagnostics"]
    assert ehr.download(file_url, token).status_code == 200  # still there for its own client


def test_a_later_token_of_the_same_client_must_still_cover_the_types(ehr):
    client_id, token = ehr.backend("system/*.rs")
    manifest = ehr.export("$export", token, {"_type": "Patient,Observation"})
    narrow = ehr.token_for("system/Patient.rs", client_id=client_id)
    by_type = {e["type"]: e["url"] for e in manifest["output"]}
    assert ehr.download(by_type["Patient"], narrow).status_code == 200
    check_outcome(ehr.download(by_type["Observation"], narrow), 403, "forbidden")


# ---- cancel, files -------------------------------------------------------------------------------

def test_cancel_then_the_status_is_404(ehr, token):
    status_url = ehr.kickoff("$export", token)
    cancelled = ehr.http.delete(status_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert cancelled.status_code == 202
    body = check_outcome(ehr.poll(status_url, token), 404, "not-found")
    assert "cancelled" in body["issue"][0]["diagnostics"]
    again = ehr.http.delete(status_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    check_outcome(again, 404, "not-found")
    job_id = status_url.rsplit("/", 1)[1]
    assert not (ehr.exports.files.root() / job_id).exists()


def test_cancel_after_completion_removes_the_files(ehr, token):
    status_url = ehr.kickoff("$export", token, {"_type": "Patient"})
    manifest = ehr.manifest(status_url, token)
    assert ehr.http.delete(status_url, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 202
    check_outcome(ehr.download(manifest["output"][0]["url"], token), 404, "not-found")
    check_outcome(ehr.poll(status_url, token), 404, "not-found")


def test_unknown_status_and_file_urls_are_404(ehr, token):
    check_outcome(ehr.poll(f"{ehr.fhir_base}/$export-status/nope", token), 404, "not-found")
    status_url = ehr.kickoff("$export", token, {"_type": "Patient"})
    manifest = ehr.manifest(status_url, token)
    job = status_url.rsplit("/", 1)[1]
    check_outcome(ehr.download(f"{ehr.fhir_base}/$export-files/{job}/9.Patient.ndjson", token), 404)
    check_outcome(ehr.download(f"{ehr.fhir_base}/$export-files/{job}/..%2F..%2Fetc", token), 404)
    assert manifest["output"]


def test_files_split_by_line_and_byte_limits(ehr, token):
    exports = ehr.exports
    saved = exports.policy
    try:
        exports.policy = SplitPolicy(max_lines=2)
        manifest = ehr.export("$export", token, {"_type": "Observation,Patient"})
        assert [(e["type"], e["count"]) for e in manifest["output"]] == [
            ("Observation", 2), ("Observation", 2), ("Patient", 2), ("Patient", 1)]
        exports.policy = SplitPolicy(max_bytes=1)  # every resource alone in its file
        manifest = ehr.export("$export", token, {"_type": "Encounter"})
        assert [e["count"] for e in manifest["output"]] == [1, 1, 1]
    finally:
        exports.policy = saved
    assert ehr.exported_ids(manifest, token) == {"Encounter": IDS["Encounter"]}


def test_exports_on_disk_under_the_data_dir(bulk_dataset, tmp_path):
    ehr = start_bulk(bulk_dataset, data_dir=tmp_path)
    try:
        token = ehr.bulk_token()
        status_url = ehr.kickoff("$export", token, {"_type": "Patient"})
        manifest = check_manifest(ehr.wait(status_url, token), ehr)
        job = status_url.rsplit("/", 1)[1]
        on_disk = tmp_path / "bulk" / job / manifest["output"][0]["url"].rsplit("/", 1)[1]
        assert on_disk.read_bytes() == ehr.download(manifest["output"][0]["url"], token).content
    finally:
        stop_bulk(ehr)


def test_admin_reset_cancels_every_export_and_removes_its_files(bulk_dataset):
    own = start_bulk(bulk_dataset)
    try:
        token = own.system_token(rsa_key())
        status_url = own.kickoff("$export", token, {"_type": "Patient"})
        own.manifest(status_url, token)
        job_id = status_url.rsplit("/", 1)[1]
        assert (own.exports.files.root() / job_id).exists()
        assert own.http.post(f"{own.url}/admin/reset", timeout=30).status_code == 200
        assert own.exports.get(job_id) is None and not (own.exports.files.root() / job_id).exists()
    finally:
        stop_bulk(own)
