"""Identity claims from the seed data over real HTTP: a practitioner's NPI, PractitionerRole codes and
organization in the id_token and userinfo when `profile` is granted, and nowhere without it."""

from __future__ import annotations

import pytest
import requests

from tests.auth.signin_helpers import Browser, exchange, register, signed_claims, start_server

NPI = "http://hl7.org/fhir/sid/us-npi"


@pytest.fixture(scope="module")
def server():
    running = start_server(auto_approve=True)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def root(server):
    return server.url


def sign_in(root: str, user: str, scope: str) -> tuple[dict, dict, dict]:
    """(token response, id_token claims, userinfo) for `user`."""
    app = register(root)
    browser = Browser(root)
    attempt = browser.authorize(app["client_id"], scope, login_hint=user)
    token = exchange(root, attempt, browser.code(attempt))
    claims = signed_claims(root, token["id_token"], app["client_id"])
    userinfo = requests.get(f"{root}/auth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"},
                            timeout=30)
    assert userinfo.status_code == 200, userinfo.text
    return token, claims, userinfo.json()


def system_get(root: str, path: str) -> dict:
    """What the FHIR data says (a backend-services token minted through the control API)."""
    token = requests.post(f"{root}/admin/tokens", json={"scope": "system/*.rs"}, timeout=30).json()["access_token"]
    answer = requests.get(f"{root}/fhir/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_discovery_lists_the_identity_claims(root):
    config = requests.get(f"{root}/fhir/.well-known/openid-configuration", timeout=30).json()
    assert {"npi", "roles", "organization"} <= set(config["claims_supported"])


@pytest.mark.parametrize("practitioner, role, organization", [
    ("pr-brennan", "doctor", "org-hospital"),
    ("pr-johnson", "nurse", "org-clinic"),
])
def test_practitioner_claims_come_from_the_seed_data(root, practitioner, role, organization):
    _, claims, userinfo = sign_in(root, f"Practitioner/{practitioner}", "openid fhirUser profile user/*.rs")
    resource = system_get(root, f"Practitioner/{practitioner}")
    npi = next(i["value"] for i in resource["identifier"] if i["system"] == NPI)
    roles = system_get(root, f"PractitionerRole?practitioner=Practitioner/{practitioner}")["entry"]
    assert [r["resource"]["code"][0]["coding"][0]["code"] for r in roles] == [role]
    org = system_get(root, f"Organization/{organization}")
    expected = {"npi": npi, "roles": [role],
                "organization": {"reference": f"Organization/{organization}", "display": org["name"]}}
    for answer in (claims, userinfo):
        assert {k: answer.get(k) for k in expected} == expected
        assert answer["name"] and answer["family_name"] == resource["name"][0]["family"]
    assert claims["fhirUser"] == f"{root}/fhir/Practitioner/{practitioner}"


def test_without_profile_there_are_no_identity_claims(root):
    _, claims, userinfo = sign_in(root, "Practitioner/pr-brennan", "openid fhirUser user/*.rs")
    for answer in (claims, userinfo):
        assert not {"npi", "roles", "organization", "name", "family_name"} & set(answer), answer
        assert answer["fhirUser"].endswith("/Practitioner/pr-brennan")


def test_a_patient_has_a_name_but_no_practitioner_claims(root):
    _, claims, userinfo = sign_in(root, "Patient/p00001-diabetes-htn",
                                  "launch/patient openid fhirUser profile patient/*.rs")
    for answer in (claims, userinfo):
        assert answer["name"] == "James Thomas Mckinney"
        assert not {"npi", "roles", "organization"} & set(answer)


def test_a_practitioner_without_a_role_has_an_npi_only(root):
    token = requests.post(f"{root}/admin/tokens", json={"scope": "system/*.cruds"}, timeout=30).json()
    created = requests.put(f"{root}/fhir/Practitioner/pr-new", timeout=30, json={
        "resourceType": "Practitioner", "id": "pr-new", "name": [{"family": "Newman", "given": ["Nia"]}],
        "identifier": [{"system": NPI, "value": "1234567893"}]},
        headers={"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/fhir+json"})
    assert created.status_code == 201, created.text
    try:
        _, claims, _ = sign_in(root, "Practitioner/pr-new", "openid profile user/*.rs")
        assert claims["npi"] == "1234567893" and "roles" not in claims and "organization" not in claims
    finally:
        requests.post(f"{root}/admin/reset", timeout=30)
