"""MockEHR: mockehr inside a Python test suite.

    from mockehr import MockEHR

    with MockEHR(auto_approve=True) as ehr:
        client = ehr.register_client()
        token = ehr.authorize(client, patient="p00001-diabetes-htn")
        ...

The real WSGI app runs in a thread on a free port (every `mockehr serve` option is a keyword);
the helpers act in-process where that is what a control-API call would do (launches, faults,
keys, reset, audit, direct tokens) and over HTTP where an app would be talking (registration,
authorize + token with PKCE, client_credentials). `app()` gives the Flask app for tests that
need no socket; the helpers then run through the Flask test client.
"""

from __future__ import annotations

import dataclasses
import difflib
import secrets
import threading
from pathlib import Path
from typing import Iterable

from mockehr.api_flows import (AppTransport, Choices, Client, FlowError, Http, Launch, SocketTransport,
                               TokenResponse, authorize_code, pkce, register, token_request)
from mockehr.api_state import Clock, Faults, Requests, SeenRequest
from mockehr.config import Settings

__all__ = ["MockEHR", "Client", "Clock", "FlowError", "Launch", "SeenRequest", "TokenResponse"]

_OPTIONS = {f.name for f in dataclasses.fields(Settings)} - {"extra"}
_ALIASES = {"dataset": "dataset_dir"}  # the CLI's --dataset


def settings_for(options: dict) -> Settings:
    """Settings from MockEHR keywords (the `serve` options); TypeError names an unknown one."""
    values = {"port": 0}
    for name, value in options.items():
        field = _ALIASES.get(name, name)
        if field not in _OPTIONS:
            close = difflib.get_close_matches(field, sorted(_OPTIONS | set(_ALIASES)), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"MockEHR() got an unknown option {name!r}{hint}; options: {', '.join(sorted(_OPTIONS))}")
        values[field] = value
    if isinstance(values.get("faults"), str):
        values["faults"] = (values["faults"],)
    values["faults"] = tuple(values.get("faults") or ())
    for name in ("data_dir", "dataset_dir"):
        if values.get(name) is not None:
            values[name] = Path(values[name])
    _check_faults(values["faults"])
    return Settings(**values)


def _check_faults(specs: Iterable[str]) -> None:
    from mockehr.faults import parse_fault

    for spec in specs:
        parse_fault(spec)  # FaultSpecError names the problem before anything starts


class MockEHR:
    """A mockehr server for a test suite. Keywords are the `mockehr serve` options: host, port (0: a free
    one, the default), data_dir, dataset (dataset_dir), patients, seed, time_shift, public_url,
    auto_approve, strict, access_token_lifetime, admin_token, faults (specs), fault_seed, ...
    The environment (MOCKEHR_*) is not read: a test gets exactly what it asks for."""

    def __init__(self, **options):
        self.settings = settings_for(options)
        self.clock = Clock()
        self.faults = Faults(self)
        self.requests = Requests(self)
        self._app = None
        self._server = None
        self._http: Http | None = None
        self._discovery: dict | None = None
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------
    def app(self):
        """The Flask app (built on first use; the one the server runs once started)."""
        with self._lock:
            if self._app is None:
                from mockehr.app import create_app
                self._app = create_app(self.settings, clock=self.clock)
            return self._app

    def test_client(self):
        """Flask's test client on the app: requests without a socket."""
        return self.app().test_client()

    def start(self) -> "MockEHR":
        if self._server is None:
            from mockehr.server import ServerThread
            self._server = ServerThread(self.settings, app=self.app()).start()
            host = self._server.local_url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
            self._http = Http(SocketTransport(host, self._server.port), self.url)
            self._discovery = None  # its URLs name the server's root
        return self

    def stop(self) -> None:
        """Stop serving (the app and its state stay: start() serves them again)."""
        if self._server is not None:
            self._http.transport.close()
            self._server.stop()
            self._server = self._http = self._discovery = None

    def __enter__(self) -> "MockEHR":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """The root URL, e.g. http://127.0.0.1:PORT (public_url when given)."""
        if self._server is None:
            raise RuntimeError("MockEHR is not started: call start() or use `with MockEHR(...) as ehr:`")
        return self._server.url

    @property
    def port(self) -> int:
        self.url  # noqa: B018 - raises when not started
        return self._server.port

    @property
    def fhir_base(self) -> str:
        return f"{self.url}/fhir"

    @property
    def smart_configuration_url(self) -> str:
        return f"{self.fhir_base}/.well-known/smart-configuration"

    @property
    def smart_configuration(self) -> dict:
        """The discovery document (fetched once over HTTP)."""
        if self._discovery is None:
            http = self._client_http()
            answer = http.get(f"{http.root}/fhir/.well-known/smart-configuration")
            self._discovery = answer.json()
        return self._discovery

    def _client_http(self) -> Http:
        if self._http is not None:
            return self._http
        return Http(AppTransport(self.app()), "http://localhost")  # no socket: the test client's root

    def _endpoint(self, name: str) -> str:
        return self.smart_configuration[name]

    def _context(self):
        """A request context on the app, so the server's code sees its own root URL."""
        base = self.url if self._server is not None else "http://localhost"
        return self.app().test_request_context("/", base_url=base)

    # -- state ----------------------------------------------------------------------------
    def reset(self, faults: Iterable[str] | None = None) -> None:
        """Back to the start: data, clients, launches, tokens, audit trail, requests, clock, and
        faults (the start's faults are put back). faults: make these the start's faults from now on."""
        from mockehr.admin import reset_state

        if faults is not None:
            faults = (faults,) if isinstance(faults, str) else tuple(faults)
            _check_faults(faults)
            self.settings.faults = faults
        self.clock.reset()
        reset_state(self.app())
        self.requests._reset()

    def audit(self, type: str | None = None, since: int = 0) -> list[dict]:  # noqa: A002 (the event field)
        """The audit events, oldest first; `type` ("token", "authorize", "fault", "fhir", ...) filters."""
        events = self.app().extensions["mockehr.audit"].events(since)
        return [dict(e) for e in events if type is None or e["type"] == type]

    def rotate_keys(self, keep_old: bool = False) -> str:
        """New signing keys; answers the new RSA key's kid. Without keep_old, tokens signed with the
        old keys stop working (and the JWKS no longer lists them)."""
        auth = self.app().extensions["mockehr.auth"]
        kid = auth.keys.rotate(keep_old=keep_old)
        auth.audit.record("keys", kid=kid, keep_old=keep_old)
        return kid

    # -- launches and tokens ----------------------------------------------------------------
    def launch(self, patient: str | None = None, user: str | None = None, encounter: str | None = None,
               app_url: str | None = None, **context) -> Launch:
        """An EHR launch, as POST /admin/launches makes it (context: need_patient_banner,
        smart_style_url, intent, fhirContext, sim_error). ValueError names a bad field."""
        from mockehr.admin import AdminError, mint_launch

        body = {"patient": patient, "user": user, "encounter": encounter, "app_url": app_url, **context}
        with self._context():
            try:
                answer = mint_launch({k: v for k, v in body.items() if v is not None})
            except AdminError as exc:
                raise ValueError(exc.message) from None
        return Launch(answer["launch"], answer["iss"], answer.get("launch_url"))

    def issue_token(self, scope: str | None = None, *, patient: str | None = None, user: str | None = None,
                    encounter: str | None = None, client_id: str = "mockehr-python") -> TokenResponse:
        """A token minted without a flow (as POST /admin/tokens), by the token endpoint's own code.
        scope defaults to patient/*.rs with a patient, user/*.rs with a user, else system/*.rs."""
        from mockehr.admin import AdminError, _token_fields

        scope = scope or ("patient/*.rs" if patient else "user/*.rs" if user else "system/*.rs")
        auth = self.app().extensions["mockehr.auth"]
        body = {"scope": scope, "patient": patient, "user": user, "encounter": encounter, "client_id": client_id}
        with self._context():
            try:
                fields = _token_fields({k: v for k, v in body.items() if v is not None}, auth.directory.exists)
                return TokenResponse(auth.mint_direct(**fields))
            except AdminError as exc:
                raise ValueError(exc.message) from None

    def register_client(self, kind: str = "public", *, redirect_uris: list | None = None, scope: str | None = None,
                        grant_types: list | None = None, client_name: str | None = None, alg: str = "ES384",
                        jwk: dict | None = None, **metadata) -> Client:
        """RFC 7591 registration at the registration endpoint. kind: "public", "secret"
        (client_secret_basic), "secret_post" or "private_key_jwt" (a key is generated: alg ES384 or
        RS384, or pass your private `jwk`). Defaults: redirect_uris [http://localhost/callback], every
        grant the kind may use. Other keywords are sent as metadata (e.g. require_pkce=True)."""
        return register(self._client_http(), self._endpoint("registration_endpoint"), kind,
                        redirect_uris=redirect_uris, scope=scope, grant_types=grant_types,
                        client_name=client_name, alg=alg, jwk=jwk, **metadata)

    def authorize(self, client: Client | str, scope: str | None = None, *, patient: str | None = None,
                  user: str | None = None, encounter: str | None = None, launch: Launch | str | None = None,
                  redirect_uri: str | None = None, state: str | None = None, nonce: str | None = None,
                  **params) -> TokenResponse:
        """The code flow over HTTP: authorize (PKCE S256) then the token exchange; answers the token
        response. FlowError when the server refuses a step (e.g. a deny fault: error access_denied).

        client: a registered Client, or a client_id (registered on the spot as a public client
        unless the server is strict). user: "Practitioner/ID" or "Patient/ID" (sent as login_hint).
        patient/encounter without a launch: the helper makes an EHR launch for them (no standalone
        request can name a patient), so the token carries that context. scope defaults to
        "launch openid fhirUser offline_access patient/*.rs" ("launch/patient ..." without a launch).
        On a server without auto_approve, the login/picker/consent pages are completed as a
        browser would: the user, patient and encounter given, else auto-approve's picks, and every
        scope the consent page offers ticked."""
        http = self._client_http()
        if isinstance(client, str):
            client = Client(client, redirect_uris=[redirect_uri or "http://localhost/callback"])
        redirect_uri = redirect_uri or (client.redirect_uris[0] if client.redirect_uris else None)
        if redirect_uri is None:
            raise ValueError(f"client {client.client_id} has no redirect_uris: pass redirect_uri=")
        launch_id = launch.launch if isinstance(launch, Launch) else launch
        if launch_id is not None and (patient or encounter):
            raise ValueError("a launch fixes the patient and encounter: pass them to launch(), not authorize()")
        if launch_id is None and (encounter or (patient and user != f"Patient/{patient}")):
            launch_id = self.launch(patient=patient, user=user, encounter=encounter).launch
        if scope is None:
            scope = ("launch" if launch_id else "launch/patient") + " openid fhirUser offline_access patient/*.rs"
        verifier, challenge = pkce()
        query = {"response_type": "code", "client_id": client.client_id, "redirect_uri": redirect_uri,
                 "scope": scope, "state": state or secrets.token_urlsafe(12), "aud": self.fhir_base if self.running
                 else f"{http.root}/fhir", "code_challenge": challenge, "code_challenge_method": "S256",
                 "launch": launch_id, "login_hint": user, "nonce": nonce, **params}
        query = {k: v for k, v in query.items() if v is not None}
        directory = self.app().extensions["mockehr.auth"].directory
        answer = authorize_code(http, self._endpoint("authorization_endpoint"), query,
                                Choices(user, patient, encounter, directory))
        fields = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": redirect_uri,
                  "code_verifier": verifier}
        return token_request(http, self._endpoint("token_endpoint"), client, fields, self.clock())

    def refresh(self, client: Client | str, refresh_token: str, scope: str | None = None) -> TokenResponse:
        """The refresh grant (the server rotates the refresh token: use the new one next time)."""
        client = Client(client) if isinstance(client, str) else client
        fields = {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": scope}
        return token_request(self._client_http(), self._endpoint("token_endpoint"), client,
                             {k: v for k, v in fields.items() if v}, self.clock())

    def backend_token(self, client: Client, scope: str = "system/*.rs") -> TokenResponse:
        """client_credentials (SMART Backend Services): a private_key_jwt client signs an assertion
        (its iat/exp from the server's clock), a secret client sends its secret."""
        if client.token_endpoint_auth_method == "none":
            raise ValueError("a public client cannot use client_credentials: register kind='private_key_jwt'")
        return token_request(self._client_http(), self._endpoint("token_endpoint"), client,
                             {"grant_type": "client_credentials", "scope": scope}, self.clock())

    def __repr__(self) -> str:
        where = self._server.url if self._server is not None else "not started"
        return f"<MockEHR {where}>"
