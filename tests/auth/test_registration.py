"""mockehr.auth.registration: RFC 7591 client metadata validation."""

from __future__ import annotations

import base64
import copy
import json
import random

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, RSAKey

from mockehr.auth.registration import (
    ASSERTION_ALGS,
    GRANT_TYPES,
    TOKEN_AUTH_METHODS,
    ClientMetadata,
    RegistrationError,
    validate_client_metadata,
)

ERROR_CODES = {"invalid_client_metadata", "invalid_redirect_uri", "invalid_software_statement"}
SPA_CB = "https://spa.example.org/callback"


def b64url_int(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def rsa_jwk() -> dict:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS384"}).as_dict(private=False)


@pytest.fixture(scope="module")
def rsa_private_jwk() -> dict:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}).as_dict(private=True)


@pytest.fixture(scope="module")
def ec384_jwk() -> dict:
    return ECKey.generate_key("P-384", parameters={"kid": "ec-1", "alg": "ES384"}).as_dict(private=False)


@pytest.fixture(scope="module")
def ec256_jwk() -> dict:
    return ECKey.generate_key("P-256").as_dict(private=False)  # no kid, no alg: still usable (ES256)


@pytest.fixture(scope="module")
def rsa1024_jwk() -> dict:
    # Built by hand: importing a 1024-bit key into joserfc warns, and warnings are errors here.
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    return {"kty": "RSA", "n": b64url_int(numbers.n), "e": b64url_int(numbers.e), "kid": "small"}


def refused(body, error: str, *needles: str, **kwargs) -> RegistrationError:
    with pytest.raises(RegistrationError) as caught:
        validate_client_metadata(body, **kwargs)
    assert caught.value.error == error, caught.value.description
    for needle in needles:
        assert needle in caught.value.description, caught.value.description
    assert caught.value.to_dict() == {"error": error, "error_description": caught.value.description}
    return caught.value


# --- valid registrations, one per auth method ---------------------------------------------


def test_public_spa():
    meta = validate_client_metadata({
        "redirect_uris": [SPA_CB], "token_endpoint_auth_method": "none", "client_name": "Growth Chart",
        "scope": "launch openid fhirUser patient/*.rs", "require_pkce": True, "contacts": ["dev@example.org"],
        "logo_uri": "https://spa.example.org/logo.png",
    })
    assert isinstance(meta, ClientMetadata)
    assert meta.token_endpoint_auth_method == "none"
    assert meta.redirect_uris == (SPA_CB,)
    assert meta.grant_types == ("authorization_code",) and meta.response_types == ("code",)
    assert meta.scope == "launch openid fhirUser patient/*.rs"
    assert meta.require_pkce is True and meta.client_name == "Growth Chart"
    assert meta.contacts == ("dev@example.org",) and meta.logo_uri == "https://spa.example.org/logo.png"
    assert meta.jwks is None and meta.jwks_uri is None


def test_confidential_basic_is_the_rfc_default():
    meta = validate_client_metadata({"redirect_uris": ["https://app.example.org/cb"],
                                     "grant_types": ["authorization_code", "refresh_token"]})
    assert meta.token_endpoint_auth_method == "client_secret_basic"
    assert meta.grant_types == ("authorization_code", "refresh_token")


def test_confidential_post():
    meta = validate_client_metadata({"redirect_uris": ["http://app.example.org/cb"],
                                     "token_endpoint_auth_method": "client_secret_post"})
    assert meta.token_endpoint_auth_method == "client_secret_post"
    assert meta.redirect_uris == ("http://app.example.org/cb",)  # http on any host: a sandbox


def test_backend_service_rs384_jwks(rsa_jwk):
    body = {"grant_types": ["client_credentials"], "jwks": {"keys": [rsa_jwk]}, "scope": "system/*.rs"}
    meta = validate_client_metadata(body)
    assert meta.token_endpoint_auth_method == "private_key_jwt"  # inferred from the keys
    assert meta.grant_types == ("client_credentials",)
    assert meta.response_types == ()  # no authorization_code, so no default "code"
    assert meta.redirect_uris == ()
    assert meta.jwks == {"keys": [rsa_jwk]}
    assert meta.jwks["keys"][0] is not rsa_jwk  # a copy: the caller's body can change afterwards
    answer = meta.to_response()
    assert answer["jwks"] == {"keys": [rsa_jwk]} and "redirect_uris" not in answer
    assert "d" not in answer["jwks"]["keys"][0]


def test_backend_service_es384_jwks(ec384_jwk):
    meta = validate_client_metadata({"grant_types": ["client_credentials"], "token_endpoint_auth_method":
                                     "private_key_jwt", "jwks": {"keys": [ec384_jwk]}})
    assert meta.jwks["keys"][0]["crv"] == "P-384"


def test_jwks_with_several_keys_and_no_alg(rsa_jwk, ec384_jwk, ec256_jwk):
    meta = validate_client_metadata({"grant_types": ["client_credentials"],
                                     "jwks": {"keys": [rsa_jwk, ec384_jwk, ec256_jwk]}})
    assert len(meta.jwks["keys"]) == 3


def test_backend_service_jwks_uri():
    meta = validate_client_metadata({"grant_types": ["client_credentials"],
                                     "jwks_uri": "https://backend.example.org/.well-known/jwks.json"})
    assert meta.token_endpoint_auth_method == "private_key_jwt"
    assert meta.jwks_uri == "https://backend.example.org/.well-known/jwks.json" and meta.jwks is None


def test_private_key_jwt_app_launch(rsa_jwk):
    meta = validate_client_metadata({"redirect_uris": [SPA_CB], "token_endpoint_auth_method": "private_key_jwt",
                                     "jwks": {"keys": [rsa_jwk]}})
    assert meta.grant_types == ("authorization_code",)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials_with_a_secret_is_allowed(method):
    meta = validate_client_metadata({"grant_types": ["client_credentials"], "token_endpoint_auth_method": method})
    assert meta.token_endpoint_auth_method == method


def test_public_client_may_send_keys_without_needing_them(ec384_jwk):
    meta = validate_client_metadata({"redirect_uris": [SPA_CB], "token_endpoint_auth_method": "none",
                                     "jwks": {"keys": [ec384_jwk]}})
    assert meta.token_endpoint_auth_method == "none" and meta.jwks == {"keys": [ec384_jwk]}


@pytest.mark.parametrize("uri", [
    "com.example.app:/oauth2redirect", "com.example.app:cb", "http://127.0.0.1:51004/cb",
    "http://[::1]:8080/cb", "http://localhost/cb", "https://app.example.org/cb?x=1",
])
def test_native_and_loopback_redirects(uri):
    assert validate_client_metadata({"redirect_uris": [uri]}).redirect_uris == (uri,)
    assert validate_client_metadata({"redirect_uris": [uri]}, allow_http_localhost_only=True).redirect_uris == (uri,)


def test_every_auth_method_has_a_valid_registration(rsa_jwk):
    bodies = {"none": {"redirect_uris": [SPA_CB]}, "client_secret_basic": {"redirect_uris": [SPA_CB]},
              "client_secret_post": {"redirect_uris": [SPA_CB]},
              "private_key_jwt": {"redirect_uris": [SPA_CB], "jwks": {"keys": [rsa_jwk]}}}
    for method in TOKEN_AUTH_METHODS:
        meta = validate_client_metadata(dict(bodies[method], token_endpoint_auth_method=method))
        assert meta.token_endpoint_auth_method == method
    assert set(GRANT_TYPES) == {"authorization_code", "refresh_token", "client_credentials"}
    assert ASSERTION_ALGS[:2] == ("RS384", "ES384")


# --- defaults, echo, unknown fields --------------------------------------------------------


def test_defaults():
    meta = validate_client_metadata({"redirect_uris": [SPA_CB]})
    assert meta == ClientMetadata(
        redirect_uris=(SPA_CB,), token_endpoint_auth_method="client_secret_basic",
        grant_types=("authorization_code",), response_types=("code",), client_name=None, scope=None,
        jwks=None, jwks_uri=None, subject_type="public", require_pkce=False, contacts=(), logo_uri=None,
        client_uri=None, policy_uri=None, tos_uri=None, extra={})
    assert hash(meta) == hash(validate_client_metadata({"redirect_uris": [SPA_CB]}))
    assert meta.to_response() == {
        "redirect_uris": [SPA_CB], "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code"], "response_types": ["code"], "subject_type": "public",
        "require_pkce": False}


def test_null_counts_as_absent():
    body = {name: None for name in ("token_endpoint_auth_method", "grant_types", "response_types", "scope",
                                    "jwks", "jwks_uri", "subject_type", "require_pkce", "contacts", "logo_uri",
                                    "client_name", "software_statement")}
    meta = validate_client_metadata(dict(body, redirect_uris=[SPA_CB]))
    assert meta == validate_client_metadata({"redirect_uris": [SPA_CB]})


def test_explicit_values_and_dedup():
    meta = validate_client_metadata({
        "redirect_uris": [SPA_CB, SPA_CB, "https://b.example/cb"], "response_types": ["code", "code"],
        "grant_types": ["authorization_code", "authorization_code"], "subject_type": "pairwise",
        "scope": "  openid   launch ", "client_uri": "https://a.example", "policy_uri": "https://a.example/p",
        "tos_uri": "https://a.example/t",
        "sector_identifier_uri": "https://a.example/sector.json"})  # pairwise on two hosts needs one (OIDC Core 8.1)
    assert meta.redirect_uris == (SPA_CB, "https://b.example/cb")
    assert meta.grant_types == ("authorization_code",) and meta.response_types == ("code",)
    assert meta.subject_type == "pairwise" and meta.scope == "openid launch"
    answer = meta.to_response()
    assert answer["client_uri"] == "https://a.example" and answer["tos_uri"] == "https://a.example/t"


def test_unknown_fields_are_kept_and_echoed():
    body = {
        "redirect_uris": [SPA_CB], "software_id": "4NRB1-0XZABZI9E6-5SM3R", "software_version": "2.1",
        "post_logout_redirect_uris": ["https://a.example/bye"], "require_pushed_authorization_requests": True,
        "dpop_bound_access_tokens": False, "backchannel_logout_uri": "https://a.example/logout",
        "client_name#fr": "Courbe", "x_vendor": {"nested": [1, 2.5, None, True, "s"]}, "extra": "kept too",
    }
    meta = validate_client_metadata(body)
    for name in ("software_id", "software_version", "post_logout_redirect_uris", "client_name#fr", "x_vendor",
                 "require_pushed_authorization_requests", "dpop_bound_access_tokens", "backchannel_logout_uri",
                 "extra"):
        assert meta.extra[name] == body[name]
        assert meta.to_response()[name] == body[name]
    body["x_vendor"]["nested"].append("later")  # the caller's later edits do not leak in
    assert meta.extra["x_vendor"]["nested"] == [1, 2.5, None, True, "s"]
    answer = meta.to_response()
    answer["x_vendor"]["nested"].clear()  # nor do edits to an answer
    assert meta.to_response()["x_vendor"]["nested"] == [1, 2.5, None, True, "s"]


def test_server_owned_and_unserializable_fields_are_dropped():
    meta = validate_client_metadata({
        "redirect_uris": [SPA_CB], "client_id": "mine", "client_secret": "s3cret", "registration_access_token": "t",
        "client_id_issued_at": 1, "software_statement": "eyJh.eyJi.c2ln",
        "nan": float("nan"), "huge": 2**70, "bytes": b"x", "set": {1}, "tuple_key": {1: "x"},
        "surrogate": "\ud800", "deep": json.loads("[" * 100 + "]" * 100), "ok_int": 2**62,
    })
    assert meta.extra == {"ok_int": 2**62}
    orjson.dumps(meta.to_response())


def test_to_response_round_trips_through_orjson(rsa_jwk):
    meta = validate_client_metadata({"grant_types": ["client_credentials"], "jwks": {"keys": [rsa_jwk]},
                                     "client_name": "Bulk export", "contacts": ["a@b.example"]})
    assert orjson.loads(orjson.dumps(meta.to_response())) == meta.to_response()
    assert "client_id" not in meta.to_response() and "client_secret" not in meta.to_response()


# --- every refusal ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "{}", None, 3, b"{}"])
def test_body_must_be_an_object(body):
    refused(body, "invalid_client_metadata", "JSON object")


@pytest.mark.parametrize("redirect_uris, needles", [
    ("http://x", ["redirect_uris must be an array", "a string"]),
    ({"0": SPA_CB}, ["an object"]),
    ([SPA_CB, 5], ["redirect_uris[1] must be a string", "a number"]),
    ([None], ["redirect_uris[0]", "null"]),
    ([], ["required for the authorization_code grant"]),
    (None, ["required for the authorization_code grant"]),
    ([SPA_CB, "http://example.com/cb#x"], ["redirect_uris[1] 'http://example.com/cb#x' must not contain a fragment",
                                           "RFC 6749 3.1.2"]),
    (["https://example.com/cb#"], ["fragment"]),
    (["/relative/cb"], ["redirect_uris[0] '/relative/cb'", "absolute"]),
    (["example.com/cb"], ["absolute"]),
    (["javascript:alert(1)"], ["private-use scheme", "RFC 8252"]),
    (["data:text/html,hi"], ["private-use scheme"]),
    (["myapp:/cb"], ["private-use scheme"]),
    (["com.example.app:"], ["needs a path"]),
    (["com.example app:/cb"], ["spaces or control characters"]),
    (["com.exa_mple.app:/cb"], ["private-use scheme"]),
    (["com.example.app:/c b"], ["spaces or control characters"]),
    (["http:///cb"], ["absolute http(s) URL"]),
    (["https://example.com:99999/cb"], ["not a valid URL"]),
    (["http://[::1/cb"], ["not a valid URL"]),
    (["https://exa mple.com/cb"], ["spaces or control characters"]),
    ([" https://example.com/cb"], ["spaces or control characters"]),
    (["https://example.com/\ud800"], ["redirect_uris[0] must be a string"]),
])
def test_bad_redirect_uris(redirect_uris, needles):
    refused({"redirect_uris": redirect_uris}, "invalid_redirect_uri", *needles)


@pytest.mark.parametrize("uri", ["http://example.com/cb", "http://10.0.0.1/cb", "http://localhost.evil.example/cb"])
def test_http_only_on_loopback_when_asked(uri):
    refused({"redirect_uris": [uri]}, "invalid_redirect_uri", "must use https", allow_http_localhost_only=True)
    refused({"grant_types": ["client_credentials"], "jwks_uri": uri}, "invalid_client_metadata", "jwks_uri",
            "must use https", allow_http_localhost_only=True)


def test_long_values_are_shortened_in_messages():
    error = refused({"redirect_uris": ["https://example.com/" + "a" * 5000 + "#x"]}, "invalid_redirect_uri")
    assert len(error.description) < 200


CASES = [
    # token endpoint auth method
    ({"redirect_uris": [SPA_CB], "token_endpoint_auth_method": "client_secret_jwt"},
     ["token_endpoint_auth_method 'client_secret_jwt' is not supported", "private_key_jwt"]),
    ({"redirect_uris": [SPA_CB], "token_endpoint_auth_method": 5}, ["token_endpoint_auth_method must be a string"]),
    ({"redirect_uris": [SPA_CB], "token_endpoint_auth_method": ""}, ["'' is not supported"]),
    ({"redirect_uris": [SPA_CB], "token_endpoint_auth_method": "private_key_jwt"}, ["send jwks or jwks_uri"]),
    ({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}, ["jwks_uri"]),
    ({"grant_types": ["client_credentials"], "jwks_uri": "https://a.example/jwks", "jwks": "JWKS"},
     ["jwks must be a JSON object"]),
    # grant and response types
    ({"redirect_uris": [SPA_CB], "grant_types": ["implicit"]}, ["implicit", "not supported by SMART"]),
    ({"grant_types": ["password"]}, ["password", "not supported by SMART"]),
    ({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}, ["device_code' is not supported"]),
    ({"grant_types": "authorization_code"}, ["grant_types must be an array"]),
    ({"grant_types": [["authorization_code"]]}, ["grant_types[0] must be a string", "an array"]),
    ({"grant_types": []}, ["at least one grant type"]),
    ({"redirect_uris": [SPA_CB], "grant_types": ["refresh_token"]}, ["refresh_token", "authorization_code"]),
    ({"grant_types": ["client_credentials", "refresh_token"], "token_endpoint_auth_method": "client_secret_basic"},
     ["refresh_token"]),
    ({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"},
     ["client_credentials", "'none'", "public client"]),
    ({"redirect_uris": [SPA_CB], "response_types": ["token"]}, ["response_types: 'token' is not supported",
                                                                "only 'code'"]),
    ({"redirect_uris": [SPA_CB], "response_types": ["code id_token"]}, ["'code id_token' is not supported"]),
    ({"redirect_uris": [SPA_CB], "response_types": []}, ["needs response type 'code'", "RFC 7591 2.1"]),
    ({"redirect_uris": [SPA_CB], "response_types": "code"}, ["response_types must be an array"]),
    ({"grant_types": ["client_credentials"], "response_types": ["code"]},
     ["response type 'code' needs grant type 'authorization_code'"]),
    # plain fields
    ({"redirect_uris": [SPA_CB], "subject_type": "secret"}, ["subject_type 'secret'", "'pairwise'"]),
    ({"redirect_uris": [SPA_CB], "subject_type": 1}, ["subject_type must be a string"]),
    ({"redirect_uris": [SPA_CB], "require_pkce": "true"}, ["require_pkce must be a JSON boolean", "a string"]),
    ({"redirect_uris": [SPA_CB], "require_pkce": 1}, ["require_pkce must be a JSON boolean", "a number"]),
    ({"redirect_uris": [SPA_CB], "dpop_bound_access_tokens": "yes"}, ["dpop_bound_access_tokens must be a JSON"]),
    ({"redirect_uris": [SPA_CB], "scope": ["openid"]}, ["scope must be a string", "an array"]),
    ({"redirect_uris": [SPA_CB], "scope": "   "}, ["scope lists no scopes"]),
    ({"redirect_uris": [SPA_CB], "scope": 'openid pat"ient'}, ["scope token 'pat\"ient'", "RFC 6749 3.3"]),
    ({"redirect_uris": [SPA_CB], "scope": "openid\tlaunch"}, ["RFC 6749 3.3"]),
    ({"redirect_uris": [SPA_CB], "client_name": 42}, ["client_name must be a string", "a number"]),
    ({"redirect_uris": [SPA_CB], "client_name": {"en": "x"}}, ["client_name must be a string", "an object"]),
    ({"redirect_uris": [SPA_CB], "contacts": "a@b.example"}, ["contacts must be an array of strings"]),
    ({"redirect_uris": [SPA_CB], "contacts": ["a@b.example", 7]}, ["contacts[1] must be a string"]),
    ({"redirect_uris": [SPA_CB], "logo_uri": "ftp://a.example/logo.png"}, ["logo_uri 'ftp://", "http(s)"]),
    ({"redirect_uris": [SPA_CB], "tos_uri": "terms.html"}, ["tos_uri 'terms.html'", "absolute http(s) URL"]),
    ({"redirect_uris": [SPA_CB], "policy_uri": 5}, ["policy_uri must be a string"]),
    ({"redirect_uris": [SPA_CB], "client_uri": "https://a.example/#top"}, ["client_uri", "fragment"]),
    # jwks_uri and jwks shapes
    ({"grant_types": ["client_credentials"], "jwks_uri": "file:///etc/jwks.json"}, ["jwks_uri", "http(s)"]),
    ({"grant_types": ["client_credentials"], "jwks_uri": "/jwks.json"}, ["jwks_uri", "absolute"]),
    ({"grant_types": ["client_credentials"], "jwks_uri": ["https://a.example/jwks"]}, ["jwks_uri must be a string"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": "x"}}, ['{"keys": [...]}']),
    ({"grant_types": ["client_credentials"], "jwks": [{"kty": "RSA"}]}, ["jwks must be a JSON object"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": []}}, ["jwks.keys is empty"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [1]}}, ["jwks.keys[0] must be a JSON object"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
     ["private key member(s) k"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]}},
     ["kty 'OKP' is not supported", "RSA or EC"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [{"n": "AQAB", "e": "AQAB"}]}},
     ["kty (null) is not supported"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "EC", "crv": "P-521", "x": "A", "y": "A"}]}},
     ["curve 'P-521' is not supported"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "EC", "crv": ["P-256"]}]}},
     ["curve (an array)"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}},
     ["jwks.keys[0] is not a valid RSA public key"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "RSA", "e": "AQAB"}]}},
     ["not a valid RSA public key"]),
    ({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}},
     ["not a valid EC public key"]),
    # software statement
    ({"redirect_uris": [SPA_CB], "software_statement": "not-a-jwt"}, ["software_statement must be a signed JWT"]),
    ({"redirect_uris": [SPA_CB], "software_statement": {"iss": "x"}}, ["compact JWS"]),
]


@pytest.mark.parametrize("body, needles", CASES)
def test_refusals(body, needles):
    error = "invalid_software_statement" if "software_statement" in body else "invalid_client_metadata"
    refused(body, error, *needles)


def test_both_jwks_and_jwks_uri(rsa_jwk):
    refused({"grant_types": ["client_credentials"], "jwks": {"keys": [rsa_jwk]}, "jwks_uri": "https://a.example/j"},
            "invalid_client_metadata", "jwks and jwks_uri must not both be present")


def test_private_keys_are_refused(rsa_private_jwk):
    error = refused({"grant_types": ["client_credentials"], "jwks": {"keys": [rsa_private_jwk]}},
                    "invalid_client_metadata", "jwks.keys[0] contains private key member(s) d, p, q, dp, dq, qi",
                    "public key only")
    assert rsa_private_jwk["d"] not in error.description  # never echo key material
    ec_private = ECKey.generate_key("P-384").as_dict(private=True)
    refused({"grant_types": ["client_credentials"], "jwks": {"keys": [ec_private]}}, "invalid_client_metadata",
            "private key member(s) d")


def test_small_rsa_key_is_refused(rsa1024_jwk):
    refused({"grant_types": ["client_credentials"], "jwks": {"keys": [rsa1024_jwk]}}, "invalid_client_metadata",
            "RSA key has 1024 bits", "2048")


@pytest.mark.parametrize("which, alg, needles", [
    ("rsa", "ES384", ["alg 'ES384' cannot sign", "RS384 or RS256"]),
    ("rsa", "PS384", ["alg 'PS384'"]),
    ("rsa", "RS512", ["alg 'RS512'"]),
    ("ec384", "ES256", ["alg 'ES256'", "use ES384"]),
    ("ec256", "ES384", ["alg 'ES384'", "use ES256"]),
    ("ec384", "none", ["alg 'none'"]),
    ("rsa", 384, ["alg must be a string"]),
])
def test_key_alg_must_fit_assertions(which, alg, needles, rsa_jwk, ec384_jwk, ec256_jwk):
    jwk = dict({"rsa": rsa_jwk, "ec384": ec384_jwk, "ec256": ec256_jwk}[which], alg=alg)
    refused({"grant_types": ["client_credentials"], "jwks": {"keys": [jwk]}}, "invalid_client_metadata", *needles)


def test_key_use_kid_and_duplicates(rsa_jwk, ec384_jwk):
    def keys(*jwks):
        return {"grant_types": ["client_credentials"], "jwks": {"keys": list(jwks)}}

    refused(keys(dict(rsa_jwk, use="enc")), "invalid_client_metadata", "use 'enc'", "'sig'")
    refused(keys(dict(rsa_jwk, kid=7)), "invalid_client_metadata", "kid must be a string")
    refused(keys(rsa_jwk, dict(ec384_jwk, kid=rsa_jwk["kid"])), "invalid_client_metadata",
            "jwks.keys[1] repeats kid 'rsa-1'")
    refused(keys(rsa_jwk, dict(rsa_jwk, x_bad=float("inf"))), "invalid_client_metadata", "jwks.keys[1]")
    assert validate_client_metadata(keys(dict(rsa_jwk, use="sig"))).jwks["keys"][0]["use"] == "sig"
    no_kids = [{k: v for k, v in jwk.items() if k != "kid"} for jwk in (rsa_jwk, ec384_jwk)]
    assert len(validate_client_metadata(keys(*no_kids)).jwks["keys"]) == 2


# --- fuzz: only RegistrationError ever escapes -----------------------------------------------

FIELDS = ["redirect_uris", "token_endpoint_auth_method", "grant_types", "response_types", "client_name", "scope",
          "jwks", "jwks_uri", "subject_type", "require_pkce", "contacts", "logo_uri", "client_uri", "policy_uri",
          "tos_uri", "software_statement", "software_id", "post_logout_redirect_uris", "dpop_bound_access_tokens",
          "x_unknown"]
ATOMS = [None, True, False, 0, -1, 2**64, 1.5, float("nan"), float("inf"), "", " ", "code", "none", "public",
         "private_key_jwt", "client_credentials", "authorization_code", "refresh_token", "implicit", SPA_CB,
         "http://[::1", "https://a.example:0/x", "com.example.app:/cb", "javascript:x", "a.b.c", "\ud800", "é🙂",
         "RSA", "EC", "P-256", "P-384", "RS384", "ES384", "sig", "d", "keys", b"bytes", object(), (1, 2), {1, 2}]


def random_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(ATOMS)
    if roll < 0.7:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.9:
        keys = rng.sample(["keys", "kty", "crv", "n", "e", "x", "y", "alg", "kid", "use", "d", "k", 1], 3)
        return {key: random_value(rng, depth + 1) for key in keys}
    return json.loads("[" * 60 + "]" * 60)


def test_fuzz_only_registration_error_escapes(rsa_jwk, ec384_jwk, rsa_private_jwk):
    rng = random.Random(7591)
    seeds = [{"redirect_uris": [SPA_CB], "token_endpoint_auth_method": "none"},
             {"grant_types": ["client_credentials"], "jwks": {"keys": [rsa_jwk]}},
             {"grant_types": ["client_credentials"], "jwks": {"keys": [ec384_jwk, rsa_private_jwk]}},
             {"grant_types": ["client_credentials"], "jwks_uri": "https://a.example/jwks"}]
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(1500):
        body = copy.deepcopy(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            target = body
            if isinstance(body.get("jwks"), dict) and rng.random() < 0.3:  # mutate inside the key set
                keys = body["jwks"].get("keys")
                target = rng.choice(keys) if isinstance(keys, list) and keys else body["jwks"]
                name = rng.choice(["kty", "crv", "n", "e", "x", "y", "alg", "kid", "use", "keys", "d"])
            else:
                name = rng.choice(FIELDS)
            if isinstance(target, dict):
                if rng.random() < 0.15:
                    target.pop(name, None)
                else:
                    target[name] = random_value(rng)
        if rng.random() < 0.02:
            body = random_value(rng)
        try:
            meta = validate_client_metadata(body, allow_http_localhost_only=rng.random() < 0.5)
        except RegistrationError as error:
            assert error.error in ERROR_CODES
            assert isinstance(error.description, str) and error.description
            assert len(error.description) < 400
            outcomes["refused"] += 1
        else:
            answer = meta.to_response()
            orjson.dumps(answer)
            assert answer["token_endpoint_auth_method"] in TOKEN_AUTH_METHODS
            outcomes["ok"] += 1
    assert outcomes["ok"] > 50 and outcomes["refused"] > 500, outcomes
