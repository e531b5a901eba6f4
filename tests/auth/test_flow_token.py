"""The token endpoint for the authorization_code grant: PKCE verification, code replay,
redirect_uri binding, error codes and statuses, and the headers of every answer."""

from __future__ import annotations

import base64

import requests

from tests.auth.conftest import REDIRECT, introspection, new_verifier, s256

SCOPE = "launch/patient openid fhirUser patient/*.rs offline_access"


def _code(ehr, client_id: str, verifier: str | None, **extra) -> str:
    return ehr.authorize(client_id, SCOPE, verifier=verifier, **extra).code


def test_wrong_missing_blank_or_hashed_verifier_is_invalid_grant(ehr):
    client = ehr.public_client()
    cid = client["client_id"]
    for bad in ("wrong", None, "", "challenge", new_verifier()):
        verifier = new_verifier()
        code = _code(ehr, cid, verifier)
        wrong = verifier[:-1] + ("A" if verifier[-1] != "A" else "B")  # one character off, never equal
        sent = s256(verifier) if bad == "challenge" else bad if bad != "wrong" else wrong
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": cid}
        if sent is not None:
            data["code_verifier"] = sent
        body = ehr.token_error(data, "invalid_grant")
        assert "verifier" in body["error_description"], bad


def test_malformed_verifier_is_invalid_grant_not_a_500(ehr):
    client = ehr.public_client()
    for bad in ("é" * 50, "a" * 42, "a" * 129, "a" * 43 + "\n", "a" * 42 + " ", "\x00" * 50):
        verifier = new_verifier()
        code = _code(ehr, client["client_id"], verifier)
        ehr.token_error({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                         "client_id": client["client_id"], "code_verifier": bad}, "invalid_grant")
        # the code is still good for its own verifier
        ehr.check_token_response(ehr.exchange(client["client_id"], code, verifier), client["client_id"])


def test_verifier_without_a_challenge_is_invalid_grant(ehr):
    client = ehr.public_client()
    code = _code(ehr, client["client_id"], None)
    ehr.token_error({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                     "client_id": client["client_id"], "code_verifier": new_verifier()}, "invalid_grant")


def test_replayed_code_is_refused_and_revokes_what_it_issued(ehr, introspector):
    client = ehr.public_client()
    verifier = new_verifier()
    code = _code(ehr, client["client_id"], verifier)
    first = ehr.exchange(client["client_id"], code, verifier)
    body, _, _ = ehr.check_token_response(first, client["client_id"], id_token_expected=True)
    access, refresh = body["access_token"], body["refresh_token"]
    assert ehr.fhir("GET", "Patient/pat-a", access).status_code == 200
    assert introspection(ehr, access, introspector)["active"] is True

    replay = ehr.exchange(client["client_id"], code, verifier)
    assert replay.status_code == 400, replay.text
    assert replay.json()["error"] == "invalid_grant"

    answer = ehr.fhir("GET", "Patient/pat-a", access)
    assert answer.status_code == 401
    assert introspection(ehr, access, introspector) == {"active": False}
    assert introspection(ehr, refresh, introspector) == {"active": False}
    ehr.token_error({"grant_type": "refresh_token", "refresh_token": refresh, "client_id": client["client_id"]},
                    "invalid_grant")


def test_unknown_or_expired_code_is_invalid_grant(ehr):
    client = ehr.public_client()
    verifier = new_verifier()
    ehr.token_error({"grant_type": "authorization_code", "code": "BAD_CODE", "redirect_uri": REDIRECT,
                     "client_id": client["client_id"], "code_verifier": verifier}, "invalid_grant")
    code = _code(ehr, client["client_id"], verifier)
    for record in ehr.state.codes.values():  # ten minutes went by
        record.expires = 0
    answer = ehr.exchange(client["client_id"], code, verifier)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_redirect_uri_must_be_the_one_the_code_was_issued_for(ehr):
    other = "http://app.example/other"
    client = ehr.register(redirect_uris=[REDIRECT, other], token_endpoint_auth_method="none",
                          grant_types=["authorization_code"])
    cid = client["client_id"]
    for sent in (other, None, REDIRECT + "/"):
        verifier = new_verifier()
        code = _code(ehr, cid, verifier)
        data = {"grant_type": "authorization_code", "code": code, "client_id": cid, "code_verifier": verifier}
        if sent:
            data["redirect_uri"] = sent
        ehr.token_error(data, "invalid_grant")
    ehr.code_flow(cid, SCOPE, redirect_uri=other)


def test_code_of_another_client_is_invalid_grant(ehr):
    owner, thief = ehr.public_client(), ehr.public_client()
    verifier = new_verifier()
    code = _code(ehr, owner["client_id"], verifier)
    answer = ehr.exchange(thief["client_id"], code, verifier)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    ehr.check_token_response(ehr.exchange(owner["client_id"], code, verifier), owner["client_id"])


def test_bad_or_missing_grant_type_is_unsupported_grant_type(ehr):
    client = ehr.public_client()
    for grant_type in ("not_a_grant_type", "password", "implicit", None):
        data = {"client_id": client["client_id"], "code": "x"}
        if grant_type:
            data["grant_type"] = grant_type
        ehr.token_error(data, "unsupported_grant_type")


def test_grant_type_the_client_did_not_register_is_refused(ehr):
    client = ehr.register(redirect_uris=[REDIRECT], token_endpoint_auth_method="none",
                          grant_types=["authorization_code"])
    flow = ehr.code_flow(client["client_id"], SCOPE)
    assert "refresh_token" not in flow.body  # offline_access asked, but the client has no refresh grant
    answer = ehr.token({"grant_type": "client_credentials", "client_id": client["client_id"],
                        "scope": "system/*.rs"})
    assert answer.status_code in (400, 401)
    assert answer.json()["error"] in ("unauthorized_client", "invalid_client")


def test_bad_client_secret_is_401_invalid_client_with_a_basic_challenge(ehr):
    client = ehr.secret_client("client_secret_basic")
    verifier = new_verifier()
    code = _code(ehr, client["client_id"], verifier)
    answer = ehr.exchange(client["client_id"], code, verifier, auth=(client["client_id"], "wrong-secret"))
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client"
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    ok = ehr.exchange(client["client_id"], code, verifier, auth=(client["client_id"], client["client_secret"]))
    ehr.check_token_response(ok, client["client_id"])


def test_token_endpoint_takes_only_post_forms(ehr):
    answer = requests.get(ehr.token_endpoint, params={"grant_type": "authorization_code"}, timeout=30)
    assert answer.status_code == 405
    json_body = requests.post(ehr.token_endpoint, json={"grant_type": "client_credentials"}, timeout=30)
    assert json_body.status_code == 400


def test_token_endpoint_answers_cors_for_browser_apps(ehr):
    preflight = requests.options(ehr.token_endpoint, timeout=30, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] in ("https://app.example", "*")
    client = ehr.public_client()
    verifier = new_verifier()
    code = _code(ehr, client["client_id"], verifier)
    answer = ehr.http.post(ehr.token_endpoint, headers={"Origin": "https://app.example"}, timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": client["client_id"], "code_verifier": verifier})
    ehr.check_token_response(answer, client["client_id"])
    assert answer.headers["Access-Control-Allow-Origin"] in ("https://app.example", "*")


def test_malformed_basic_credentials_are_401_not_500(ehr):
    endpoints = [ehr.token_endpoint, ehr.smart["introspection_endpoint"], ehr.smart["revocation_endpoint"]]
    for raw in (b"\xff\xfe:secret", b"no-colon", b":", b"\x00:\x00"):
        header = "Basic " + base64.b64encode(raw).decode()
        for url in endpoints:
            answer = requests.post(url, data={"grant_type": "client_credentials", "scope": "system/*.rs", "token": "t"},
                                   headers={"Authorization": header}, timeout=30)
            assert answer.status_code == 401, (raw, url, answer.text)
            assert answer.json()["error"] == "invalid_client"
            assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_a_code_raced_by_parallel_exchanges_is_issued_at_most_once(ehr):
    for _ in range(3):
        client = ehr.public_client()
        verifier = new_verifier()
        code = _code(ehr, client["client_id"], verifier)
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "client_id": client["client_id"], "code_verifier": verifier}
        answers = ehr.race_token_requests(data)
        won = [a for a in answers if a.status_code == 200]
        assert len(won) == 1, [a.status_code for a in answers]
        assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
        ehr.verify_access_token(won[0].json()["access_token"])
        # the other exchanges were replays: what the one that won got is revoked
        assert ehr.fhir("GET", "Patient/pat-a", won[0].json()["access_token"]).status_code == 401
