"""What MockEHR's helpers send over HTTP: registration, the authorize round trip, token requests.

Everything goes through the server's public endpoints, found by discovery, exactly as an app
would call them; only the standard library and joserfc (a mockehr dependency) are used, so the
helpers work wherever mockehr is installed. The transport is a keep-alive socket to the running
server, or the Flask test client when MockEHR runs without a socket (`MockEHR.app()`).

The authorize round trip never needs a browser. On an --auto-approve server the authorize
endpoint answers with the code at once. On any other server the helper completes the server's
own login, patient picker, encounter picker and consent pages the way a browser would (cookie,
CSRF token, form posts), making the choices auto-approve would make unless told otherwise: the
server's mode is honoured, never switched behind your back, and the pages are exercised too.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_REDIRECT_URI = "http://localhost/callback"
PAGE_PATHS = ("/auth/login", "/auth/second-factor", "/auth/pick-patient", "/auth/pick-encounter", "/auth/consent")
KINDS = {"public": "none", "none": "none", "secret": "client_secret_basic",
         "client_secret_basic": "client_secret_basic", "secret_post": "client_secret_post",
         "client_secret_post": "client_secret_post", "private_key_jwt": "private_key_jwt"}


class FlowError(Exception):
    """The server refused a step of a flow: `step` (registration, authorize, pages, token), the OAuth
    `error` and `description` it gave, the HTTP `status`, and the parsed `body` when there was one."""

    def __init__(self, step: str, error: str, description: str, status: int | None = None, body=None):
        super().__init__(f"{step}: {error}: {description}" + (f" (HTTP {status})" if status else ""))
        self.step, self.error, self.description, self.status, self.body = step, error, description, status, body


def _b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_claims(token: str) -> dict:
    """The payload of a JWT, decoded but NOT verified (verify against the JWKS for that)."""
    return _b64json(token.split(".")[1])


class TokenResponse(dict):
    """A token endpoint's JSON answer (a dict), with shortcuts."""

    access_token = property(lambda self: self["access_token"])
    refresh_token = property(lambda self: self.get("refresh_token"))
    id_token = property(lambda self: self.get("id_token"))
    scope = property(lambda self: self.get("scope"))
    patient = property(lambda self: self.get("patient"))
    encounter = property(lambda self: self.get("encounter"))

    @property
    def claims(self) -> dict:
        """The access token's claims, decoded, not verified."""
        return jwt_claims(self["access_token"])

    @property
    def headers(self) -> dict:
        """{"Authorization": "Bearer ..."} for your HTTP client."""
        return {"Authorization": f"Bearer {self['access_token']}"}


@dataclass(frozen=True)
class Launch:
    """An EHR launch: `launch` (the id), `iss` (the FHIR base) and `url` (app_url?launch=..&iss=.., or None)."""

    launch: str
    iss: str
    url: str | None = None

    def __str__(self) -> str:
        return self.url or self.launch


@dataclass
class Client:
    """A registered client. `private_jwk` (private_key_jwt) is the private key as a JWK dict;
    `registration` the whole RFC 7591 answer. `client["client_id"]` works too."""

    client_id: str
    token_endpoint_auth_method: str = "none"
    client_secret: str | None = None
    redirect_uris: list = field(default_factory=list)
    scope: str | None = None
    grant_types: list = field(default_factory=list)
    private_jwk: dict | None = field(default=None, repr=False)
    registration: dict = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return {"none": "public", "client_secret_basic": "secret", "client_secret_post": "secret_post"}.get(
            self.token_endpoint_auth_method, self.token_endpoint_auth_method)

    @property
    def jwks(self) -> dict | None:
        """The public half of the key, as registered."""
        if not self.private_jwk:
            return None
        private = ("d", "p", "q", "dp", "dq", "qi")
        return {"keys": [{k: v for k, v in self.private_jwk.items() if k not in private}]}

    def assertion(self, audience: str, now: float, lifetime: int = 240) -> str:
        """A SMART client assertion (RFC 7523): iss = sub = client_id, aud = the token endpoint."""
        from joserfc import jwt
        from joserfc.jwk import ECKey, RSAKey

        if not self.private_jwk:
            raise ValueError(f"client {self.client_id} has no private key (register it with kind='private_key_jwt')")
        key = (ECKey if self.private_jwk["kty"] == "EC" else RSAKey).import_key(self.private_jwk)
        alg = self.private_jwk.get("alg") or ("ES384" if self.private_jwk["kty"] == "EC" else "RS384")
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": audience, "iat": int(now),
                  "exp": int(now) + lifetime, "jti": uuid.uuid4().hex}
        return jwt.encode({"alg": alg, "kid": self.private_jwk.get("kid"), "typ": "JWT"}, claims, key, algorithms=[alg])

    def __getitem__(self, name: str):
        return self.to_dict()[name]

    def to_dict(self) -> dict:
        return {"client_id": self.client_id, "client_secret": self.client_secret, "kind": self.kind,
                "token_endpoint_auth_method": self.token_endpoint_auth_method, "redirect_uris": self.redirect_uris,
                "scope": self.scope, "grant_types": self.grant_types, "private_jwk": self.private_jwk,
                "jwks": self.jwks}


def new_key(alg: str) -> dict:
    """A fresh private JWK for a client: ES384 (fast, the default) or RS384."""
    from joserfc.jwk import ECKey, RSAKey

    params = {"kid": uuid.uuid4().hex[:16], "alg": alg, "use": "sig"}
    if alg in ("ES384", "ES256"):
        key = ECKey.generate_key("P-384" if alg == "ES384" else "P-256", parameters=params, private=True)
    elif alg in ("RS384", "RS256"):
        key = RSAKey.generate_key(2048, parameters=params, private=True)
    else:
        raise ValueError(f"alg {alg!r}: SMART client keys are ES384 or RS384 (ES256/RS256 also work)")
    return key.as_dict(private=True)


# -- HTTP -------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    headers: list
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


class SocketTransport:
    """Keep-alive HTTP/1.1 to the running server: one connection per calling thread."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._local = threading.local()
        self._open: list = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            with self._lock:
                self._open.append(connection)
        return connection

    def request(self, method: str, target: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        for attempt in (1, 2):
            connection = self._connection()
            reused = connection.sock is not None
            try:
                connection.request(method, target, body=body, headers=headers or {})
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                # a stale keep-alive connection: retry once, and only what is safe to repeat
                if attempt == 2 or not reused or method not in ("GET", "HEAD"):
                    raise
                continue
            if response.will_close:
                connection.close()
            return Answer(response.status, response.getheaders(), data)
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            for connection in self._open:
                connection.close()
            self._open.clear()
        self._local = threading.local()


class AppTransport:
    """The same calls through Flask's test client: no socket (MockEHR.app() before start())."""

    def __init__(self, app):
        self._client = app.test_client(use_cookies=False)

    def request(self, method: str, target: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        response = self._client.open(target, method=method, data=body, headers=headers or {})
        return Answer(response.status_code, list(response.headers.items()), response.get_data())

    def close(self) -> None:
        pass


class Http:
    """Absolute URLs of the server (as discovery gives them) to transport calls."""

    def __init__(self, transport, root: str):
        self.transport, self.root = transport, root

    def owns(self, url: str) -> bool:
        return url == self.root or url.startswith(self.root + "/")

    def target(self, url: str) -> str:
        if url.startswith("/"):
            return url
        if not self.owns(url):
            raise ValueError(f"{url} is not on this server ({self.root})")
        return url[len(self.root):] or "/"

    def get(self, url: str, headers: dict | None = None) -> Answer:
        return self.transport.request("GET", self.target(url), headers=headers)

    def post_form(self, url: str, fields, headers: dict | None = None) -> Answer:
        return self.transport.request("POST", self.target(url), urlencode(fields, doseq=True).encode(),
                                      {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def post_json(self, url: str, body: dict, headers: dict | None = None) -> Answer:
        return self.transport.request("POST", self.target(url), json.dumps(body).encode(),
                                      {"Content-Type": "application/json", **(headers or {})})


def _oauth_error(step: str, answer: Answer) -> FlowError:
    try:
        body = answer.json()
    except ValueError:
        return FlowError(step, "http_error", _page_text(answer.body), answer.status)
    if not isinstance(body, dict):
        return FlowError(step, "http_error", str(body)[:300], answer.status, body)
    return FlowError(step, body.get("error", "http_error"), body.get("error_description", ""), answer.status, body)


def _page_text(html: bytes, limit: int = 400) -> str:
    """The readable text of an error page (its message), for exceptions."""
    text = re.sub(r"(?s)<(script|style|head)\b.*?</\1>", " ", html.decode("utf-8", "replace"))
    text = re.sub(r"<[^>]+>", " ", text)
    from html import unescape
    return " ".join(unescape(text).split())[:limit]


# -- registration and tokens ---------------------------------------------------------------
def register(http: Http, endpoint: str, kind: str, *, redirect_uris=None, scope=None, grant_types=None,
             client_name=None, alg: str = "ES384", jwk: dict | None = None, **metadata) -> Client:
    method = KINDS.get(kind)
    if method is None:
        raise ValueError(f"kind {kind!r}: use 'public', 'secret', 'secret_post' or 'private_key_jwt'")
    if grant_types is None:
        grant_types = ["authorization_code", "refresh_token"] + ([] if method == "none" else ["client_credentials"])
    if redirect_uris is None:
        redirect_uris = [DEFAULT_REDIRECT_URI] if "authorization_code" in grant_types else []
    body = {"client_name": client_name or f"mockehr python {kind} client", "token_endpoint_auth_method": method,
            "grant_types": list(grant_types), "redirect_uris": list(redirect_uris), **metadata}
    if scope:
        body["scope"] = scope
    private = None
    if method == "private_key_jwt" and "jwks" not in metadata and "jwks_uri" not in metadata:
        private = jwk or new_key(alg)
        body["jwks"] = Client("", private_jwk=private).jwks
    answer = http.post_json(endpoint, body)
    if answer.status != 201:
        raise _oauth_error("registration", answer)
    registered = answer.json()
    return Client(registered["client_id"], method, registered.get("client_secret"),
                  list(registered.get("redirect_uris", [])), registered.get("scope"),
                  list(registered.get("grant_types", [])), private, registered)


def client_auth(client: Client, token_endpoint: str, now: float) -> tuple[dict, dict]:
    """(form fields, headers) that authenticate this client at the token endpoint."""
    method = client.token_endpoint_auth_method
    if method == "client_secret_basic":
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret or '', safe='')}"
        return {}, {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    if method == "client_secret_post":
        return {"client_id": client.client_id, "client_secret": client.client_secret}, {}
    if method == "private_key_jwt":
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": client.assertion(token_endpoint, now)}, {}
    return {"client_id": client.client_id}, {}


def token_request(http: Http, endpoint: str, client: Client, fields: dict, now: float) -> TokenResponse:
    extra, headers = client_auth(client, endpoint, now)
    answer = http.post_form(endpoint, {**fields, **extra}, headers)
    if answer.status != 200:
        raise _oauth_error("token", answer)
    return TokenResponse(answer.json())


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# -- authorize -------------------------------------------------------------------------------
@dataclass
class Choices:
    """What the helper answers on the login and picker pages (None: what auto-approve would pick)."""

    user: str | None
    patient: str | None
    encounter: str | None
    directory: object  # mockehr.auth.authorize.Directory


def authorize_code(http: Http, endpoint: str, params: dict, choices: Choices) -> dict:
    """GET the authorize endpoint, complete any pages, answer the redirect's query parameters."""
    answer = http.get(f"{endpoint}?{urlencode(params)}")
    location = _redirect_target(http, answer, "authorize")
    location = _complete_pages(http, location, choices)
    query = dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
    if "error" in query:
        raise FlowError("authorize", query["error"], query.get("error_description", ""), None, query)
    if "code" not in query:
        raise FlowError("authorize", "no_code", f"the authorize flow ended at {location} without a code")
    if query.get("state") != params.get("state"):
        raise FlowError("authorize", "state_mismatch", f"state {query.get('state')!r} is not {params.get('state')!r}")
    return query


def _redirect_target(http: Http, answer: Answer, step: str) -> str:
    if answer.status not in (301, 302, 303, 307):
        if "json" in (answer.header("Content-Type") or ""):
            raise _oauth_error(step, answer)
        raise FlowError(step, "refused", _page_text(answer.body), answer.status)
    location = answer.header("Location") or ""
    return http.root + location if location.startswith("/") else location


def _complete_pages(http: Http, location: str, choices: Choices) -> str:
    """Walk the login/picker/consent pages until the server redirects to the app."""
    cookies: dict[str, str] = {}
    for _ in range(16):
        if not (http.owns(location) and urlsplit(location).path in PAGE_PATHS):
            return location
        answer = http.get(location, _cookie_header(cookies))
        _keep_cookies(answer, cookies)
        if answer.status in (301, 302, 303, 307):
            location = _redirect_target(http, answer, "pages")
            continue
        if answer.status != 200:
            raise FlowError("pages", "refused", _page_text(answer.body), answer.status)
        path = urlsplit(location).path
        form = _Form.parse(answer.body)
        fields = [("csrf_token", form.value("csrf_token")), ("request", form.value("request"))]
        fields += _choice(path, form, choices)
        answer = http.post_form(location.split("?")[0], fields, _cookie_header(cookies))
        _keep_cookies(answer, cookies)
        location = _redirect_target(http, answer, "pages")
    raise FlowError("pages", "loop", f"the sign-in pages did not end (last at {location})")


def _choice(path: str, form: "_Form", choices: Choices) -> list[tuple[str, str]]:
    directory = choices.directory
    if path == "/auth/login":
        user = choices.user or f"Practitioner/{directory.default_practitioner()}"
        return [("user", user)]
    if path == "/auth/second-factor":  # step-up: the demo one-time code the page shows
        from mockehr.auth.stepup import DEMO_CODE

        return [("otp", DEMO_CODE)]
    if path == "/auth/pick-patient":
        return [("patient", choices.patient or directory.first_patient())]
    if path == "/auth/pick-encounter":  # the page lists the newest first, auto-approve's pick
        return [("encounter", choices.encounter or next((e for e in form.values("encounter") if e), ""))]
    # consent: allow what the page offers ticked, as a user clicking "Allow access" would
    return [("decision", "approve")] + [("scope", value) for value in form.checked("scope")]


def _cookie_header(cookies: dict) -> dict:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}


def _keep_cookies(answer: Answer, cookies: dict) -> None:
    for header in answer.all("Set-Cookie"):
        name, _, value = header.split(";", 1)[0].partition("=")
        cookies[name.strip()] = value.strip()


class _Form(HTMLParser):
    """The <input>s and <button>s of a page (enough for mockehr's own forms)."""

    def __init__(self):
        super().__init__()
        self.fields: list[dict] = []

    @classmethod
    def parse(cls, html: bytes) -> "_Form":
        form = cls()
        form.feed(html.decode("utf-8", "replace"))
        return form

    def handle_starttag(self, tag, attrs):
        if tag in ("input", "button"):
            self.fields.append(dict(attrs))

    def value(self, name: str) -> str:
        return next((f.get("value") or "" for f in self.fields if f.get("name") == name), "")

    def values(self, name: str) -> list[str]:
        return [f.get("value") or "" for f in self.fields if f.get("name") == name]

    def checked(self, name: str) -> list[str]:
        return [f.get("value") or "" for f in self.fields
                if f.get("name") == name and "checked" in f and "disabled" not in f]
