"""create, conditional create, update, delete and their errors over real HTTP."""

from __future__ import annotations

import re

import orjson
import pytest

from tests.fhir.conftest import MRN, diagnostics, ids

NEW_PATIENT = {"resourceType": "Patient", "name": [{"family": "Newman", "given": ["Nora"]}],
               "gender": "female", "birthDate": "1990-02-03",
               "identifier": [{"system": MRN, "value": "MRN900"}]}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


# -- create ---------------------------------------------------------------------------

def test_create(api):
    response = api.post("Patient", json=dict(NEW_PATIENT, id="client-chosen",
                                             meta={"versionId": "9", "lastUpdated": "2001-01-01T00:00:00Z"}))
    assert response.status_code == 201
    body = response.json()
    new_id = body["id"]
    assert re.fullmatch(UUID, new_id)  # server-assigned; the body's id is ignored
    assert response.headers["Location"] == f"{api.base}/Patient/{new_id}/_history/1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Last-Modified"].endswith(" GMT")
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"] != "2001-01-01T00:00:00Z"
    assert body["name"] == NEW_PATIENT["name"]
    assert api.get(f"Patient/{new_id}").json() == body
    assert api.get("Patient/client-chosen").status_code == 404


def test_create_accepts_json_content_types(api):
    for ctype in ("application/fhir+json", "application/json", "application/fhir+json; charset=utf-8",
                  "application/json+fhir"):
        response = api.post("Patient", data=orjson.dumps(NEW_PATIENT), headers={"Content-Type": ctype})
        assert response.status_code == 201, (ctype, response.text)


def test_create_prefer_return(api):
    minimal = api.post("Patient", json=NEW_PATIENT, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert re.fullmatch(rf"{re.escape(api.base)}/Patient/{UUID}/_history/1", minimal.headers["Location"])
    assert minimal.headers["ETag"] == 'W/"1"'

    outcome = api.post("Patient", json=NEW_PATIENT, headers={"Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201
    body = outcome.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "information"
    new_id = outcome.headers["Location"].split("/")[-3]
    assert body["issue"][0]["diagnostics"] == f"Patient/{new_id} is now at version 1"

    full = api.post("Patient", json=NEW_PATIENT, headers={"Prefer": "return=representation"})
    assert full.status_code == 201 and full.json()["resourceType"] == "Patient"
    assert api.search("Patient", {"identifier": "MRN900"})["total"] == 3


def test_conditional_create(api):
    # no match: created
    created = api.post("Patient", json=NEW_PATIENT, headers={"If-None-Exist": f"identifier={MRN}|MRN900"})
    assert created.status_code == 201
    # one match: 200 with the existing resource, nothing written
    again = api.post("Patient", json=NEW_PATIENT, headers={"If-None-Exist": f"identifier={MRN}|MRN900"})
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    assert again.json()["meta"]["versionId"] == "1"
    existing = api.post("Patient", json=NEW_PATIENT, headers={"If-None-Exist": "identifier=MRN003"})
    assert existing.status_code == 200 and existing.json()["id"] == "pat-3"
    assert api.search("Patient", {"identifier": "MRN900"})["total"] == 1
    # a leading '?' is tolerated
    assert api.post("Patient", json=NEW_PATIENT, headers={"If-None-Exist": "?identifier=MRN003"}).status_code == 200


def test_conditional_create_with_several_matches_is_412(api):
    response = api.post("Patient", json=NEW_PATIENT, headers={"If-None-Exist": "identifier=MRN001"})
    assert response.status_code == 412
    assert diagnostics(response.json()) == ("If-None-Exist: identifier=MRN001 matches 2 Patient resources; "
                                            "it must match at most one")
    assert api.search("Patient", {"identifier": "MRN900"})["total"] == 0


def test_conditional_create_with_a_bad_query_is_400(api):
    response = api.post("Patient", json=NEW_PATIENT, headers={"If-None-Exist": "shoe-size=42"})
    assert response.status_code == 400
    assert "unknown search parameter 'shoe-size'" in diagnostics(response.json())
    assert api.search("Patient", {"identifier": "MRN900"})["total"] == 0


# -- bad bodies -------------------------------------------------------------------------

def test_invalid_resource_is_422_with_every_issue(api):
    response = api.post("Patient", json={"resourceType": "Patient", "gender": 123, "foo": 1})
    assert response.status_code == 422
    issues = response.json()["issue"]
    assert [i["expression"] for i in issues] == [["Patient.gender"], ["Patient.foo"]]
    assert all(i["severity"] == "error" for i in issues)
    assert "unknown element" in issues[1]["diagnostics"]
    response = api.post("Observation", json={"resourceType": "Observation"})
    assert response.status_code == 422
    assert "Observation.code is required" in diagnostics(response.json())
    assert api.search("Observation", {"_summary": "count"})["total"] == 6


def test_invalid_update_is_422(api):
    patient = api.get("Patient/pat-1").json()
    patient["birthDate"] = "1980-13-01"
    response = api.put("Patient/pat-1", json=patient)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Patient.birthDate"]
    assert api.get("Patient/pat-1").headers["ETag"] == 'W/"1"'


@pytest.mark.parametrize("data, message", [
    (b"{not json", "the request body is not valid JSON"),
    (b"", "the request body is empty"),
    (b"   ", "the request body is empty"),
    (b"[]", "the request body must be a JSON object holding one FHIR resource"),
    (b'"Patient"', "the request body must be a JSON object"),
    (b"null", "the request body must be a JSON object"),
    (b'{"resourceType": "Observation", "status": "final"}', "the body's resourceType is 'Observation', "
                                                             "but the URL is for Patient"),
    (b'{"name": [{"family": "X"}]}', "the body's resourceType is None"),
])
def test_bad_bodies_are_400(api, data, message):
    response = api.post("Patient", data=data, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 400, response.text
    assert message in diagnostics(response.json())


def test_xml_content_type_is_415(api):
    response = api.post("Patient", data=b"<Patient xmlns='http://hl7.org/fhir'/>",
                        headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 415
    assert "Content-Type application/fhir+xml is not supported" in diagnostics(response.json())
    response = api.put("Patient/pat-1", data=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_accept_xml_on_create_is_406_and_writes_nothing(api):
    response = api.post("Patient", json=NEW_PATIENT, headers={"Accept": "application/fhir+xml"})
    assert response.status_code == 406
    assert api.search("Patient", {"identifier": "MRN900"})["total"] == 0


def test_create_on_unknown_type_is_404(api):
    response = api.post("Foo", json={"resourceType": "Foo"})
    assert response.status_code == 404
    assert diagnostics(response.json()) == "unknown resource type 'Foo'"


# -- update ------------------------------------------------------------------------------

def test_update(api):
    patient = api.get("Patient/pat-2").json()
    patient["active"] = True
    response = api.put("Patient/pat-2", json=patient)
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'
    assert response.headers["Location"] == f"{api.base}/Patient/pat-2/_history/2"
    body = response.json()
    assert body["active"] is True and body["meta"]["versionId"] == "2"
    assert body["meta"]["lastUpdated"] > "2024-01-03T00:00:00Z"
    assert api.get("Patient/pat-2").json() == body
    assert api.put("Patient/pat-2", json=body).headers["ETag"] == 'W/"3"'


def test_update_creates_when_absent(api):
    response = api.put("Patient/chosen-id", json=dict(NEW_PATIENT, id="chosen-id"))
    assert response.status_code == 201
    assert response.headers["Location"] == f"{api.base}/Patient/chosen-id/_history/1"
    assert api.get("Patient/chosen-id").json()["name"] == NEW_PATIENT["name"]
    assert api.put("Patient/chosen-id", json=dict(NEW_PATIENT, id="chosen-id")).status_code == 200


def test_update_after_delete_recreates_with_the_next_version(api):
    assert api.delete("Patient/pat-5").status_code == 200
    response = api.put("Patient/pat-5", json=dict(NEW_PATIENT, id="pat-5"))
    assert response.status_code == 201
    assert response.headers["ETag"] == 'W/"3"'
    assert api.get("Patient/pat-5").status_code == 200


def test_update_if_match(api):
    patient = api.get("Patient/pat-2").json()
    ok = api.put("Patient/pat-2", json=patient, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == 'W/"2"'
    stale = api.put("Patient/pat-2", json=patient, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert diagnostics(stale.json()) == ("If-Match asks for version 1 of Patient/pat-2, "
                                         "but the server has version 2")
    assert api.get("Patient/pat-2").headers["ETag"] == 'W/"2"'
    assert api.put("Patient/pat-2", json=patient, headers={"If-Match": '"2"'}).status_code == 200
    absent = api.put("Patient/nobody", json=dict(NEW_PATIENT, id="nobody"), headers={"If-Match": 'W/"1"'})
    assert absent.status_code == 412
    assert api.get("Patient/nobody").status_code == 404
    bad = api.put("Patient/pat-2", json=patient, headers={"If-Match": "version-two"})
    assert bad.status_code == 400
    assert "is not a version ETag" in diagnostics(bad.json())


def test_update_id_rules(api):
    patient = api.get("Patient/pat-2").json()
    mismatch = api.put("Patient/pat-3", json=patient)
    assert mismatch.status_code == 400
    assert diagnostics(mismatch.json()) == "the body's id 'pat-2' does not match the URL's 'pat-3'"
    del patient["id"]
    missing = api.put("Patient/pat-2", json=patient)
    assert missing.status_code == 400
    assert "the body has no id" in diagnostics(missing.json())
    wrong_type = api.put("Patient/pat-2", json={"resourceType": "Observation", "id": "pat-2"})
    assert wrong_type.status_code == 400
    assert "the body's resourceType is 'Observation', but the URL is for Patient" in diagnostics(wrong_type.json())
    bad_id = api.put("Patient/bad$id", json=dict(NEW_PATIENT, id="bad$id"))
    assert bad_id.status_code == 400
    assert api.get("Patient/pat-2").headers["ETag"] == 'W/"1"'


# -- delete ---------------------------------------------------------------------------------

def test_delete(api):
    response = api.delete("Patient/pat-5")
    assert response.status_code == 200
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"] == "deleted Patient/pat-5 (version 2 records the deletion)"
    assert response.headers["ETag"] == 'W/"2"'
    assert api.get("Patient/pat-5").status_code == 410
    assert "pat-5" not in ids(api.search("Patient", {}))
    twice = api.delete("Patient/pat-5")
    assert twice.status_code == 200
    assert "already deleted; nothing changed" in twice.json()["issue"][0]["diagnostics"]
    assert api.delete("Patient/never-was").status_code == 200


def test_delete_of_a_referenced_resource_is_409_naming_the_referrers(api):
    response = api.delete("Practitioner/prac-1")
    assert response.status_code == 409
    assert diagnostics(response.json()) == (
        "Practitioner/prac-1 is still referenced by 5 resource(s) (Encounter/enc-1, MedicationRequest/mr-1, "
        "Observation/obs-1, Patient/pat-1, Provenance/prov-1); delete or update those first")
    assert api.get("Practitioner/prac-1").status_code == 200


def test_delete_after_the_referrers_are_gone(api):
    assert api.delete("Medication/med-1").status_code == 409
    assert api.delete("MedicationRequest/mr-1").status_code == 200
    assert api.delete("Medication/med-1").status_code == 200
    # a referrer that is updated to point elsewhere stops blocking too
    encounter = api.get("Encounter/enc-2").json()
    assert api.delete("Encounter/enc-2").status_code == 409  # cond-2 points at it
    condition = api.get("Condition/cond-2").json()
    del condition["encounter"]
    assert api.put("Condition/cond-2", json=condition).status_code == 200
    assert api.delete("Encounter/enc-2").status_code == 200
    assert encounter["id"] == "enc-2"


def test_delete_errors(api):
    assert api.delete("Foo/1").status_code == 404
    assert api.delete("Patient/bad$id").status_code == 400
    assert api.delete("Patient").status_code == 405
