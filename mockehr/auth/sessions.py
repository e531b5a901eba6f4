"""Sign-in sessions (single sign-on) and the OIDC request parameters that steer them.

Pure logic and the session store; no Flask (mockehr.auth.signin is the HTTP side).

A session is one browser signed in as one user: the `mockehr_session` cookie (HttpOnly,
SameSite=Lax, path /auth) carries a random secret; the store keeps only its digest. Every app
authorized in that browser joins the session (the id_token's `sid`), so a second app skips the
login page. A session lasts until RP-initiated logout, a sign-in as someone else in the same
browser (which replaces it), `POST /admin/reset` or, without --data-dir, a restart; under
--data-dir it is kept in sessions.json; beyond MAX_SESSIONS the oldest are forgotten quietly (a
client without cookies starts one per authorization). Ending a session revokes the grants of its
apps that hold online_access (and not offline_access) and notifies the apps registered for
back-channel logout.

Consent is remembered per session, app and patient: the same app asking again (in the same
session, for the same patient) for no more than was approved skips the consent page; another app
always sees its own consent page (OIDC leaves this to the provider; a sandbox should show what a
new app asks for). `prompt=consent` shows the page anyway; logout forgets.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson

from mockehr.auth.authorize import RedirectError
from mockehr.auth.model import digest, new_secret
from mockehr.auth.stepup import AcrProblem, AcrRequest, level_of, parse_acr
from mockehr.store.overlay import atomic_write

PROMPTS = ("none", "login", "consent", "select_account")
MAX_AGE_LIMIT = 10 * 365 * 24 * 3600
MAX_SESSIONS = 1000  # beyond this the oldest are forgotten (cookieless clients start one per authorization)


@dataclass(frozen=True)
class Requirements:
    """What an authorization request asks of the sign-in: prompt, max_age, acr (and a step-up fault)."""

    prompt: frozenset = frozenset()
    max_age: int | None = None
    acr: AcrRequest = AcrRequest()
    step_up: str | None = None  # why a second factor is demanded beyond acr (the step-up fault), or None

    @property
    def none(self) -> bool:
        return "none" in self.prompt

    @property
    def fresh_login(self) -> bool:
        """prompt=login or select_account: the login page shows even with a session."""
        return bool(self.prompt & {"login", "select_account"})

    @property
    def consent(self) -> bool:
        return "consent" in self.prompt

    @property
    def level(self) -> int:
        """The authentication level needed: 2 means the second-factor page."""
        return 2 if self.step_up else self.acr.level


def parse_requirements(params: dict) -> Requirements:
    """prompt, max_age, acr_values and claims of an authorization request; RedirectError(invalid_request)."""
    words = (params.get("prompt") or "").split()
    unknown = [w for w in words if w not in PROMPTS]
    if unknown:
        raise RedirectError("invalid_request", f"prompt value {unknown[0]!r} is not supported; "
                            f"use {', '.join(PROMPTS)} (OIDC Core 3.1.2.1)")
    prompt = frozenset(words)
    if "none" in prompt and len(prompt) > 1:
        raise RedirectError("invalid_request", "prompt=none cannot be combined with other prompt values "
                            "(OIDC Core 3.1.2.1)")
    raw = params.get("max_age")
    max_age = None
    if raw not in (None, ""):
        if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_AGE_LIMIT:
            raise RedirectError("invalid_request", f"max_age must be a whole number of seconds >= 0, got {raw!r}")
        max_age = int(raw)
    try:
        acr = parse_acr(params.get("acr_values"), params.get("claims"))
    except AcrProblem as exc:
        raise RedirectError("invalid_request", str(exc)) from None
    unmet = acr.unmet()
    if unmet:
        raise RedirectError("unmet_authentication_requirements", unmet)
    return Requirements(prompt, max_age, acr)


@dataclass
class Session:
    sid: str  # the id_token's sid; opaque, client_id syntax
    cookie_digest: str
    user: str  # "Practitioner/ID" or "Patient/ID"
    auth_time: int  # when the user last signed in (login page, EHR launch or auto-approve)
    amr: list = field(default_factory=lambda: ["pwd"])
    created: float = 0.0
    clients: list = field(default_factory=list)  # apps sent an authorization response in this session
    consents: dict = field(default_factory=dict)  # "client_id patient" -> approved scope words

    @property
    def level(self) -> int:
        return level_of(self.amr)


def reuse_problem(session: Session | None, req: Requirements, login_hint: str | None, now: int) -> str | None:
    """Why the browser's session cannot sign this request in without the login page, or None if it can."""
    if session is None:
        return "nobody is signed in in this browser"
    if "login" in req.prompt:
        return "prompt=login asks for a fresh sign-in"
    if "select_account" in req.prompt:
        return "prompt=select_account asks the user to choose the account"
    if req.max_age is not None:
        age = now - session.auth_time
        if req.max_age == 0 or age > req.max_age:
            return f"the sign-in is {age} s old and max_age is {req.max_age} s"
    if login_hint and login_hint != session.user:
        return f"login_hint names {login_hint}, but {session.user} is signed in"
    return None


def _consent_key(client_id: str, patient: str | None) -> str:
    return f"{client_id} {patient or ''}"


class SessionStore:
    """The live sessions, by cookie digest and by sid; thread-safe; sessions.json under --data-dir."""

    FILE_NAME = "sessions.json"

    def __init__(self, data_dir: Path | None, clock: Callable[[], float]):
        self._clock = clock
        self._lock = threading.RLock()
        self._path = Path(data_dir) / self.FILE_NAME if data_dir else None
        self._by_sid: dict[str, Session] = {}
        self._by_cookie: dict[str, str] = {}
        if self._path and self._path.exists():
            for doc in orjson.loads(self._path.read_bytes()):
                self._index(Session(**doc))

    def _index(self, session: Session) -> None:
        self._by_sid[session.sid] = session
        self._by_cookie[session.cookie_digest] = session.sid

    def _save(self) -> None:
        if self._path:
            atomic_write(self._path, orjson.dumps([dataclasses.asdict(s) for s in self._by_sid.values()]),
                         mode=0o600)

    # -- finding ------------------------------------------------------------
    def by_cookie(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        with self._lock:
            return self._by_sid.get(self._by_cookie.get(digest(cookie), ""))

    def by_sid(self, sid: str | None) -> Session | None:
        return self._by_sid.get(sid or "")

    def all(self) -> list[Session]:
        with self._lock:
            return sorted(self._by_sid.values(), key=lambda s: s.created)

    # -- changing -------------------------------------------------------------
    def start(self, user: str, auth_time: int, amr=("pwd",)) -> tuple[Session, str]:
        """A new session; answers it and the cookie value to set (shown once, kept as a digest)."""
        cookie = new_secret(32)
        session = Session(new_secret(16), digest(cookie), user, auth_time, list(amr), self._clock())
        with self._lock:
            self._index(session)
            while len(self._by_sid) > MAX_SESSIONS:  # dicts keep insertion order: the oldest first
                oldest = self._by_sid.pop(next(iter(self._by_sid)))
                self._by_cookie.pop(oldest.cookie_digest, None)
            self._save()
        return session, cookie

    def signed_in_again(self, session: Session, auth_time: int) -> None:
        """The same user signed in again in this session (prompt=login, max_age): a new auth_time."""
        with self._lock:
            session.auth_time = auth_time
            self._save()

    def stepped_up(self, session: Session) -> None:
        with self._lock:
            if "otp" not in session.amr:
                session.amr.append("otp")
            self._save()

    def joined(self, session: Session, client_id: str) -> None:
        with self._lock:
            if client_id not in session.clients:
                session.clients.append(client_id)
                self._save()

    def remember_consent(self, session: Session, client_id: str, patient: str | None, scope: str) -> None:
        with self._lock:
            key = _consent_key(client_id, patient)
            session.consents[key] = sorted(set(session.consents.get(key, [])) | set(scope.split()))
            self._save()

    def consented(self, session: Session | None, client_id: str, patient: str | None, scope: str) -> bool:
        """Whether every word of `scope` was approved for this app and patient earlier in the session."""
        if session is None or not scope:
            return False
        with self._lock:
            approved = set(session.consents.get(_consent_key(client_id, patient), []))
        return set(scope.split()) <= approved

    def end(self, sid: str) -> Session | None:
        """Forget the session; answers it (for the logout work), or None if it was not live."""
        with self._lock:
            session = self._by_sid.pop(sid, None)
            if session is not None:
                self._by_cookie.pop(session.cookie_digest, None)
                self._save()
            return session

    def clear(self) -> None:
        with self._lock:
            self._by_sid.clear()
            self._by_cookie.clear()
            self._save()
