"""Unit tests of mockehr.auth.pairwise: sectors, the derivation, the persisted secret."""

from __future__ import annotations

from types import SimpleNamespace

from mockehr.auth.pairwise import (Subjects, load_secret, pairwise_sub, registration_problem, sector_identifier,
                                   uri_host)


def test_sector_identifier():
    assert uri_host("https://App.Example:8443/cb?x=1") == "app.example"
    assert uri_host("com.example.app:/callback") == "com.example.app"
    assert sector_identifier(["http://a.example/1", "https://a.example:9/2"], None) == "a.example"
    assert sector_identifier(["http://a.example/1", "http://b.example/2"], None) is None
    assert sector_identifier(["http://a.example/1", "http://b.example/2"], "https://s.example/x.json") == "s.example"
    assert sector_identifier([], None) is None


def test_registration_problem():
    assert registration_problem("public", ["http://a.example/", "http://b.example/"], None) is None
    assert registration_problem("pairwise", ["http://a.example/", "http://a.example/2"], None) is None
    assert "needs a sector_identifier_uri" in registration_problem("pairwise", ["http://a.example/",
                                                                                 "http://b.example/"], None)
    assert registration_problem("pairwise", ["http://a.example/", "http://b.example/"], "https://a.example/s") is None


def test_pairwise_sub_is_keyed_opaque_and_url_safe():
    secret = b"k" * 32
    sub = pairwise_sub(secret, "a.example", "Practitioner/pr-okafor")
    assert sub == pairwise_sub(secret, "a.example", "Practitioner/pr-okafor") and len(sub) == 43
    assert sub.replace("-", "").replace("_", "").isalnum() and "okafor" not in sub
    assert sub != pairwise_sub(secret, "b.example", "Practitioner/pr-okafor")
    assert sub != pairwise_sub(b"j" * 32, "a.example", "Practitioner/pr-okafor")
    assert pairwise_sub(secret, "a.example\nPractitioner", "x") != pairwise_sub(secret, "a.example", "Practitioner\nx")


def _client(subject_type: str, uris, sector=None, client_id="c"):
    extra = {"sector_identifier_uri": sector} if sector else {}
    return SimpleNamespace(client_id=client_id, metadata=SimpleNamespace(subject_type=subject_type,
                                                                         redirect_uris=tuple(uris), extra=extra))


def test_subjects():
    subjects = Subjects(b"s" * 32)
    assert subjects.of(_client("public", ["http://a.example/"]), "Patient/p") == "Patient/p"
    assert subjects.of(_client("pairwise", ["http://a.example/"]), None) is None
    a = subjects.of(_client("pairwise", ["http://a.example/"]), "Patient/p")
    assert a == subjects.of(_client("pairwise", ["http://x.example/"], "https://a.example/s.json"), "Patient/p")
    assert a != subjects.of(_client("pairwise", []), "Patient/p"), "no sector: the client is its own"
    assert subjects.of(None, "Patient/p") == "Patient/p"


def test_load_secret(tmp_path):
    assert load_secret(None) != load_secret(None)
    first = load_secret(tmp_path / "data")
    assert len(first) == 32 and load_secret(tmp_path / "data") == first
