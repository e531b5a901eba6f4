"""Standalone launch with --auto-approve: who the user is, which patient and encounter it picks,
and the OpenID Connect side (id_token claims, userinfo)."""

from __future__ import annotations

import requests


def test_practitioner_standalone_patient_launch_picks_the_first_patient(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient openid fhirUser patient/*.rs offline_access",
                         nonce="n-1", id_token_expected=True)
    assert flow.body["patient"] == "pat-a"  # the first patient by id
    assert "need_patient_banner" not in flow.body  # an EHR-launch field
    assert flow.id_claims["fhirUser"] == f"{ehr.fhir_base}/Practitioner/prac-1"  # the default practitioner
    assert flow.refresh_token
    assert set(flow.body["scope"].split()) == {"launch/patient", "openid", "fhirUser", "patient/*.rs",
                                               "offline_access"}


def test_login_hint_practitioner_is_the_user(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient openid fhirUser user/*.rs",
                         login_hint="Practitioner/prac-2", id_token_expected=True)
    assert flow.id_claims["fhirUser"] == f"{ehr.fhir_base}/Practitioner/prac-2"
    assert flow.id_claims["sub"] == flow.access_claims["sub"]
    assert flow.body["patient"] == "pat-a"


def test_login_hint_patient_makes_the_patient_the_user_and_the_context(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient openid fhirUser patient/*.rs",
                         login_hint="Patient/pat-b", nonce="n-2", id_token_expected=True)
    assert flow.body["patient"] == "pat-b"
    assert flow.id_claims["fhirUser"] == f"{ehr.fhir_base}/Patient/pat-b"
    assert flow.id_claims["nonce"] == "n-2"
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 403


def test_launch_encounter_picks_the_patients_latest_encounter(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient launch/encounter patient/*.rs")
    assert (flow.body["patient"], flow.body["encounter"]) == ("pat-a", "enc-a2")
    assert "launch/encounter" in flow.body["scope"].split()
    flow = ehr.code_flow(client["client_id"], "launch/patient launch/encounter patient/*.rs",
                         login_hint="Patient/pat-b")
    assert (flow.body["patient"], flow.body["encounter"]) == ("pat-b", "enc-b1")
    assert ehr.fhir("GET", "Encounter/enc-b1", flow.access_token).status_code == 200


def test_launch_encounter_for_a_patient_without_encounters_is_not_granted(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "launch/patient launch/encounter patient/*.rs",
                         login_hint="Patient/pat-c")
    assert flow.body["patient"] == "pat-c"
    assert "encounter" not in flow.body
    assert "launch/encounter" not in flow.body["scope"].split()  # scope says what was granted


def test_unknown_login_hint_is_an_invalid_request(ehr):
    client = ehr.public_client()
    for hint in ("Practitioner/nobody", "Patient/nobody", "Observation/obs-a-lab", "prac-1"):
        params = ehr.authorize_error(client["client_id"], "launch/patient patient/*.rs", login_hint=hint)
        assert params["error"] == "invalid_request", hint


def test_id_token_claims_follow_the_identity_scopes(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "openid user/*.rs", id_token_expected=True)
    assert "fhirUser" not in flow.id_claims and "name" not in flow.id_claims and "email" not in flow.id_claims
    assert "fhirUser" not in flow.access_claims
    flow = ehr.code_flow(client["client_id"], "openid fhirUser profile email user/*.rs", id_token_expected=True)
    assert flow.id_claims["fhirUser"] == f"{ehr.fhir_base}/Practitioner/prac-1"
    assert flow.id_claims["family_name"] == "House" and flow.id_claims["given_name"] == "Greg"
    assert flow.id_claims["email"] == "house@example.org"
    assert flow.access_claims["fhirUser"] == flow.id_claims["fhirUser"]
    # no openid, no id_token
    ehr.code_flow(client["client_id"], "fhirUser user/*.rs", id_token_expected=False)


def test_userinfo_answers_for_the_id_tokens_subject(ehr):
    client = ehr.public_client()
    flow = ehr.code_flow(client["client_id"], "openid fhirUser profile user/*.rs", login_hint="Patient/pat-a",
                         id_token_expected=True)
    endpoint = ehr.smart["userinfo_endpoint"]
    answer = requests.get(endpoint, headers={"Authorization": f"Bearer {flow.access_token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    info = answer.json()
    assert info["sub"] == flow.id_claims["sub"]
    assert info["fhirUser"] == flow.id_claims["fhirUser"]
    assert info["family_name"] == "Alpha"
    # without a token, with a bad one, with an id_token, and with a token that has no openid
    assert requests.get(endpoint, timeout=30).status_code == 401
    bad = requests.get(endpoint, headers={"Authorization": "Bearer nope"}, timeout=30)
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    id_as_bearer = requests.get(endpoint, headers={"Authorization": f"Bearer {flow.body['id_token']}"}, timeout=30)
    assert id_as_bearer.status_code == 401
    plain = ehr.code_flow(client["client_id"], "user/*.rs")
    no_openid = requests.get(endpoint, headers={"Authorization": f"Bearer {plain.access_token}"}, timeout=30)
    assert no_openid.status_code == 403
    assert 'error="insufficient_scope"' in no_openid.headers["WWW-Authenticate"]


def test_patient_scopes_without_a_patient_are_not_granted(ehr):
    # a practitioner asking for patient/ scopes without launch/patient gets no patient, so no patient/ scopes
    client = ehr.public_client()
    redirect = ehr.authorize(client["client_id"], "patient/*.rs user/Patient.rs", verifier=None)
    answer = ehr.exchange(client["client_id"], redirect.code, None)
    body, _, _ = ehr.check_token_response(answer, client["client_id"])
    assert body["scope"] == "user/Patient.rs"
    assert "patient" not in body
