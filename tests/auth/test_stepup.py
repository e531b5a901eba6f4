"""Unit tests of mockehr.auth.stepup: acr parsing, levels, the acr claim, the demo code."""

from __future__ import annotations

import pytest

from mockehr.auth.stepup import LOA1, LOA2, AcrProblem, AcrRequest, acr_claim, check_code, level_of, parse_acr


def test_parse_acr_merges_acr_values_and_the_claims_request():
    assert parse_acr(None, None) == AcrRequest()
    assert parse_acr(f"{LOA2} {LOA1} {LOA2}", None) == AcrRequest((LOA2, LOA1))
    assert parse_acr("urn:gold", '{"id_token": {"acr": {"essential": true, "value": "' + LOA2 + '"}}}') == \
        AcrRequest((LOA2,), True, ("urn:gold",))
    assert parse_acr(None, '{"userinfo": {"name": null}}') == AcrRequest()
    assert parse_acr(None, '{"id_token": {"acr": null}}') == AcrRequest()


@pytest.mark.parametrize("claims, words", [
    ("nope", "does not parse"),
    ("[]", "must be a JSON object"),
    ('{"id_token": []}', "claims.id_token must be a JSON object"),
    ('{"id_token": {"acr": "x"}}', "claims.id_token.acr must be null or an object"),
    ('{"id_token": {"acr": {"values": [1]}}}', "must be an array of strings"),
])
def test_parse_acr_errors(claims, words):
    with pytest.raises(AcrProblem, match=words):
        parse_acr(None, claims)


def test_levels_and_the_acr_claim():
    assert AcrRequest().level == 1 and AcrRequest((LOA2,)).level == 2 and AcrRequest((LOA2, LOA1)).level == 1
    assert AcrRequest((), True, ("urn:x",)).unmet() and AcrRequest((LOA2,), True).unmet() is None
    assert AcrRequest((), False, ("urn:x",)).unmet() is None, "voluntary acr_values never fail"
    assert level_of(["pwd"]) == 1 and level_of(["pwd", "otp"]) == 2 and level_of(None) == 1
    assert acr_claim(AcrRequest(), 1) == LOA1 and acr_claim(AcrRequest(), 2) == LOA2
    assert acr_claim(AcrRequest((LOA1,)), 2) == LOA1, "essential values: the one asked for, met"
    assert acr_claim(AcrRequest((LOA1, LOA2)), 2) == LOA2


@pytest.mark.parametrize("entered, ok", [("123456", True), (" 123 456 ", True), ("123-456", True),
                                          ("12345", False), ("654321", False), ("", False), (None, False),
                                          ("1234567", False)])
def test_check_code(entered, ok):
    assert check_code(entered) is ok
