"""Unit tests of mockehr.auth.sessions: the request's prompt/max_age/acr, when a session may sign a
request in, and the session store (consent memory, persistence)."""

from __future__ import annotations

import json
import stat

import pytest

from mockehr.auth.authorize import RedirectError
from mockehr.auth.sessions import Requirements, SessionStore, parse_requirements, reuse_problem
from mockehr.auth.stepup import LOA1, LOA2, AcrRequest


def test_parse_requirements_defaults_and_values():
    assert parse_requirements({}) == Requirements()
    got = parse_requirements({"prompt": "login consent", "max_age": "300", "acr_values": f"{LOA2} urn:x"})
    assert got.prompt == {"login", "consent"} and got.fresh_login and got.consent and not got.none
    assert got.max_age == 300 and got.acr == AcrRequest((LOA2,), False, ("urn:x",)) and got.level == 2
    assert parse_requirements({"prompt": "none"}).none
    assert parse_requirements({"max_age": ""}).max_age is None
    assert parse_requirements({"prompt": "select_account"}).fresh_login


@pytest.mark.parametrize("params, error, words", [
    ({"prompt": "none login"}, "invalid_request", "prompt=none cannot be combined"),
    ({"prompt": "never"}, "invalid_request", "prompt value 'never' is not supported"),
    ({"max_age": "-5"}, "invalid_request", "max_age must be a whole number"),
    ({"max_age": "٣"}, "invalid_request", "max_age must be a whole number"),
    ({"claims": "{"}, "invalid_request", "claims must be a JSON object"),
    ({"claims": '{"id_token": {"acr": {"essential": true, "values": ["urn:x"]}}}'},
     "unmet_authentication_requirements", "none of which this server supports"),
])
def test_parse_requirements_errors(params, error, words):
    with pytest.raises(RedirectError) as caught:
        parse_requirements(params)
    assert caught.value.error == error and words in caught.value.description


def test_the_step_up_fault_forces_level_two():
    assert Requirements(acr=AcrRequest((LOA1,))).level == 1
    assert Requirements(acr=AcrRequest((LOA1,)), step_up="fault f1").level == 2


def _session(store: SessionStore, user: str = "Patient/a", auth_time: int = 1000):
    return store.start(user, auth_time)[0]


def test_reuse_problem():
    store = SessionStore(None, lambda: 0)
    session = _session(store)
    plain = Requirements()
    assert reuse_problem(None, plain, None, 1000) == "nobody is signed in in this browser"
    assert reuse_problem(session, plain, None, 5000) is None
    assert reuse_problem(session, parse_requirements({"prompt": "login"}), None, 1000) == \
        "prompt=login asks for a fresh sign-in"
    assert "select_account" in reuse_problem(session, parse_requirements({"prompt": "select_account"}), None, 1000)
    assert reuse_problem(session, parse_requirements({"max_age": "60"}), None, 1060) is None
    assert reuse_problem(session, parse_requirements({"max_age": "60"}), None, 1061) == \
        "the sign-in is 61 s old and max_age is 60 s"
    assert reuse_problem(session, parse_requirements({"max_age": "0"}), None, 1000) is not None
    assert reuse_problem(session, plain, "Patient/a", 1000) is None
    assert "login_hint names Patient/b" in reuse_problem(session, plain, "Patient/b", 1000)


def test_store_finds_by_cookie_and_sid_and_forgets_on_end():
    store = SessionStore(None, lambda: 7.0)
    session, cookie = store.start("Practitioner/x", 100)
    assert store.by_cookie(cookie) is session and store.by_sid(session.sid) is session
    assert session.cookie_digest != cookie and cookie not in session.sid
    assert store.by_cookie("nope") is None and store.by_cookie(None) is None
    store.signed_in_again(session, 200)
    store.stepped_up(session)
    store.stepped_up(session)
    assert session.auth_time == 200 and session.amr == ["pwd", "otp"] and session.level == 2
    store.joined(session, "app")
    store.joined(session, "app")
    assert session.clients == ["app"]
    assert store.end(session.sid) is session and store.end(session.sid) is None
    assert store.by_cookie(cookie) is None and store.all() == []


def test_consent_memory_is_per_app_and_patient():
    store = SessionStore(None, lambda: 0)
    session = _session(store)
    store.remember_consent(session, "app", "p1", "openid patient/*.rs")
    assert store.consented(session, "app", "p1", "patient/*.rs openid")
    assert store.consented(session, "app", "p1", "openid")
    assert not store.consented(session, "app", "p1", "openid patient/*.cruds")
    assert not store.consented(session, "other", "p1", "openid")
    assert not store.consented(session, "app", "p2", "openid")
    assert not store.consented(session, "app", "p1", "")
    assert not store.consented(None, "app", "p1", "openid")


def test_sessions_persist_under_a_data_dir(tmp_path):
    store = SessionStore(tmp_path, lambda: 5.0)
    session, cookie = store.start("Patient/a", 100)
    store.joined(session, "app")
    store.remember_consent(session, "app", "a", "openid")
    path = tmp_path / "sessions.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cookie not in path.read_text(), "only the cookie's digest is kept"
    again = SessionStore(tmp_path, lambda: 6.0).by_cookie(cookie)
    assert again is not None and again.sid == session.sid and again.clients == ["app"]
    assert again.consents == {"app a": ["openid"]}
    SessionStore(tmp_path, lambda: 6.0).clear()
    assert json.loads(path.read_text()) == []


def test_the_oldest_sessions_are_forgotten_beyond_the_limit(monkeypatch):
    from mockehr.auth import sessions

    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    store = SessionStore(None, lambda: 0)
    started = [store.start(f"Patient/{n}", n) for n in range(5)]
    assert [s.user for s in store.all()] == ["Patient/2", "Patient/3", "Patient/4"]
    assert store.by_cookie(started[0][1]) is None and store.by_cookie(started[4][1]) is started[4][0]
