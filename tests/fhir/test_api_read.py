"""metadata, read, vread, conditional read, formats and CORS over real HTTP."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from mockehr.fhir.searchparams import RESOURCE_TYPES, params_for, reference_params
from tests.fhir.conftest import PATIENTS, diagnostics


# -- metadata ------------------------------------------------------------------

def test_capability_statement_is_valid_r4_and_lists_every_type(api):
    response = api.get("metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    CapabilityStatement.model_validate(body)  # raises on anything R4(B) rejects
    assert body["fhirVersion"] == "4.0.1"
    assert body["kind"] == "instance"
    assert body["implementation"]["url"] == api.base
    assert "json" in body["format"]
    rest = body["rest"][0]
    assert rest["mode"] == "server"
    assert {"code": "history-system"} in rest["interaction"]
    by_type = {entry["type"]: entry for entry in rest["resource"]}
    assert sorted(by_type) == sorted(RESOURCE_TYPES)
    for rtype, entry in by_type.items():
        codes = {i["code"] for i in entry["interaction"]}
        assert codes == {"read", "vread", "update", "delete", "history-instance", "history-type", "create",
                         "search-type"}, rtype
        assert {p["name"]: p["type"] for p in entry["searchParam"]} == {
            name: ptype for name, (ptype, _) in params_for(rtype).items()}, rtype
        assert entry["searchInclude"] == sorted(f"{rtype}:{p}" for p in reference_params(rtype))
    assert by_type["Patient"]["operation"][0]["name"] == "everything"
    assert "Provenance:target" in by_type["Observation"]["searchRevInclude"]


def test_metadata_honours_format_rules(api):
    assert api.get("metadata", params={"_format": "json"}).status_code == 200
    assert api.get("metadata", headers={"Accept": "application/fhir+xml"}).status_code == 406


# -- read ------------------------------------------------------------------------

def test_read_returns_the_resource_with_etag_and_last_modified(api):
    response = api.get("Patient/pat-1")
    assert response.status_code == 200
    assert response.json() == PATIENTS[0]
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Last-Modified"] == "Tue, 02 Jan 2024 00:00:00 GMT"
    assert response.headers["Content-Type"] == "application/fhir+json; charset=utf-8"


def test_read_unknown_id_is_404_with_an_operation_outcome(api):
    response = api.get("Patient/nope")
    assert response.status_code == 404
    body = response.json()
    assert body["issue"][0]["code"] == "not-found"
    assert diagnostics(body) == "Patient/nope is not known to this server"


def test_read_unknown_type_is_404_and_says_so(api):
    response = api.get("Foo/1")
    assert response.status_code == 404
    assert diagnostics(response.json()) == "unknown resource type 'Foo'"
    response = api.get("Account/1")  # a real FHIR type that is not served
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-supported"
    assert "Account is a FHIR resource type this server does not serve" in diagnostics(response.json())


@pytest.mark.parametrize("bad_id", ["bad$id", "a" * 65, "with space", "und_erscore"])
def test_read_bad_id_is_400(api, bad_id):
    response = api.get(f"Patient/{bad_id}")
    assert response.status_code == 400
    assert "is not a valid FHIR id" in diagnostics(response.json())


def test_read_after_delete_is_410_gone(api):
    assert api.delete("Patient/pat-5").status_code == 200
    response = api.get("Patient/pat-5")
    assert response.status_code == 410
    assert response.json()["issue"][0]["code"] == "deleted"
    assert response.headers["ETag"] == 'W/"2"'


def test_if_none_match_current_version_is_304(api):
    response = api.get("Patient/pat-1", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == 'W/"1"'
    assert api.get("Patient/pat-1", headers={"If-None-Match": 'W/"7"'}).status_code == 200
    assert api.get("Patient/pat-1", headers={"If-None-Match": '"0", W/"1"'}).status_code == 304
    assert api.get("Patient/pat-1", headers={"If-None-Match": "*"}).status_code == 304


def test_if_modified_since(api):
    same = {"If-Modified-Since": "Tue, 02 Jan 2024 00:00:00 GMT"}
    later = {"If-Modified-Since": "Wed, 03 Jan 2024 12:00:00 GMT"}
    earlier = {"If-Modified-Since": "Mon, 01 Jan 2024 23:59:59 GMT"}
    assert api.get("Patient/pat-1", headers=same).status_code == 304
    assert api.get("Patient/pat-1", headers=later).status_code == 304
    response = api.get("Patient/pat-1", headers=earlier)
    assert response.status_code == 200 and response.json()["id"] == "pat-1"
    garbage = api.get("Patient/pat-1", headers={"If-Modified-Since": "yesterday-ish"})
    assert garbage.status_code == 200  # an unparsable date is ignored (RFC 9110)
    # If-None-Match wins: a stale ETag means 200 even though the date says unmodified
    both = api.get("Patient/pat-1", headers={**same, "If-None-Match": 'W/"9"'})
    assert both.status_code == 200


def test_last_modified_of_seed_stamps_in_other_zones_and_precisions(api):
    medication = api.get("Medication/med-1")  # lastUpdated 2023-12-31T23:30:00-01:00
    assert medication.status_code == 200
    assert medication.headers["Last-Modified"] == "Mon, 01 Jan 2024 00:30:00 GMT"
    assert api.get("Medication/med-1", headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:30:00 GMT"}
                   ).status_code == 304
    assert api.get("Medication/med-1", headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:29:59 GMT"}
                   ).status_code == 200
    organization = api.get("Organization/org-1")  # lastUpdated 2024-01-01T00:00:00.750Z
    assert organization.headers["Last-Modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert api.get("Organization/org-1", headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}
                   ).status_code == 304


def test_if_none_match_after_update_is_200_with_new_version(api):
    patient = api.get("Patient/pat-2").json()
    patient["active"] = True
    assert api.put("Patient/pat-2", json=patient).status_code == 200
    response = api.get("Patient/pat-2", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'
    assert response.json()["active"] is True


def test_read_with_elements_and_summary(api):
    body = api.get("Patient/pat-1", params={"_elements": "gender"}).json()
    assert set(body) == {"resourceType", "id", "meta", "gender"}
    assert body["meta"]["tag"][-1]["code"] == "SUBSETTED"
    # the stored resource is not touched by shaping
    assert "tag" not in api.get("Patient/pat-1").json()["meta"]


# -- vread -----------------------------------------------------------------------

def test_vread(api):
    response = api.get("Patient/pat-1/_history/1")
    assert response.status_code == 200
    assert response.json() == PATIENTS[0]
    assert response.headers["ETag"] == 'W/"1"'

    patient = dict(PATIENTS[0], gender="other")
    assert api.put("Patient/pat-1", json=patient).status_code == 200
    assert api.get("Patient/pat-1/_history/1").json()["gender"] == "female"
    second = api.get("Patient/pat-1/_history/2")
    assert second.json()["gender"] == "other" and second.json()["meta"]["versionId"] == "2"
    assert second.headers["ETag"] == 'W/"2"'


def test_vread_errors(api):
    response = api.get("Patient/pat-1/_history/2")
    assert response.status_code == 404
    assert diagnostics(response.json()) == "Patient/pat-1 has no version 2"
    assert api.get("Patient/nope/_history/1").status_code == 404
    for vid in ("one", "²", "-1", "1.0"):
        response = api.get(f"Patient/pat-1/_history/{vid}")
        assert response.status_code == 400, vid
        assert "not a version id" in diagnostics(response.json())
    assert api.delete("Patient/pat-5").status_code == 200
    assert api.get("Patient/pat-5/_history/1").status_code == 200
    assert api.get("Patient/pat-5/_history/2").status_code == 410


# -- formats -----------------------------------------------------------------------

def test_accept_json_answers_json(api):
    response = api.get("Patient/pat-1", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    response = api.get("Patient/pat-1", headers={"Accept": "application/fhir+json;fhirVersion=4.0, */*"})
    assert response.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    response = api.get("Patient/pat-1", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200  # a browser


@pytest.mark.parametrize("accept", ["application/fhir+xml", "application/xml", "text/xml"])
def test_accept_xml_is_406(api, accept):
    response = api.get("Patient/pat-1", headers={"Accept": accept})
    assert response.status_code == 406
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    assert "XML" in diagnostics(response.json())


def test_format_parameter(api):
    response = api.get("Patient/pat-1", params={"_format": "json"})
    assert response.status_code == 200 and response.json()["id"] == "pat-1"
    assert api.get("Patient", params={"_format": "application/fhir+json"}).status_code == 200
    for fmt in ("xml", "application/fhir+xml", "turtle"):
        response = api.get("Patient/pat-1", params={"_format": fmt})
        assert response.status_code == 406, fmt
        assert f"_format={fmt}" in diagnostics(response.json())
    # _format wins over Accept
    assert api.get("Patient/pat-1", params={"_format": "json"},
                   headers={"Accept": "application/fhir+xml"}).status_code == 200


def test_pretty(api):
    pretty = api.get("Patient/pat-1", params={"_pretty": "true"})
    assert pretty.text.startswith('{\n  "resourceType"')
    assert pretty.json() == api.get("Patient/pat-1").json()


def test_unsupported_interactions(api):
    response = api.request("PATCH", "Patient/pat-1", json=[])
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"
    response = api.get("Patient/pat-1/$nope")
    assert response.status_code == 404
    assert "GET /fhir/Patient/pat-1/$nope is not an interaction" in diagnostics(response.json())
    response = api.get("Patient/$everything")  # type-level operations are not ids
    assert response.status_code == 404
    assert diagnostics(response.json()) == "operation $everything is not supported on Patient"
    for path in (api.base, api.base + "/"):
        response = api.post(path, json={"resourceType": "Bundle", "type": "transaction"})
        assert response.status_code == 404
        assert "batch and transaction Bundles are not supported" in diagnostics(response.json())
        assert api.get(path).json()["issue"][0]["code"] == "not-supported"


# -- CORS --------------------------------------------------------------------------

def test_cors_preflight_allows_authorization(api):
    response = api.request("OPTIONS", "Patient", headers={
        "Origin": "http://app.example:3000",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "http://app.example:3000"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= methods


def test_cors_headers_on_answers_and_errors(api):
    origin = {"Origin": "http://app.example:3000"}
    for response in (api.get("Patient/pat-1", headers=origin), api.get("Patient/nope", headers=origin),
                     api.post("Patient", json={"resourceType": "Patient"}, headers=origin)):
        assert response.headers["Access-Control-Allow-Origin"] == "http://app.example:3000"
        exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"ETag", "Location", "Last-Modified"} <= exposed
    assert api.get("Patient/pat-1").headers["Access-Control-Allow-Origin"] == "*"
