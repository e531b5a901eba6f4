"""Checking what MockEHR hands out: every token is verified against the server's JWKS with PyJWT."""

from __future__ import annotations

import jwt
import requests

ACCESS_ALGS = ["RS256", "RS384", "ES384"]


def jwks(ehr) -> jwt.PyJWKSet:
    answer = requests.get(ehr.smart_configuration["jwks_uri"], timeout=30)
    assert answer.status_code == 200, answer.text
    return jwt.PyJWKSet.from_dict(answer.json())


def _key(ehr, token: str):
    kid = jwt.get_unverified_header(token)["kid"]
    keys = {k.key_id: k for k in jwks(ehr).keys}
    assert kid in keys, f"kid {kid} is not in the JWKS ({sorted(keys)})"
    return keys[kid].key


def verify_access(ehr, token: str, *, now: float | None = None) -> dict:
    """Signature (JWKS), typ, iss, aud; iat/exp checked against `now` (default: the server's clock,
    which the tests move: PyJWT only knows the real time)."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    claims = jwt.decode(token, _key(ehr, token), algorithms=ACCESS_ALGS, audience=ehr.fhir_base,
                        issuer=ehr.fhir_base, options={"verify_exp": False, "verify_iat": False,
                                                      "require": ["iss", "aud", "exp", "iat", "jti", "sub"]})
    now = ehr.clock() if now is None else now
    assert claims["iat"] <= now + 1 and now < claims["exp"] + 1, (claims, now)
    return claims


def verify_id(ehr, token: str, client_id: str) -> dict:
    claims = jwt.decode(token, _key(ehr, token), algorithms=["RS256"], audience=client_id, issuer=ehr.fhir_base,
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iat"] <= ehr.clock() + 1 < claims["exp"] + 1
    return claims


def verify_response(ehr, answer: dict, client_id: str | None = None) -> dict:
    """A token response: the shape Inferno checks, and the access token (and id_token) verified."""
    assert answer["token_type"] == "Bearer"
    assert type(answer["expires_in"]) is int and answer["expires_in"] > 0
    claims = verify_access(ehr, answer["access_token"])
    assert claims["scope"] == answer["scope"]
    assert claims["exp"] - claims["iat"] == answer["expires_in"]
    assert claims.get("patient") == answer.get("patient")
    if client_id is not None:
        assert claims["client_id"] == client_id
    if "id_token" in answer:
        verify_id(ehr, answer["id_token"], claims["client_id"])
    return claims


def fhir(ehr, path: str, token: str | None = None, method: str = "GET", **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{ehr.fhir_base}/{path.lstrip('/')}", headers=headers, timeout=30, **kwargs)
