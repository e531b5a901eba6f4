"""Pairwise subject identifiers over real HTTP: one sub per sector (the redirect_uris' host, or the
sector_identifier_uri's), the same in the id_token, userinfo, the access token and introspection,
never the internal id, stable across restarts under --data-dir; fhirUser still names the resource."""

from __future__ import annotations

import stat

import pytest
import requests

from tests.auth.signin_helpers import Browser, exchange, signed_claims, start_server

DOCTOR = "Practitioner/pr-okafor"
OTHER = "Practitioner/pr-brennan"
SCOPE = "openid fhirUser profile user/*.rs offline_access"


@pytest.fixture(scope="module")
def server():
    running = start_server(auto_approve=True)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def root(server):
    return server.url


def register(root: str, redirect_uris: list[str], **metadata) -> dict:
    answer = requests.post(f"{root}/auth/register", timeout=30, json={
        "client_name": "pairwise app", "redirect_uris": redirect_uris, "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], **metadata})
    assert answer.status_code == 201, answer.text
    return answer.json()


def tokens(root: str, client: dict, user: str = DOCTOR) -> dict:
    browser = Browser(root)  # a fresh browser each time: no session shared between the apps
    attempt = browser.authorize(client["client_id"], SCOPE, redirect_uri=client["redirect_uris"][0], login_hint=user)
    answer = exchange(root, attempt, browser.code(attempt))
    answer["claims"] = signed_claims(root, answer["id_token"], client["client_id"])
    return answer


@pytest.fixture(scope="module")
def introspector(root):
    answer = requests.post(f"{root}/auth/register", timeout=30, json={
        "client_name": "resource server", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic", "scope": "system/*.rs"})
    return answer.json()["client_id"], answer.json()["client_secret"]


def introspect(root: str, token: str, auth) -> dict:
    answer = requests.post(f"{root}/auth/introspect", data={"token": token}, auth=auth, timeout=30)
    assert answer.status_code == 200 and answer.json()["active"] is True, answer.text
    return answer.json()


def test_discovery_lists_pairwise(root):
    config = requests.get(f"{root}/fhir/.well-known/openid-configuration", timeout=30).json()
    assert config["subject_types_supported"] == ["public", "pairwise"]


def test_one_sub_per_sector_and_never_the_internal_id(root):
    a1 = register(root, ["http://app.example/callback"], subject_type="pairwise")
    a2 = register(root, ["http://app.example/other/cb", "http://APP.example:8443/cb"], subject_type="pairwise")
    by_uri = register(root, ["http://c.example/cb"], subject_type="pairwise",
                      sector_identifier_uri="https://app.example/sector.json")
    b = register(root, ["http://other.example/cb"], subject_type="pairwise")
    public = register(root, ["http://app.example/callback"])
    assert a1["subject_type"] == "pairwise" and by_uri["sector_identifier_uri"] == "https://app.example/sector.json"
    subs = {name: tokens(root, client)["claims"]["sub"] for name, client in
            (("a1", a1), ("a2", a2), ("by_uri", by_uri), ("b", b), ("public", public))}
    assert subs["a1"] == subs["a2"] == subs["by_uri"], "one sector (app.example): one sub"
    assert subs["b"] != subs["a1"], "another sector: another sub"
    assert subs["public"] == DOCTOR
    for name in ("a1", "b"):
        assert "okafor" not in subs[name] and "Practitioner" not in subs[name] and len(subs[name]) == 43
    assert tokens(root, a1)["claims"]["sub"] == subs["a1"], "stable: the same again"
    assert tokens(root, a1, OTHER)["claims"]["sub"] not in (subs["a1"], OTHER), "another user: another sub"


def test_the_pairwise_sub_is_the_same_everywhere_and_fhir_user_still_names_the_resource(root, introspector):
    client = register(root, ["http://app.example/callback"], subject_type="pairwise")
    answer = tokens(root, client)
    sub = answer["claims"]["sub"]
    assert answer["claims"]["fhirUser"] == f"{root}/fhir/{DOCTOR}", "fhirUser names the real Practitioner"
    userinfo = requests.get(f"{root}/auth/userinfo", timeout=30,
                            headers={"Authorization": f"Bearer {answer['access_token']}"}).json()
    assert userinfo["sub"] == sub and userinfo["fhirUser"] == f"{root}/fhir/{DOCTOR}"
    access = signed_claims(root, answer["access_token"], f"{root}/fhir")
    assert access["sub"] == sub
    assert introspect(root, answer["access_token"], introspector)["sub"] == sub
    refresh = introspect(root, answer["refresh_token"], introspector)
    assert refresh["token_type"] == "refresh_token" and refresh["sub"] == sub
    read = requests.get(f"{root}/fhir/{DOCTOR}", headers={"Authorization": f"Bearer {answer['access_token']}"},
                        timeout=30)
    assert read.status_code == 200, "the FHIR API still knows who the user is"


def test_a_refreshed_token_keeps_the_pairwise_sub(root):
    client = register(root, ["http://app.example/callback"], subject_type="pairwise")
    answer = tokens(root, client)
    refreshed = requests.post(f"{root}/auth/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": answer["refresh_token"], "client_id": client["client_id"]})
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert signed_claims(root, body["id_token"], client["client_id"])["sub"] == answer["claims"]["sub"]
    assert signed_claims(root, body["access_token"], f"{root}/fhir")["sub"] == answer["claims"]["sub"]


@pytest.mark.parametrize("metadata, message", [
    ({"redirect_uris": ["http://a.example/cb", "http://b.example/cb"], "subject_type": "pairwise"},
     "with redirect_uris on several hosts (a.example, b.example) needs a sector_identifier_uri"),
    ({"redirect_uris": ["http://a.example/cb"], "subject_type": "pairwise", "sector_identifier_uri": "sector"},
     "sector_identifier_uri 'sector' must be an absolute http(s) URL"),
    ({"redirect_uris": ["http://a.example/cb"], "subject_type": "anonymous"}, "must be 'public' or 'pairwise'"),
])
def test_registration_refuses_a_pairwise_client_without_a_sector(root, metadata, message):
    answer = requests.post(f"{root}/auth/register", timeout=30, json={"token_endpoint_auth_method": "none",
                                                                       **metadata})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client_metadata"
    assert message in answer.json()["error_description"]
    several = {**metadata, "sector_identifier_uri": "https://a.example/s.json"}
    if "several hosts" in message:  # named, the sector is fine
        assert register(root, several.pop("redirect_uris"), **several)["subject_type"] == "pairwise"


def test_pairwise_subs_survive_a_restart_with_a_data_dir(tmp_path):
    first = start_server(auto_approve=True, data_dir=tmp_path)
    try:
        client = register(first.url, ["http://app.example/callback"], subject_type="pairwise")
        sub = tokens(first.url, client)["claims"]["sub"]
    finally:
        first.stop()
    key = tmp_path / "pairwise.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = start_server(auto_approve=True, data_dir=tmp_path)
    try:
        assert tokens(again.url, client)["claims"]["sub"] == sub
    finally:
        again.stop()
    other = start_server(auto_approve=True)
    try:  # another server has another secret: subs cannot be correlated across servers either
        client = register(other.url, ["http://app.example/callback"], subject_type="pairwise")
        assert tokens(other.url, client)["claims"]["sub"] != sub
    finally:
        other.stop()
