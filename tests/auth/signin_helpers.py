"""A cookie-keeping HTML form client for the sign-in pages, and a movable clock, for the session,
logout and step-up tests (tests/auth/test_flow_sessions.py and friends). Real HTTP throughout:
requests.Session keeps the mockehr_browser and mockehr_session cookies like a browser."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import requests

from mockehr.config import Settings
from mockehr.server import ServerThread

REDIRECT = "http://app.example/callback"
SESSION_COOKIE = "mockehr_session"


class Clock:
    """A server clock the test moves: time.time() + offset."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def start_server(clock: Clock | None = None, **settings) -> ServerThread:
    return ServerThread(Settings(port=0, **settings), clock=clock).start()


class Forms(HTMLParser):
    """The forms of a page: each a dict with action, method and fields (inputs and buttons, in order)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self.text_parts: list[str] = []
        self._form: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": attrs.get("action", ""), "method": attrs.get("method", "get").lower(),
                          "fields": []}
            self.forms.append(self._form)
        elif tag in ("input", "button") and self._form is not None:
            self._form["fields"].append({"tag": tag, **attrs})

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None

    def handle_data(self, data):
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())


@dataclass
class Attempt:
    """One authorization request a browser made: what the app must remember for the code exchange."""

    client_id: str
    verifier: str
    state: str
    nonce: str
    redirect_uri: str


class Browser:
    """A browser: follows mockehr's own redirects, stops at the app (or any other host)."""

    def __init__(self, root: str):
        self.root = root
        self.http = requests.Session()
        self.response: requests.Response | None = None

    # -- navigation ---------------------------------------------------------------------
    def _follow(self, answer: requests.Response) -> requests.Response:
        while answer.status_code in (301, 302, 303) and answer.headers["Location"].startswith(self.root):
            answer = self.http.get(answer.headers["Location"], allow_redirects=False, timeout=30)
        self.response = answer
        return answer

    def get(self, url: str, **params) -> requests.Response:
        return self._follow(self.http.get(url, params=params or None, allow_redirects=False, timeout=30))

    def authorize(self, client_id: str, scope: str, *, redirect_uri: str = REDIRECT, **extra) -> Attempt:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        attempt = Attempt(client_id, verifier, secrets.token_urlsafe(8), secrets.token_urlsafe(8), redirect_uri)
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
                  "aud": f"{self.root}/fhir", "state": attempt.state, "nonce": attempt.nonce,
                  "code_challenge": challenge, "code_challenge_method": "S256", **extra}
        self.get(f"{self.root}/auth/authorize?{urlencode({k: v for k, v in params.items() if v is not None})}")
        return attempt

    @property
    def path(self) -> str:
        return urlsplit(self.response.url).path if self.response.status_code == 200 else ""

    @property
    def page(self) -> Forms:
        return Forms(self.response.text)

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE, path="/auth")

    def submit(self, button: str | None = None, value: str | None = None, **fields) -> requests.Response:
        """Post the form holding the button name=value (or the only post form), with extra field values."""
        forms = [f for f in self.page.forms if f["method"] == "post"]
        if button is not None:
            forms = [f for f in forms if any(x["tag"] == "button" and x.get("name") == button
                                             and (value is None or x.get("value") == value) for x in f["fields"])]
        assert forms, f"no such form on {self.response.url}: {self.page.text[:300]}"
        form = forms[0]
        data = []
        for f in form["fields"]:
            if f["tag"] == "input" and f.get("name") and f.get("type") != "checkbox" and "disabled" not in f:
                data.append((f["name"], fields.pop(f["name"], f.get("value", ""))))
            elif f["tag"] == "input" and f.get("type") == "checkbox" and "checked" in f and "disabled" not in f:
                data.append((f["name"], f.get("value", "on")))
        if button is not None:
            data.append((button, value or ""))
        data += list(fields.items())
        action = form["action"] or self.response.url
        return self._follow(self.http.post(action, data=data, allow_redirects=False, timeout=30))

    # -- at the app -------------------------------------------------------------------
    def at_app(self, redirect_uri: str = REDIRECT) -> dict:
        """The query of the redirect back to the app (asserts the browser got there)."""
        assert self.response.status_code in (302, 303), f"{self.response.status_code} at {self.response.url}: " \
                                                         f"{self.response.text[:400]}"
        location = self.response.headers["Location"]
        assert location.split("?")[0] == redirect_uri, location
        return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))

    def code(self, attempt: Attempt) -> str:
        params = self.at_app(attempt.redirect_uri)
        assert params.get("state") == attempt.state and params.get("iss") == f"{self.root}/fhir", params
        assert "code" in params, params
        return params["code"]


def exchange(root: str, attempt: Attempt, code: str) -> dict:
    answer = requests.post(f"{root}/auth/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": attempt.redirect_uri,
        "client_id": attempt.client_id, "code_verifier": attempt.verifier})
    assert answer.status_code == 200, answer.text
    return answer.json()


def signed_claims(root: str, token: str, audience: str | None = None, **options) -> dict:
    """Claims of a JWT this server signed, checked against its JWKS with PyJWT (exp and iat checks optional)."""
    keys = jwt.PyJWKClient(f"{root}/auth/jwks", cache_keys=False)
    key = keys.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=f"{root}/fhir",
                      options={"verify_aud": audience is not None, **options}, leeway=5)


def register(root: str, **metadata) -> dict:
    body = {"client_name": metadata.pop("client_name", "session test app"), "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], **metadata}
    answer = requests.post(f"{root}/auth/register", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()


def audit(root: str, kind: str | None = None) -> list[dict]:
    events = requests.get(f"{root}/admin/audit", timeout=30).json()
    return [e for e in events if kind is None or e["type"] == kind]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll until predicate() is truthy; answers its value (fails after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(interval)
