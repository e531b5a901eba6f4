"""Real mockehr servers on 127.0.0.1 and a small SMART client that checks everything it is given.

The integration tests in tests/auth/test_flow_*.py drive the authorization
server only through HTTP, as an app would: discovery, registration, the
authorize redirect, the token endpoint, then FHIR calls with the token. Every
token the client receives is verified with PyJWT against the published JWKS
(`Ehr.check_token_response`), so a test that merely obtains a token also
checks its signature, header and claims.

Servers are module-scoped: each test module gets its own (auto-approve; a
strict one and a short-token one where a module asks for them), so state
never leaks between modules and the suite stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import jwt
import orjson
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mockehr.config import Settings
from mockehr.server import ServerThread

OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
VITALS = f"{OBS_CAT}|vital-signs"
LOINC = "http://loinc.org"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT = "http://app.example/callback"
ACCESS_TOKEN_ALGS = ["RS256", "RS384", "ES384"]


# -- the dataset: small and exact, so every assertion can name ids ----------------

def _meta() -> dict:
    return {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"}


def _obs(rid: str, patient: str, category: str, code: str, display: str, value: float, unit: str) -> dict:
    return {"resourceType": "Observation", "id": rid, "meta": _meta(), "status": "final",
            "category": [{"coding": [{"system": OBS_CAT, "code": category}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2023-05-01T10:00:00Z",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def _patient(rid: str, family: str, given: str, email: str | None = None) -> dict:
    patient = {"resourceType": "Patient", "id": rid, "meta": _meta(), "active": True,
               "name": [{"use": "official", "family": family, "given": [given]}], "gender": "female",
               "birthDate": "1980-01-01"}
    if email:
        patient["telecom"] = [{"system": "email", "value": email}]
    return patient


def _encounter(rid: str, patient: str, start: str) -> dict:
    return {"resourceType": "Encounter", "id": rid, "meta": _meta(), "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"}, "period": {"start": start, "end": start}}


RESOURCES = [
    _patient("pat-a", "Alpha", "Ada", "ada@example.org"),
    _patient("pat-b", "Beta", "Bea"),
    _patient("pat-c", "Gamma", "Cy"),
    {"resourceType": "Practitioner", "id": "prac-1", "meta": _meta(),
     "name": [{"use": "official", "family": "House", "given": ["Greg"]}],
     "telecom": [{"system": "email", "value": "house@example.org"}]},
    {"resourceType": "Practitioner", "id": "prac-2", "meta": _meta(), "name": [{"family": "Wilson"}]},
    _encounter("enc-a1", "pat-a", "2023-01-01T10:00:00Z"),
    _encounter("enc-a2", "pat-a", "2024-02-01T10:00:00Z"),
    _encounter("enc-b1", "pat-b", "2023-06-01T10:00:00Z"),
    _obs("obs-a-vital", "pat-a", "vital-signs", "8867-4", "Heart rate", 72, "/min"),
    _obs("obs-a-lab", "pat-a", "laboratory", "2339-0", "Glucose", 5.4, "mmol/L"),
    _obs("obs-b-vital", "pat-b", "vital-signs", "8867-4", "Heart rate", 80, "/min"),
    _obs("obs-b-lab", "pat-b", "laboratory", "2339-0", "Glucose", 6.1, "mmol/L"),
]
PATIENTS = ["pat-a", "pat-b", "pat-c"]


def new_observation(patient: str, category: str = "vital-signs") -> dict:
    """A valid Observation to create (no id)."""
    body = _obs("x", patient, category, "8867-4", "Heart rate", 70, "/min")
    del body["id"], body["meta"]
    return body


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("auth-dataset")
    by_type: dict[str, list[bytes]] = {}
    for resource in RESOURCES:
        by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for rtype, lines in by_type.items():
        (directory / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return directory


# -- PKCE, keys, assertions ----------------------------------------------------------

def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters of the unreserved set


@dataclass
class ClientKey:
    """A client's key pair, generated here; `jwk` is the public half to register."""

    alg: str
    private: object
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def jwk(self) -> dict:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg.startswith("RS") else jwt.algorithms.ECAlgorithm
        public = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}


def rsa_key(alg: str = "RS384") -> ClientKey:
    return ClientKey(alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(alg: str = "ES384") -> ClientKey:
    return ClientKey(alg, ec.generate_private_key(ec.SECP384R1() if alg == "ES384" else ec.SECP256R1()))


@pytest.fixture(scope="session")
def rs384() -> ClientKey:
    return rsa_key("RS384")


@pytest.fixture(scope="session")
def es384() -> ClientKey:
    return ec_key("ES384")


def client_assertion(client_id: str, key: ClientKey, audience: str, *, headers: dict | None = None,
                     **claims) -> str:
    """A SMART client assertion (RFC 7523); keyword arguments override or (as None) drop claims."""
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 240, "iat": now,
            "jti": uuid.uuid4().hex}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})})


# -- HTTP results --------------------------------------------------------------------------

@dataclass
class Redirect:
    """Where the authorize endpoint sent the browser."""

    location: str
    base: str  # scheme://host/path of the location
    params: dict  # query parameters, decoded (single values)
    pairs: list  # every (name, value) pair, in order

    @property
    def code(self) -> str:
        assert "code" in self.params, f"no code in the redirect: {self.params}"
        return self.params["code"]


@dataclass
class Flow:
    """One finished code flow: the token response (already verified) and what the client sent."""

    client_id: str
    response: requests.Response
    body: dict
    verifier: str | None
    nonce: str | None
    access_claims: dict
    id_claims: dict | None

    @property
    def access_token(self) -> str:
        return self.body["access_token"]

    @property
    def refresh_token(self) -> str | None:
        return self.body.get("refresh_token")


# -- the server and the client --------------------------------------------------------------

class Ehr:
    """A running mockehr and a SMART client for it."""

    def __init__(self, server: ServerThread, leeway: float = 0):
        self.server = server
        self.leeway = leeway  # seconds of grace when checking exp (tokens that live one second)
        self.url = server.url
        self.fhir_base = server.fhir_base
        self.http = requests.Session()
        self._smart: dict | None = None
        self._jwks: jwt.PyJWKClient | None = None

    # -- discovery --------------------------------------------------------------------
    @property
    def smart(self) -> dict:
        if self._smart is None:
            answer = self.http.get(f"{self.fhir_base}/.well-known/smart-configuration", timeout=30)
            assert answer.status_code == 200, answer.text
            self._smart = answer.json()
        return self._smart

    @property
    def issuer(self) -> str:
        return self.smart["issuer"]

    @property
    def token_endpoint(self) -> str:
        return self.smart["token_endpoint"]

    @property
    def jwks_client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(self.smart["jwks_uri"], cache_keys=True)
        return self._jwks

    @property
    def state(self):
        """The auth server's memory (white-box, for what HTTP cannot do: expire a launch)."""
        return self.server.app.extensions["mockehr.auth"].state

    # -- registration ------------------------------------------------------------------
    def register(self, **metadata) -> dict:
        answer = self.http.post(self.smart["registration_endpoint"], json=metadata, timeout=30)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def public_client(self, redirect_uri: str = REDIRECT, **extra) -> dict:
        return self.register(client_name="public test app", redirect_uris=[redirect_uri],
                             token_endpoint_auth_method="none",
                             grant_types=["authorization_code", "refresh_token"], **extra)

    def secret_client(self, method: str = "client_secret_basic", redirect_uri: str = REDIRECT, **extra) -> dict:
        return self.register(client_name=f"{method} app", redirect_uris=[redirect_uri],
                             token_endpoint_auth_method=method,
                             grant_types=["authorization_code", "refresh_token"], **extra)

    def backend_client(self, *keys: ClientKey, **extra) -> dict:
        return self.register(client_name="backend service", grant_types=["client_credentials"],
                             token_endpoint_auth_method="private_key_jwt",
                             jwks={"keys": [k.jwk for k in keys]}, **extra)

    # -- launches --------------------------------------------------------------------
    def launch(self, **body) -> dict:
        answer = self.http.post(f"{self.url}/admin/launches", json=body, timeout=30)
        assert answer.status_code == 201, answer.text
        return answer.json()

    # -- authorize -------------------------------------------------------------------
    def authorize_raw(self, params: dict, method: str = "GET") -> requests.Response:
        endpoint = self.smart["authorization_endpoint"]
        if method == "GET":
            return self.http.get(endpoint, params=params, allow_redirects=False, timeout=30)
        return self.http.post(endpoint, data=params, allow_redirects=False, timeout=30)

    def authorize(self, client_id: str, scope: str, *, redirect_uri: str = REDIRECT, verifier: str | None = "new",
                  state: str | None = "st-1", method: str = "GET", **extra) -> Redirect:
        """GET (or POST) the authorize endpoint; asserts a 302 to the redirect_uri and parses it."""
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
                  "aud": self.fhir_base}
        if state is not None:
            params["state"] = state
        if verifier:
            params.update(code_challenge=s256(verifier), code_challenge_method="S256")
        params.update(extra)
        params = {k: v for k, v in params.items() if v is not None}
        answer = self.authorize_raw(params, method)
        assert answer.status_code == 302, f"{answer.status_code}: {answer.text[:500]}"
        location = answer.headers["Location"]
        parts = urlsplit(location)
        base = f"{parts.scheme}://{parts.netloc}{parts.path}"
        assert base == redirect_uri.split("?")[0], location
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        return Redirect(location, base, dict(pairs), pairs)

    def authorize_error(self, client_id: str, scope: str, **kwargs) -> dict:
        """An authorize request that must come back as an error redirect; answers its parameters."""
        redirect = self.authorize(client_id, scope, **kwargs)
        assert "code" not in redirect.params, redirect.location
        assert "error" in redirect.params, redirect.location
        assert redirect.params["iss"] == self.issuer
        return redirect.params

    # -- token -------------------------------------------------------------------------
    def token(self, data: dict, auth=None, headers: dict | None = None) -> requests.Response:
        """POST the token endpoint. Every answer, success or error, must forbid caching."""
        answer = self.http.post(self.token_endpoint, data=data, auth=auth, headers=headers, timeout=30)
        assert "no-store" in answer.headers.get("Cache-Control", ""), answer.headers
        assert "no-cache" in answer.headers.get("Pragma", ""), answer.headers
        assert answer.headers["Content-Type"].startswith("application/json")
        return answer

    def race_token_requests(self, data: dict, racers: int = 6) -> list[requests.Response]:
        """The same token request sent by several threads at once (one session each)."""
        barrier = threading.Barrier(racers)
        answers: list[requests.Response] = []

        def send():
            with requests.Session() as session:
                barrier.wait()
                answers.append(session.post(self.token_endpoint, data=data, timeout=30))

        threads = [threading.Thread(target=send) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    def token_error(self, data: dict, error: str, status: int = 400, auth=None) -> dict:
        answer = self.token(data, auth=auth)
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["error"] == error, body
        assert isinstance(body.get("error_description", ""), str)
        assert "access_token" not in body
        return body

    def exchange(self, client_id: str, code: str, verifier: str | None, *, redirect_uri: str = REDIRECT,
                 auth=None, extra: dict | None = None) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if auth is None and "client_assertion" not in (extra or {}):
            data["client_id"] = client_id
        if verifier:
            data["code_verifier"] = verifier
        data.update(extra or {})
        return self.token({k: v for k, v in data.items() if v is not None}, auth=auth)

    def check_token_response(self, answer: requests.Response, client_id: str, *, nonce: str | None = None,
                             id_token_expected: bool | None = None) -> tuple[dict, dict, dict | None]:
        """(body, access claims, id claims): the checks Inferno makes, plus full JWT verification."""
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert isinstance(body["access_token"], str) and body["access_token"]
        assert body["token_type"] == "Bearer"
        assert type(body["expires_in"]) is int and body["expires_in"] > 0
        assert isinstance(body["scope"], str) and body["scope"].strip(), body
        assert body["scope"] == " ".join(body["scope"].split())  # one space-separated string
        if "refresh_token" in body:
            assert isinstance(body["refresh_token"], str) and body["refresh_token"]
        access = self.verify_access_token(body["access_token"])
        assert access["client_id"] == client_id
        assert access["scope"] == body["scope"]
        assert access["exp"] - access["iat"] == body["expires_in"]
        for name in ("patient", "encounter"):
            assert access.get(name) == body.get(name), name
        id_claims = None
        if id_token_expected is not None:
            assert ("id_token" in body) == id_token_expected, body
        if "id_token" in body:
            id_claims = self.verify_id_token(body["id_token"], client_id, nonce=nonce,
                                             access_token=body["access_token"])
        return body, access, id_claims

    def verify_access_token(self, token: str) -> dict:
        header = jwt.get_unverified_header(token)
        assert header.get("typ") == "at+jwt", header
        assert header.get("kid"), header
        key = self.jwks_client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=ACCESS_TOKEN_ALGS, audience=self.fhir_base,
                            issuer=self.issuer, leeway=self.leeway,
                            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
        assert claims["aud"] == self.fhir_base
        assert claims["iat"] <= time.time() + 5 and time.time() < claims["exp"] + self.leeway
        return claims

    def verify_id_token(self, token: str, client_id: str, *, nonce: str | None = None,
                        access_token: str | None = None) -> dict:
        header = jwt.get_unverified_header(token)
        assert header.get("kid") and header.get("alg") == "RS256", header  # OIDC/SMART: RS256 always works
        assert header.get("typ") != "at+jwt"
        key = self.jwks_client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=client_id, issuer=self.issuer,
                            leeway=self.leeway, options={"require": ["iss", "sub", "aud", "exp", "iat"]})
        assert claims["aud"] == client_id
        assert isinstance(claims["sub"], str) and claims["sub"]
        assert isinstance(claims.get("auth_time"), int) and claims["auth_time"] <= claims["iat"] + 1
        if nonce is not None:
            assert claims.get("nonce") == nonce
        else:
            assert "nonce" not in claims
        if "fhirUser" in claims:
            fhir_user = claims["fhirUser"]
            assert fhir_user.startswith(self.fhir_base + "/"), fhir_user  # absolute URL
            rtype, rid = fhir_user[len(self.fhir_base) + 1:].split("/")
            assert rtype in ("Patient", "Practitioner", "RelatedPerson", "Person")
            if access_token:
                read = self.fhir("GET", fhir_user, access_token)
                assert read.status_code == 200, read.text
                assert read.json()["resourceType"] == rtype and read.json()["id"] == rid
        return claims

    def code_flow(self, client_id: str, scope: str, *, auth=None, nonce: str | None = None, pkce: bool = True,
                  redirect_uri: str = REDIRECT, id_token_expected: bool | None = None,
                  token_extra: dict | None = None, **authorize_extra) -> Flow:
        """authorize -> code -> token, with every check; answers the verified result."""
        verifier = new_verifier() if pkce else None
        redirect = self.authorize(client_id, scope, redirect_uri=redirect_uri, verifier=verifier, nonce=nonce,
                                  **authorize_extra)
        assert redirect.params.get("iss") == self.issuer
        answer = self.exchange(client_id, redirect.code, verifier, redirect_uri=redirect_uri, auth=auth,
                               extra=token_extra)
        body, access, id_claims = self.check_token_response(answer, client_id, nonce=nonce,
                                                            id_token_expected=id_token_expected)
        return Flow(client_id, answer, body, verifier, nonce, access, id_claims)

    def refresh(self, client_id: str, refresh_token: str, *, auth=None, **extra) -> requests.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        if auth is None:
            data["client_id"] = client_id
        return self.token(data, auth=auth)

    def client_credentials(self, client_id: str, key: ClientKey, scope: str = "system/*.rs", **claims):
        data = {"grant_type": "client_credentials", "scope": scope, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(client_id, key, self.token_endpoint, **claims)}
        return self.token(data)

    # -- after the token -----------------------------------------------------------
    def fhir(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else f"{self.fhir_base}/{path.lstrip('/')}"
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, url, headers=headers, timeout=30, **kwargs)

    def search_ids(self, path: str, token: str, **params) -> list[str]:
        answer = self.fhir("GET", path, token, params=params or None)
        assert answer.status_code == 200, answer.text
        bundle = answer.json()
        return sorted(e["resource"]["id"] for e in bundle.get("entry", [])
                      if e.get("search", {}).get("mode", "match") == "match")

    def introspect(self, token: str, *, auth=None, data: dict | None = None,
                   headers: dict | None = None) -> requests.Response:
        return self.http.post(self.smart["introspection_endpoint"], data={"token": token, **(data or {})},
                              auth=auth, headers=headers, timeout=30)

    def revoke(self, token: str, *, auth=None, data: dict | None = None) -> requests.Response:
        return self.http.post(self.smart["revocation_endpoint"], data={"token": token, **(data or {})}, auth=auth,
                              timeout=30)

    def audit(self) -> list[dict]:
        answer = self.http.get(f"{self.url}/admin/audit", timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def system_token(self, key: ClientKey, scope: str = "system/*.rs") -> str:
        client = self.backend_client(key)
        answer = self.client_credentials(client["client_id"], key, scope)
        body, _, _ = self.check_token_response(answer, client["client_id"], id_token_expected=False)
        return body["access_token"]


def start(dataset_dir: Path, **settings) -> ServerThread:
    return ServerThread(Settings(port=0, dataset_dir=dataset_dir, **settings)).start()


@pytest.fixture(scope="module")
def ehr(dataset_dir):
    """Auto-approve, permissive: unknown clients registered on the spot, PKCE optional."""
    server = start(dataset_dir, auto_approve=True)
    yield Ehr(server)
    server.stop()


@pytest.fixture(scope="module")
def strict_ehr(dataset_dir):
    server = start(dataset_dir, auto_approve=True, strict=True)
    yield Ehr(server)
    server.stop()


@pytest.fixture(scope="module")
def short_ehr(dataset_dir):
    """Access tokens live one second."""
    server = start(dataset_dir, auto_approve=True, access_token_lifetime=1)
    yield Ehr(server, leeway=2)
    server.stop()


def basic(client: dict) -> tuple[str, str]:
    return client["client_id"], client["client_secret"]


def bearer_error(answer: requests.Response, error: str = "invalid_token") -> str:
    """The WWW-Authenticate Bearer challenge of a 401/403 answer."""
    challenge = answer.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer "), answer.headers
    assert f'error="{error}"' in challenge, challenge
    return challenge


@pytest.fixture
def writes(ehr):
    """For tests that write FHIR data: the store goes back to the seed afterwards."""
    yield
    ehr.server.app.extensions["mockehr.store"].reset()


@pytest.fixture(scope="module")
def introspector(ehr) -> tuple[str, str]:
    """Basic credentials of a registered confidential client, to call introspection with."""
    client = ehr.register(client_name="resource server", grant_types=["client_credentials"],
                          token_endpoint_auth_method="client_secret_basic", scope="system/*.rs")
    return basic(client)


def introspection(ehr: Ehr, token: str, auth) -> dict:
    answer = ehr.introspect(token, auth=auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    return answer.json()
