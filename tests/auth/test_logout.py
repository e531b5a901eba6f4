"""Unit tests of mockehr.auth.logout: logout token claims, reading an id_token_hint, where to go after."""

from __future__ import annotations

import re

import pytest

from mockehr.auth.logout import (BACKCHANNEL_EVENT, Destination, Hint, HintProblem, destination,
                                 logout_token_claims, read_id_token_hint)

ISS = "http://ehr.example/fhir"


def test_logout_token_claims():
    claims = logout_token_claims(ISS, "app", "sub-1", "sid-1", 1000)
    assert {k: v for k, v in claims.items() if k != "jti"} == {
        "iss": ISS, "aud": "app", "iat": 1000, "exp": 1120, "sub": "sub-1", "sid": "sid-1",
        "events": {BACKCHANNEL_EVENT: {}}}
    assert len(claims["jti"]) == 32 and claims["jti"] != logout_token_claims(ISS, "app", "s", "x", 1)["jti"]
    assert "sub" not in logout_token_claims(ISS, "app", None, "sid", 1)
    assert "nonce" not in claims
    with pytest.raises(ValueError):
        logout_token_claims(ISS, "app", None, None, 1)


def test_read_id_token_hint():
    base = {"iss": ISS, "aud": "app", "sub": "u", "sid": "s", "exp": 1}
    assert read_id_token_hint({"typ": "JWT"}, base, ISS) == Hint("app", "s", "u")
    assert read_id_token_hint({}, {**base, "aud": ["app"], "sid": None}, ISS) == Hint("app", None, "u")
    for header, claims, words in [
        ({"typ": "at+jwt"}, base, "at+jwt token, not an ID token"),
        ({"typ": "logout+jwt"}, base, "logout+jwt token"),
        ({}, {**base, "iss": "http://other"}, "not by this server"),
        ({}, {**base, "aud": ["a", "b"]}, "lacks the aud or sub"),
        ({}, {k: v for k, v in base.items() if k != "sub"}, "lacks the aud or sub"),
    ]:
        with pytest.raises(HintProblem, match=re.escape(words)):
            read_id_token_hint(header, claims, ISS)


def test_destination():
    assert destination(None, "app", ["http://a/bye"]) == Destination(None)
    assert destination("http://a/bye", "app", ["http://a/bye"]) == Destination("http://a/bye")
    assert "did not register" in destination("http://a/bye?x", "app", ["http://a/bye"]).notice
    assert "neither with id_token_hint nor with client_id" in destination("http://a/bye", None, []).notice
    assert "registered: none" in destination("http://a/bye", "app", None).notice
