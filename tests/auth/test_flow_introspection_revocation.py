"""Token introspection (RFC 7662, SMART 2.2) and revocation (RFC 7009): who may call them, what an
active token says, and that revoking any token of a grant ends all of it."""

from __future__ import annotations

import time

import pytest
import requests

from tests.auth.conftest import basic, introspection

SCOPE = "launch openid fhirUser patient/*.rs offline_access"


@pytest.fixture
def launched(ehr):
    """An EHR-launch grant with every context field, from a public client."""
    context = [{"reference": "Encounter/enc-a1"}]
    launch = ehr.launch(patient="pat-a", encounter="enc-a1", user="Practitioner/prac-2", fhirContext=context,
                        intent="summary", need_patient_banner=False)
    client = ehr.public_client()
    return ehr.code_flow(client["client_id"], SCOPE, launch=launch["launch"], nonce="n-i", id_token_expected=True)


def test_active_access_token_says_what_the_token_response_said(ehr, introspector, launched):
    answer = ehr.introspect(launched.access_token, auth=introspector)
    assert answer.status_code == 200
    assert "no-store" in answer.headers.get("Cache-Control", "")
    info = answer.json()
    assert info["active"] is True
    assert info["scope"] == launched.body["scope"]
    assert info["client_id"] == launched.client_id
    assert type(info["exp"]) is int and info["exp"] == launched.access_claims["exp"] > time.time()
    # launch context: SMART 2.2 says every launch context parameter of the token response SHALL be there
    for name in ("patient", "encounter", "fhirContext", "intent", "need_patient_banner", "smart_style_url"):
        assert info.get(name) == launched.body[name], name
    # id_token claims: iss and sub SHALL match, fhirUser SHOULD
    assert info["iss"] == launched.id_claims["iss"]
    assert info["sub"] == launched.id_claims["sub"]
    assert info["fhirUser"] == launched.id_claims["fhirUser"]


def test_a_bearer_token_may_introspect_too(ehr, launched):
    other = ehr.code_flow(ehr.public_client()["client_id"], "launch/patient patient/*.rs")
    answer = ehr.introspect(launched.access_token, headers={"Authorization": f"Bearer {other.access_token}"})
    assert answer.status_code == 200 and answer.json()["active"] is True
    assert answer.json()["client_id"] == launched.client_id


def test_active_refresh_token(ehr, introspector, launched):
    info = introspection(ehr, launched.refresh_token, introspector)
    assert info["active"] is True
    assert info["client_id"] == launched.client_id and info["scope"] == launched.body["scope"]
    assert info["patient"] == "pat-a"


def test_unknown_tokens_are_exactly_inactive(ehr, introspector, launched):
    forged = launched.access_token[:-4] + ("AAAA" if not launched.access_token.endswith("AAAA") else "BBBB")
    for token in ("made-up", "", forged, launched.body["id_token"], "a.b.c"):
        assert introspection(ehr, token, introspector) == {"active": False}, token


def test_expired_token_is_exactly_inactive(short_ehr):
    client = short_ehr.register(client_name="rs", grant_types=["client_credentials"],
                                token_endpoint_auth_method="client_secret_basic")
    flow = short_ehr.code_flow(short_ehr.public_client()["client_id"], "launch/patient patient/*.rs")
    assert flow.body["expires_in"] == 1
    time.sleep(2.1)
    assert introspection(short_ehr, flow.access_token, basic(client)) == {"active": False}


def test_unauthenticated_callers_get_401(ehr, launched, introspector):
    cid, _ = introspector
    for kwargs in ({}, {"auth": (cid, "wrong")}, {"auth": ("no-such-client", "x")},
                   {"headers": {"Authorization": "Bearer not-a-token"}},
                   {"headers": {"Authorization": f"Bearer {launched.body['id_token']}"}},
                   {"data": {"client_id": cid, "client_secret": "wrong"}},
                   {"data": {"client_id": launched.client_id}}):  # a public client_id alone proves nothing
        answer = ehr.introspect(launched.access_token, **kwargs)
        assert answer.status_code == 401, (kwargs, answer.text)
        assert "active" not in answer.json()
        assert answer.headers.get("WWW-Authenticate"), kwargs


def test_revoking_the_access_token_ends_the_grant(ehr, introspector, launched):
    answer = ehr.revoke(launched.access_token, data={"client_id": launched.client_id})  # a public client
    assert answer.status_code == 200
    assert ehr.fhir("GET", "Patient/pat-a", launched.access_token).status_code == 401
    assert introspection(ehr, launched.access_token, introspector) == {"active": False}
    assert introspection(ehr, launched.refresh_token, introspector) == {"active": False}
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": launched.refresh_token,
                     "client_id": launched.client_id}, "invalid_grant")
    # revoking again, or revoking nonsense, is still 200 (RFC 7009 2.2)
    assert ehr.revoke(launched.access_token, data={"client_id": launched.client_id}).status_code == 200
    assert ehr.revoke("made-up", data={"client_id": launched.client_id}).status_code == 200


def test_revoking_the_refresh_token_ends_the_grant(ehr, introspector, launched):
    later = ehr.refresh(launched.client_id, launched.refresh_token)
    body, _, _ = ehr.check_token_response(later, launched.client_id, nonce="n-i")
    assert ehr.revoke(body["refresh_token"], data={"client_id": launched.client_id}).status_code == 200
    for access in (launched.access_token, body["access_token"]):
        assert ehr.fhir("GET", "Patient/pat-a", access).status_code == 401
        assert introspection(ehr, access, introspector) == {"active": False}
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                     "client_id": launched.client_id}, "invalid_grant")


def test_confidential_client_revokes_with_its_credentials(ehr, introspector):
    client = ehr.secret_client()
    flow = ehr.code_flow(client["client_id"], SCOPE.replace("launch ", "launch/patient "), auth=basic(client))
    refused = ehr.revoke(flow.access_token, auth=(client["client_id"], "wrong"))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 200
    no_auth = ehr.revoke(flow.access_token, data={"client_id": client["client_id"]})  # as if public
    assert no_auth.status_code in (400, 401)
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 200
    assert ehr.revoke(flow.refresh_token, auth=basic(client)).status_code == 200
    assert ehr.fhir("GET", "Patient/pat-a", flow.access_token).status_code == 401


def test_another_client_cannot_revoke_my_token(ehr, launched, introspector):
    thief = ehr.public_client()
    assert ehr.revoke(launched.access_token, data={"client_id": thief["client_id"]}).status_code == 200
    assert ehr.fhir("GET", "Patient/pat-a", launched.access_token).status_code == 200  # nothing happened
    assert introspection(ehr, launched.access_token, introspector)["active"] is True


def test_revocation_needs_a_token_and_a_post(ehr, launched):
    answer = ehr.revoke("", data={"client_id": launched.client_id})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert requests.get(ehr.smart["revocation_endpoint"], timeout=30).status_code == 405
    assert requests.post(ehr.smart["revocation_endpoint"], data={"token": launched.access_token},
                         timeout=30).status_code in (400, 401)  # no client at all
