"""RFC 7591 dynamic registration over HTTP: what a 201 says for each method, and what is refused.
(The metadata rules themselves are unit-tested in test_registration.py.)"""

from __future__ import annotations

import jwt
import pytest
import requests

from tests.auth.conftest import REDIRECT, ec_key, rsa_key


def _post(ehr, body, **kwargs) -> requests.Response:
    return requests.post(ehr.smart["registration_endpoint"], json=body, timeout=30, **kwargs)


def _created(answer: requests.Response) -> dict:
    assert answer.status_code == 201, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert "no-store" in answer.headers.get("Cache-Control", "")  # it may carry a secret
    body = answer.json()
    assert isinstance(body["client_id"], str) and body["client_id"]
    assert type(body["client_id_issued_at"]) is int
    return body


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_secret_methods_get_a_secret_once(ehr, method):
    body = {"client_name": "secret app", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"], "scope": "launch/patient patient/*.rs"}
    first, second = _created(_post(ehr, body)), _created(_post(ehr, body))
    for answer in (first, second):
        assert isinstance(answer["client_secret"], str) and len(answer["client_secret"]) >= 32
        assert answer["client_secret_expires_at"] == 0
        assert answer["token_endpoint_auth_method"] == method
        assert answer["redirect_uris"] == [REDIRECT] and answer["client_name"] == "secret app"
        assert answer["grant_types"] == ["authorization_code", "refresh_token"]
        assert answer["scope"] == "launch/patient patient/*.rs"
    assert first["client_id"] != second["client_id"] and first["client_secret"] != second["client_secret"]


def test_public_and_key_clients_get_no_secret(ehr):
    public = _created(_post(ehr, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                                  "require_pkce": True}))
    assert "client_secret" not in public and public["require_pkce"] is True
    key = ec_key()
    keyed = _created(_post(ehr, {"grant_types": ["client_credentials"], "jwks": {"keys": [key.jwk]}}))
    assert "client_secret" not in keyed
    assert keyed["token_endpoint_auth_method"] == "private_key_jwt"  # keys sent: private_key_jwt meant
    assert keyed["jwks"]["keys"][0]["kid"] == key.kid


def test_registration_answers_cors(ehr):
    answer = _post(ehr, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"},
                   headers={"Origin": "https://app.example"})
    _created(answer)
    assert answer.headers["Access-Control-Allow-Origin"] in ("https://app.example", "*")


@pytest.mark.parametrize("body, error", [
    ({"token_endpoint_auth_method": "none"}, "invalid_redirect_uri"),  # code grant without redirect_uris
    ({"redirect_uris": ["http://app.example/cb#frag"], "token_endpoint_auth_method": "none"},
     "invalid_redirect_uri"),
    ({"redirect_uris": ["not a uri"]}, "invalid_redirect_uri"),
    ({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
    ({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"},
     "invalid_client_metadata"),  # no keys
    ({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
    ({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}, "invalid_client_metadata"),
    ({"redirect_uris": [REDIRECT], "response_types": ["token"]}, "invalid_client_metadata"),
    ({"redirect_uris": [REDIRECT], "require_pkce": "yes"}, "invalid_client_metadata"),
    ({"redirect_uris": [REDIRECT], "subject_type": "secret"}, "invalid_client_metadata"),
    ([REDIRECT], "invalid_client_metadata"),
], ids=["no-redirect", "fragment", "not-uri", "bad-method", "pkj-no-keys", "cc-public", "implicit",
        "response-token", "pkce-string", "subject-type", "array-body"])
def test_bad_metadata_is_400_with_the_rfc_7591_error(ehr, body, error):
    answer = _post(ehr, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == error
    assert answer.json()["error_description"]
    assert "client_id" not in answer.json()


def test_private_keys_are_refused(ehr):
    key = rsa_key()
    private = jwt.algorithms.RSAAlgorithm.to_jwk(key.private, as_dict=True)
    answer = _post(ehr, {"grant_types": ["client_credentials"], "jwks": {"keys": [{**private, "kid": "k"}]}})
    assert answer.status_code == 400 and "private" in answer.json()["error_description"]


def test_non_json_bodies_are_refused(ehr):
    endpoint = ehr.smart["registration_endpoint"]
    form = requests.post(endpoint, data={"redirect_uris": REDIRECT}, timeout=30)
    assert form.status_code == 400 and form.json()["error"] == "invalid_client_metadata"
    broken = requests.post(endpoint, data="{not json", headers={"Content-Type": "application/json"}, timeout=30)
    assert broken.status_code == 400 and broken.json()["error"] == "invalid_client_metadata"
    assert requests.get(endpoint, timeout=30).status_code == 405


def test_a_registered_client_works_at_once_and_only_as_registered(ehr):
    client = ehr.register(redirect_uris=[REDIRECT], token_endpoint_auth_method="none",
                          grant_types=["authorization_code"])
    flow = ehr.code_flow(client["client_id"], "launch/patient patient/*.rs offline_access")
    assert "refresh_token" not in flow.body  # the client did not register the refresh_token grant
