"""Discovery: the SMART and OpenID configuration documents, the CapabilityStatement's
oauth-uris, and the JWKS, checked the way Inferno's SMART App Launch kit checks them."""

from __future__ import annotations

import jwt
import pytest
import requests

ORIGIN = "https://app.example.org"
SMART_REQUIRED = {  # Inferno well_known_capabilities_stu2 plus the SMART 2.2 list in NOTES.md
    "issuer": str, "jwks_uri": str, "authorization_endpoint": str, "token_endpoint": str,
    "grant_types_supported": list, "token_endpoint_auth_methods_supported": list,
    "token_endpoint_auth_signing_alg_values_supported": list, "scopes_supported": list,
    "response_types_supported": list, "introspection_endpoint": str, "revocation_endpoint": str,
    "registration_endpoint": str, "capabilities": list, "code_challenge_methods_supported": list,
}
OIDC_REQUIRED = ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
                 "subject_types_supported", "id_token_signing_alg_values_supported"]
CAPABILITIES = {
    "launch-ehr", "launch-standalone", "authorize-post", "client-public", "client-confidential-symmetric",
    "client-confidential-asymmetric", "context-banner", "context-style", "context-ehr-patient",
    "context-ehr-encounter", "context-standalone-patient", "context-standalone-encounter", "permission-offline",
    "permission-online", "permission-patient", "permission-user", "permission-v1", "permission-v2",
    "sso-openid-connect",
}
ENDPOINTS = ["authorization_endpoint", "token_endpoint", "registration_endpoint", "introspection_endpoint",
             "revocation_endpoint", "jwks_uri"]


def _get(url: str) -> requests.Response:
    return requests.get(url, headers={"Accept": "application/json", "Origin": ORIGIN}, timeout=30)


def _check_json_document(answer: requests.Response) -> dict:
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers["Content-Type"]
    assert answer.headers.get("Access-Control-Allow-Origin") in (ORIGIN, "*")  # Inferno's CORS check
    cache = answer.headers.get("Cache-Control", "")
    assert "max-age=" in cache and "no-store" not in cache, cache  # discovery is meant to be cached
    body = answer.json()
    assert isinstance(body, dict)
    return body


@pytest.fixture(scope="module")
def smart_doc(ehr) -> dict:
    return _check_json_document(_get(f"{ehr.fhir_base}/.well-known/smart-configuration"))


@pytest.fixture(scope="module")
def oidc_doc(ehr, smart_doc) -> dict:
    return _check_json_document(_get(f"{smart_doc['issuer']}/.well-known/openid-configuration"))


def test_smart_configuration_has_every_required_field_with_its_type(ehr, smart_doc):
    for name, kind in SMART_REQUIRED.items():
        assert name in smart_doc, f"smart-configuration lacks {name}"
        assert isinstance(smart_doc[name], kind) and smart_doc[name], name
    assert smart_doc["issuer"] == ehr.fhir_base
    for name in ENDPOINTS:
        assert smart_doc[name].startswith(ehr.url + "/"), (name, smart_doc[name])  # absolute, on this server


def test_smart_configuration_advertises_what_smart_2_needs(smart_doc):
    assert "authorization_code" in smart_doc["grant_types_supported"]
    assert "client_credentials" in smart_doc["grant_types_supported"]
    assert "refresh_token" in smart_doc["grant_types_supported"]
    assert smart_doc["code_challenge_methods_supported"] == ["S256"]  # never plain
    assert smart_doc["response_types_supported"] == ["code"]  # no implicit, no hybrid
    assert {"RS384", "ES384"} <= set(smart_doc["token_endpoint_auth_signing_alg_values_supported"])
    assert "none" not in smart_doc["token_endpoint_auth_signing_alg_values_supported"]
    assert not any(alg.startswith("HS") for alg in smart_doc["token_endpoint_auth_signing_alg_values_supported"])
    assert set(smart_doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert all(isinstance(c, str) for c in smart_doc["capabilities"])
    assert CAPABILITIES <= set(smart_doc["capabilities"]), CAPABILITIES - set(smart_doc["capabilities"])
    assert {"openid", "fhirUser", "launch", "launch/patient", "offline_access"} <= set(smart_doc["scopes_supported"])
    assert all(" " not in scope for scope in smart_doc["scopes_supported"])


def test_openid_configuration_lives_under_the_issuer_and_agrees_with_smart(smart_doc, oidc_doc):
    missing = [name for name in OIDC_REQUIRED if name not in oidc_doc]
    assert not missing, missing
    assert oidc_doc["issuer"] == smart_doc["issuer"]
    assert "RS256" in oidc_doc["id_token_signing_alg_values_supported"]  # Inferno: RS256 must be supported
    assert "none" not in oidc_doc["id_token_signing_alg_values_supported"]
    assert "public" in oidc_doc["subject_types_supported"]
    assert oidc_doc["response_types_supported"] == ["code"]
    for name in ENDPOINTS + ["userinfo_endpoint"]:
        assert oidc_doc[name] == smart_doc[name], name
    assert oidc_doc["registration_endpoint"] == smart_doc["registration_endpoint"]  # contract: in both documents
    assert "fhirUser" in oidc_doc["claims_supported"]


def test_discovery_documents_need_no_token_and_answer_a_cors_preflight(ehr):
    answer = requests.options(f"{ehr.fhir_base}/.well-known/smart-configuration", timeout=30,
                              headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                                       "Access-Control-Request-Headers": "authorization"})
    assert answer.status_code in (200, 204)
    assert answer.headers.get("Access-Control-Allow-Origin") in (ORIGIN, "*")
    assert "GET" in answer.headers.get("Access-Control-Allow-Methods", "")
    assert "authorization" in answer.headers.get("Access-Control-Allow-Headers", "").lower()
    # with a bogus token the documents are still served: they are public
    bogus = requests.get(f"{ehr.fhir_base}/.well-known/smart-configuration", timeout=30,
                         headers={"Authorization": "Bearer not-a-token"})
    assert bogus.status_code == 200


def test_discovery_is_only_at_the_fhir_base(ehr):
    # the documents are found from the FHIR base (SMART) and the issuer (OIDC), which are the same URL here
    assert requests.get(f"{ehr.url}/.well-known/smart-configuration", timeout=30).status_code == 404
    unknown = requests.get(f"{ehr.fhir_base}/.well-known/not-a-document", timeout=30)
    assert unknown.status_code in (401, 404)
    answer = requests.post(f"{ehr.fhir_base}/.well-known/smart-configuration", timeout=30)
    assert answer.status_code in (401, 404, 405)


def test_capability_statement_carries_the_smart_security_block(ehr, smart_doc):
    answer = requests.get(f"{ehr.fhir_base}/metadata", headers={"Origin": ORIGIN}, timeout=30)  # no token
    assert answer.status_code == 200, answer.text
    assert answer.headers.get("Access-Control-Allow-Origin") in (ORIGIN, "*")
    security = answer.json()["rest"][0]["security"]
    codings = [c for service in security["service"] for c in service.get("coding", [])]
    assert any(c.get("system") == "http://terminology.hl7.org/CodeSystem/restful-security-service"
               and c.get("code") == "SMART-on-FHIR" for c in codings), codings
    oauth = [e for e in security["extension"]
             if e["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"]
    assert len(oauth) == 1
    uris = {}
    for sub in oauth[0]["extension"]:
        assert set(sub) == {"url", "valueUri"}, sub  # valueUri, as fhirclient reads them
        uris[sub["url"]] = sub["valueUri"]
    well_known = {"authorize": "authorization_endpoint", "token": "token_endpoint",
                  "register": "registration_endpoint", "introspect": "introspection_endpoint",
                  "revoke": "revocation_endpoint", "manage": "management_endpoint"}
    assert {"authorize", "token", "register", "introspect", "revoke"} <= set(uris), uris
    for name, uri in uris.items():
        assert name in well_known, f"oauth-uris has {name}, which SMART does not define"
        assert uri == smart_doc.get(well_known[name]), name  # the same URL as the well-known document


def test_jwks_publishes_rsa_and_p384_keys_with_kids_and_no_private_parts(ehr, smart_doc):
    answer = _get(smart_doc["jwks_uri"])
    body = _check_json_document(answer)
    keys = body["keys"]
    kids = [k.get("kid") for k in keys]
    assert all(kids) and len(set(kids)) == len(kids), kids
    assert any(k["kty"] == "RSA" for k in keys)
    assert any(k["kty"] == "EC" and k["crv"] == "P-384" for k in keys)
    for key in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), f"private material in {key['kid']}"
        assert key.get("use", "sig") == "sig"
    # every key loads as a usable verification key (PyJWT drops keys it cannot use)
    loaded = jwt.PyJWKSet.from_dict(body)
    assert sorted(k.key_id for k in loaded.keys) == sorted(kids)


def test_every_advertised_endpoint_answers(ehr, smart_doc):
    # nothing advertised may be a 404: each endpoint answers its own kind of error to an empty request
    assert requests.post(smart_doc["token_endpoint"], timeout=30).status_code in (400, 401)
    assert requests.post(smart_doc["registration_endpoint"], timeout=30).status_code == 400
    assert requests.post(smart_doc["introspection_endpoint"], timeout=30).status_code == 401
    assert requests.post(smart_doc["revocation_endpoint"], timeout=30).status_code in (400, 401)
    assert requests.get(smart_doc["userinfo_endpoint"], timeout=30).status_code == 401
    assert requests.get(smart_doc["authorization_endpoint"], timeout=30).status_code == 400
