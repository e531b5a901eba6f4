"""Bearer tokens on FHIR calls: 401 for anything that is not a live token of this server, and the
scopes and compartments a live token is held to (403 otherwise)."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
import requests

from tests.auth.conftest import VITALS, bearer_error, new_observation, rsa_key

PATIENT_SCOPE = "launch/patient patient/*.rs"


@pytest.fixture(scope="module")
def patient_token(ehr) -> str:
    """A patient/*.rs token for pat-a (standalone, practitioner user)."""
    flow = ehr.code_flow(ehr.public_client()["client_id"], PATIENT_SCOPE)
    assert flow.body["patient"] == "pat-a"
    return flow.access_token


def _token(ehr, scope: str, **extra) -> str:
    return ehr.code_flow(ehr.public_client()["client_id"], scope, **extra).access_token


def _outcome(answer, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(issue.get("diagnostics", "") for issue in body["issue"])


# -- 401 ----------------------------------------------------------------------------------------

def test_no_token_or_a_malformed_one_is_401_invalid_token(ehr):
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer not.a.jwt"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer abc"},
                    {"Authorization": "bearer " + "x" * 500}):
        answer = requests.get(f"{ehr.fhir_base}/Patient/pat-a", headers=headers, timeout=30)
        _outcome(answer, 401)
        bearer_error(answer)


def test_expired_token_is_401(short_ehr):
    flow = short_ehr.code_flow(short_ehr.public_client()["client_id"], PATIENT_SCOPE)
    assert flow.body["expires_in"] == 1
    time.sleep(2.1)
    answer = short_ehr.fhir("GET", "Patient/pat-a", flow.access_token)
    assert "expired" in _outcome(answer, 401)
    bearer_error(answer)


def test_revoked_token_is_401(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], PATIENT_SCOPE)
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 200
    assert ehr.revoke(flow.access_token, data={"client_id": client["client_id"]}).status_code == 200
    answer = ehr.fhir("GET", "Patient/pat-a", flow.access_token)
    _outcome(answer, 401)
    bearer_error(answer)


def _forge(ehr, claims_from: str, kid: str | None, key=None) -> str:
    claims = jwt.decode(claims_from, options={"verify_signature": False})
    claims.update(jti=uuid.uuid4().hex, scope="system/*.cruds")
    key = key or rsa_key("RS256")
    return jwt.encode(claims, key.private, algorithm="RS256", headers={"typ": "at+jwt", "kid": kid or key.kid})


def test_token_signed_by_another_key_is_401(ehr, patient_token):
    server_kid = jwt.get_unverified_header(patient_token)["kid"]
    for kid in (server_kid, None):  # our kid with a foreign signature, and a foreign kid
        forged = _forge(ehr, patient_token, kid)
        answer = ehr.fhir("GET", "Patient/pat-b", forged)
        _outcome(answer, 401)
        bearer_error(answer)
    # the real token's claims with its jti kept, re-signed: still not ours
    claims = jwt.decode(patient_token, options={"verify_signature": False})
    resigned = jwt.encode(claims, rsa_key("RS256").private, algorithm="RS256",
                          headers={"typ": "at+jwt", "kid": server_kid})
    _outcome(ehr.fhir("GET", "Patient/pat-a", resigned), 401)


def test_an_id_token_is_not_an_access_token(ehr):
    flow = ehr.code_flow(ehr.public_client()["client_id"], "launch/patient openid fhirUser patient/*.rs")
    answer = ehr.fhir("GET", "Patient/pat-a", flow.body["id_token"])
    _outcome(answer, 401)
    bearer_error(answer)


def test_a_token_of_another_server_is_401(ehr, short_ehr):
    foreign = short_ehr.code_flow(short_ehr.public_client()["client_id"], PATIENT_SCOPE).access_token
    _outcome(ehr.fhir("GET", "Patient/pat-a", foreign), 401)


def test_metadata_and_well_known_need_no_token(ehr):
    for path in ("metadata", ".well-known/smart-configuration", ".well-known/openid-configuration"):
        assert requests.get(f"{ehr.fhir_base}/{path}", timeout=30).status_code == 200, path
    assert requests.get(ehr.smart["jwks_uri"], timeout=30).status_code == 200


# -- 403: patient compartment -------------------------------------------------------------

def test_patient_token_reads_its_patient_only(ehr, patient_token):
    assert ehr.fhir("GET", "Patient/pat-a", patient_token).status_code == 200
    assert ehr.fhir("GET", "Observation/obs-a-lab", patient_token).status_code == 200
    for path in ("Patient/pat-b", "Observation/obs-b-lab", "Observation/obs-b-vital", "Encounter/enc-b1"):
        _outcome(ehr.fhir("GET", path, patient_token), 403)
    _outcome(ehr.fhir("GET", "Observation/obs-b-lab/_history/1", patient_token), 403)
    assert ehr.fhir("GET", "Practitioner/prac-1", patient_token).status_code == 200  # not patient data


def test_patient_token_searches_only_its_compartment(ehr, patient_token):
    assert ehr.search_ids("Patient", patient_token) == ["pat-a"]
    assert ehr.search_ids("Observation", patient_token) == ["obs-a-lab", "obs-a-vital"]
    assert ehr.search_ids("Observation", patient_token, patient="pat-b") == []
    assert ehr.search_ids("Observation", patient_token, subject="Patient/pat-b") == []
    assert ehr.search_ids("Encounter", patient_token) == ["enc-a1", "enc-a2"]
    assert ehr.search_ids("Patient", patient_token, _id="pat-b") == []
    bundle = ehr.fhir("GET", "Observation", patient_token, params={"_summary": "count"}).json()
    assert bundle["total"] == 2
    everything = ehr.fhir("GET", "Patient/pat-b/$everything", patient_token)
    assert everything.status_code == 403


def test_includes_and_history_stay_in_the_compartment(ehr, patient_token):
    def entries(path: str, token: str, **params) -> list[str]:
        answer = ehr.fhir("GET", path, token, params=params or None)
        assert answer.status_code == 200, answer.text
        return sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in answer.json().get("entry", [])
                      if e["resource"]["resourceType"] != "OperationOutcome")

    assert entries("Patient", patient_token, _revinclude="Observation:subject") == [
        "Observation/obs-a-lab", "Observation/obs-a-vital", "Patient/pat-a"]
    assert entries("Encounter", patient_token, _include="Encounter:patient") == [
        "Encounter/enc-a1", "Encounter/enc-a2", "Patient/pat-a"]
    assert not [e for e in entries("_history", patient_token) if e.startswith("Patient/") and e != "Patient/pat-a"]
    assert entries("Observation/_history", patient_token) == ["Observation/obs-a-lab", "Observation/obs-a-vital"]
    assert "Observation/obs-b-lab" not in entries("Patient/pat-a/$everything", patient_token)
    observations_only = _token(ehr, "launch/patient patient/Observation.rs")
    assert entries("Observation", observations_only, _include="Observation:subject") == [
        "Observation/obs-a-lab", "Observation/obs-a-vital"]  # no Patient scope, no included Patient


def test_patient_token_writes_only_inside_its_compartment(ehr, writes):
    token = _token(ehr, "launch/patient patient/Observation.cruds patient/Patient.rs")
    created = ehr.fhir("POST", "Observation", token, json=new_observation("pat-a"))
    assert created.status_code == 201, created.text
    new_id = created.json()["id"]
    _outcome(ehr.fhir("POST", "Observation", token, json=new_observation("pat-b")), 403)
    stolen = ehr.fhir("GET", "Observation/obs-b-lab", _token(ehr, "user/*.rs")).json()
    _outcome(ehr.fhir("PUT", "Observation/obs-b-lab", token, json=stolen), 403)  # someone else's
    moved = dict(created.json(), subject={"reference": "Patient/pat-b"})
    _outcome(ehr.fhir("PUT", f"Observation/{new_id}", token, json=moved), 403)  # moving it out
    _outcome(ehr.fhir("DELETE", "Observation/obs-b-lab", token), 403)
    assert ehr.fhir("DELETE", f"Observation/{new_id}", token).status_code == 200
    assert ehr.fhir("GET", "Observation/obs-b-lab", _token(ehr, "user/*.rs")).status_code == 200  # untouched


def test_missing_scope_is_403_naming_the_scope(ehr, writes):
    token = _token(ehr, "launch/patient patient/Observation.rs")
    answer = ehr.fhir("GET", "Patient/pat-a", token)
    assert "patient/Patient.rs" in _outcome(answer, 403)
    challenge = bearer_error(answer, "insufficient_scope")
    assert "patient/Patient.rs" in challenge
    answer = ehr.fhir("POST", "Observation", token, json=new_observation("pat-a"))
    assert "patient/Observation.c" in _outcome(answer, 403)
    assert "patient/Encounter.rs" in _outcome(ehr.fhir("GET", "Encounter", token), 403)


def test_v1_read_scope_reads_and_searches_but_does_not_create(ehr, writes):
    token = _token(ehr, "launch/patient patient/*.read")
    assert ehr.fhir("GET", "Patient/pat-a", token).status_code == 200
    assert ehr.search_ids("Observation", token) == ["obs-a-lab", "obs-a-vital"]
    _outcome(ehr.fhir("POST", "Observation", token, json=new_observation("pat-a")), 403)
    v1_write = _token(ehr, "launch/patient patient/Observation.read patient/Observation.write")
    assert ehr.fhir("POST", "Observation", v1_write, json=new_observation("pat-a")).status_code == 201


def test_user_token_of_a_practitioner_reads_every_patient(ehr, writes):
    token = _token(ehr, "openid fhirUser user/*.rs")
    for patient in ("pat-a", "pat-b", "pat-c"):
        assert ehr.fhir("GET", f"Patient/{patient}", token).status_code == 200
    assert ehr.search_ids("Patient", token) == ["pat-a", "pat-b", "pat-c"]
    assert ehr.search_ids("Observation", token, patient="pat-b") == ["obs-b-lab", "obs-b-vital"]
    _outcome(ehr.fhir("POST", "Observation", token, json=new_observation("pat-b")), 403)


def test_user_token_of_a_patient_is_held_to_that_patient(ehr):
    token = _token(ehr, "openid fhirUser user/*.rs", login_hint="Patient/pat-b")
    assert ehr.fhir("GET", "Patient/pat-b", token).status_code == 200
    _outcome(ehr.fhir("GET", "Patient/pat-a", token), 403)
    assert ehr.search_ids("Observation", token) == ["obs-b-lab", "obs-b-vital"]


def test_granular_category_scope_only_returns_that_category(ehr, writes):
    token = _token(ehr, f"launch/patient patient/Observation.rs?category={VITALS}")
    assert ehr.search_ids("Observation", token) == ["obs-a-vital"]
    assert ehr.search_ids("Observation", token, category="laboratory") == []
    assert ehr.fhir("GET", "Observation/obs-a-vital", token).status_code == 200
    _outcome(ehr.fhir("GET", "Observation/obs-a-lab", token), 403)
    _outcome(ehr.fhir("GET", "Observation/obs-b-vital", token), 403)  # still only the patient's
    # writes are held to the category too
    writer = _token(ehr, f"launch/patient patient/Observation.cruds?category={VITALS}")
    _outcome(ehr.fhir("POST", "Observation", writer, json=new_observation("pat-a", "laboratory")), 403)
    created = ehr.fhir("POST", "Observation", writer, json=new_observation("pat-a", "vital-signs"))
    assert created.status_code == 201, created.text
    both = _token(ehr, f"launch/patient patient/Observation.rs?category={VITALS} "
                       "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/"
                       "observation-category|laboratory")
    assert ehr.search_ids("Observation", both) == sorted(["obs-a-lab", "obs-a-vital", created.json()["id"]])


def test_system_token_is_not_limited(ehr, rs384, writes):
    token = ehr.system_token(rs384)
    assert ehr.search_ids("Observation", token) == ["obs-a-lab", "obs-a-vital", "obs-b-lab", "obs-b-vital"]
    _outcome(ehr.fhir("POST", "Observation", token, json=new_observation("pat-c")), 403)  # .rs has no c


def test_history_of_another_patients_resource_is_refused_like_a_read(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient patient/*.rs")
    assert ehr.fhir("GET", "Patient/pat-b", flow.access_token).status_code == 403
    assert ehr.fhir("GET", "Patient/pat-b/_history", flow.access_token).status_code == 403


def test_the_fhir_user_resource_is_readable_with_any_scopes_but_nothing_else_is(ehr):
    launch = ehr.launch(patient="pat-a", user="Practitioner/prac-2")
    token = _token(ehr, "launch openid fhirUser patient/Observation.rs", launch=launch["launch"])
    assert ehr.fhir("GET", "Practitioner/prac-2", token).json()["id"] == "prac-2"
    assert ehr.fhir("GET", "Practitioner/prac-2/_history/1", token).status_code == 200
    assert "needs patient/Practitioner.r" in _outcome(ehr.fhir("GET", "Practitioner/prac-1", token), 403)
    _outcome(ehr.fhir("GET", "Practitioner", token), 403)  # search is not widened
    # without the fhirUser scope the token names no user resource to read
    plain = _token(ehr, "launch openid patient/Observation.rs", launch=ehr.launch(
        patient="pat-a", user="Practitioner/prac-2")["launch"])
    _outcome(ehr.fhir("GET", "Practitioner/prac-2", plain), 403)
