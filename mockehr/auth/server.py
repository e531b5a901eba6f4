"""The token side on Authlib: grants, client authentication, token generation.

The authorization endpoint is ours (authorize.py): SMART launch context,
pickers, consent narrowing and permissive registration shape it more than
RFC 6749 does. Everything a client calls with credentials - the token
endpoint and its grants - runs through Authlib's AuthorizationServer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError, InvalidGrantError, InvalidRequestError, InvalidScopeError, OAuth2Error,
)
from flask import request as flask_request

from mockehr.auth import dpop_http
from mockehr.auth.assertion import authenticate_private_key_jwt
from mockehr.auth.model import AuthContext, CodeRecord, Grant, digest
from mockehr.auth.scopes import ScopeError, is_narrower_or_equal, parse_scopes, within_registration
from mockehr.auth.sim_errors import simulated
from mockehr.auth.state import AuthState
from mockehr.auth.tokens import Issuer, TokenService
from mockehr.faults import FaultBoard

_SIMULATED = {"invalid_client": InvalidClientError, "invalid_grant": InvalidGrantError,
              "invalid_scope": InvalidScopeError}
ALL_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
CONFIDENTIAL_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 4.1


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class SmartCodeGrant(grants.AuthorizationCodeGrant):
    """The token half of the code flow; codes are minted by authorize.py, never by Authlib."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    @property
    def auth(self) -> "SmartAuthorizationServer":
        return self.server

    def query_authorization_code(self, code: str, client) -> CodeRecord | None:
        record = self.auth.state.code(code)
        if record is None or record.client_id != client.client_id:
            return None
        if record.used:
            self._replay(record, client)
        return record

    def _replay(self, record: CodeRecord, client):
        """RFC 6749 4.1.2: a replayed code is refused and what it issued is revoked (or will be, if the first
        exchange is still running: authenticate_user looks at `replayed`)."""
        with self.auth.state.lock:
            record.replayed = True
            grant = self.auth.state.grants.get(record.grant_id or "")
        if grant:
            self.auth.state.revoke_grant(grant)
        self.auth.events.append(("code-replay", client.client_id))
        raise InvalidGrantError("this authorization code was already used; the tokens issued from it "
                                "are now revoked")

    def validate_token_request(self):
        super().validate_token_request()
        record: CodeRecord = self.request.authorization_code
        # DPoP (RFC 9449 5, 10): a proof the client or server requires, by the key the code is bound to
        dpop_http.check_token_request(self.request.client, bound_jkt=record.dpop_jkt, bound_to="authorization code")
        verifier = self.request.form.get("code_verifier")
        if record.challenge is None:
            if verifier:
                raise InvalidGrantError("code_verifier sent, but the authorization request had no code_challenge")
            return
        if not verifier:
            raise InvalidGrantError("code_verifier is missing; the authorization request used PKCE")
        if not _VERIFIER.fullmatch(verifier):
            raise InvalidGrantError("code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1)")
        if verifier == record.challenge:
            raise InvalidGrantError("code_verifier equals the code_challenge; send the verifier itself, "
                                    "not its hash")
        if not hmac.compare_digest(s256(verifier), record.challenge):
            raise InvalidGrantError("code_verifier does not match the code_challenge (S256)")
        self.auth.simulate(record.context.sim_error, "token")

    def create_token_response(self):
        # Claim the code atomically: two exchanges racing past query_authorization_code must not both win.
        record: CodeRecord = self.request.authorization_code
        with self.auth.state.lock:
            claimed = not record.used
            record.used = True
        if not claimed:
            self._replay(record, self.request.client)
        return super().create_token_response()

    def delete_authorization_code(self, record: CodeRecord) -> None:
        record.used = True  # kept, so that a replay can be recognised and punished

    def authenticate_user(self, record: CodeRecord) -> Grant:
        grant = self.auth.state.add_grant(record.client_id, record.scope, record.context)
        with self.auth.state.lock:
            record.grant_id = grant.grant_id
            replayed = record.replayed
        if replayed:  # replayed while this exchange ran: what it issues is dead on arrival
            self.auth.state.revoke_grant(grant)
        return grant


class SmartRefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def auth(self) -> "SmartAuthorizationServer":
        return self.server

    def _validate_request_token(self, client):
        token = self.request.form.get("refresh_token")
        if not token:
            raise InvalidRequestError("refresh_token is missing")
        grant, current = self.auth.state.grant_for_refresh(token)
        if grant is None:
            raise InvalidGrantError("refresh_token is not known to this server")
        if grant.client_id != client.client_id:
            raise InvalidGrantError("refresh_token was issued to another client")
        if grant.revoked:
            raise InvalidGrantError("refresh_token was revoked")
        if not current:
            self.auth.state.revoke_grant(grant)
            raise InvalidGrantError("refresh_token was already used and rotated; the whole grant is now revoked "
                                    "(refresh token reuse)")
        # DPoP (RFC 9449 5): a proof the client or server requires, by the key a public client's token is bound to
        dpop_http.check_token_request(client, bound_jkt=grant.dpop_jkt, bound_to="refresh token")
        firing = self.auth.faults.on_event("expire-refresh")
        if firing is not None:
            self.auth.fault_fired(firing)
            raise InvalidGrantError(f"refresh_token has expired (simulated by fault {firing.fault_id}: "
                                    f"{firing.spec.text})")
        self.auth.simulate(grant.context.sim_error, "token", "refresh")
        return grant

    def _validate_token_scope(self, grant: Grant):
        scope = self.request.payload.scope
        if not scope:
            return
        try:
            narrower = is_narrower_or_equal(parse_scopes(scope), parse_scopes(grant.scope))
        except ScopeError as exc:
            raise InvalidScopeError(str(exc)) from None
        if not narrower:
            raise InvalidScopeError(f"scope '{scope}' asks for more than the grant holds ('{grant.scope}')")

    def authenticate_user(self, grant: Grant) -> Grant:
        return grant

    def create_token_response(self):
        # Retire the presented refresh token atomically before minting its successor: refreshes racing with
        # one token must not all win. A loser finds it retired, which is reuse: the grant is revoked.
        grant: Grant = self.request.refresh_token
        presented = digest(self.request.form.get("refresh_token", ""))
        with self.auth.state.lock:
            claimed = grant.refresh_digest == presented and not grant.revoked
            if claimed:
                grant.retired_refresh.add(presented)
                grant.refresh_digest = None  # rotate_refresh_token sets the new one
        if not claimed:
            self.auth.state.revoke_grant(grant)
            raise InvalidGrantError("refresh_token was already used and rotated; the whole grant is now revoked "
                                    "(refresh token reuse)")
        return super().create_token_response()

    def revoke_old_credential(self, grant: Grant) -> None:
        pass  # the presented token was retired in create_token_response


class SmartClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    @property
    def auth(self) -> "SmartAuthorizationServer":
        return self.server

    def validate_token_request(self):
        super().validate_token_request()
        scope = self.request.payload.scope or ""
        try:
            scopes = parse_scopes(scope)
        except ScopeError as exc:
            raise InvalidScopeError(str(exc)) from None
        system = {s.text for s in scopes.resource if s.context == "system"}
        wrong = [token for token in scopes.text().split() if token not in system]  # incl. openid, launch, ...
        if not system or wrong:
            raise InvalidScopeError("backend services ask for system/ scopes only, e.g. system/*.rs"
                                    + (f"; not allowed here: {' '.join(wrong)}" if wrong else ""))
        self.auth.simulate(self.request.client.metadata.extra.get("sim_error"), "backend")
        self.granted_scope = self._within_registered_scope(scopes)
        dpop_http.check_token_request(self.request.client)  # a proof the client or server requires (RFC 9449 5)

    def _within_registered_scope(self, scopes) -> str:
        """A client registered with a `scope` gets at most that (the rest dropped; --strict refuses)."""
        client = self.request.client
        registered = getattr(client.metadata, "scope", None)
        if not registered:
            return scopes.text()
        kept, dropped = within_registration(scopes, parse_scopes(registered))
        if dropped and (self.auth.strict or not kept.text()):
            raise InvalidScopeError(f"scope {' '.join(dropped)} goes beyond what client '{client.client_id}' "
                                    f"registered ('{registered}')")
        return kept.text()

    def create_token_response(self):
        client = self.request.client
        context = AuthContext(sim_error=client.metadata.extra.get("sim_error"))
        grant = self.auth.state.add_grant(client.client_id, self.granted_scope, context)
        token = self.generate_token(user=grant, scope=self.granted_scope, include_refresh_token=False)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def _client_secret_basic(query_client, request):
    """Authlib's client_secret_basic, minus its 500 on Basic credentials that are not UTF-8."""
    try:
        return authenticate_client_secret_basic(query_client, request)
    except UnicodeDecodeError:
        return None  # not credentials of any client here: authentication fails as usual


class SmartAuthorizationServer(AuthorizationServer):
    def __init__(self, state: AuthState, tokens: TokenService, where, faults: FaultBoard,
                 fault_fired=lambda firing: None):
        super().__init__()
        self.state = state
        self.tokens = tokens
        self.where = where  # () -> Issuer for the current request
        self.faults = faults
        self.fault_fired = fault_fired  # audits a fault that fired here
        self.strict = False
        self.events: list = []
        self._query_client = state.clients.get
        self._save_token = lambda token, request: None
        self.register_token_generator("default", self._generate)
        self.register_client_auth_method("private_key_jwt", self._private_key_jwt)
        self.register_client_auth_method("client_secret_basic", _client_secret_basic)
        self.register_grant(SmartCodeGrant)
        self.register_grant(SmartRefreshGrant)
        self.register_grant(SmartClientCredentialsGrant)

    @staticmethod
    def simulate(name: str | None, *stages: str) -> None:
        """Raise the simulated error (launch or client sim_error) if it belongs to one of these stages."""
        sim = simulated(name, *stages)
        if sim is not None:
            raise _SIMULATED[sim.error](sim.description)

    def _private_key_jwt(self, query_client, request):
        where: Issuer = self.where()
        audience = where.token_endpoint
        if flask_request.path == "/auth/par":  # RFC 9126 2: the issuer, token endpoint or PAR endpoint
            audience = (where.token_endpoint, where.issuer, where.token_endpoint.rsplit("/", 1)[0] + "/par")
        return authenticate_private_key_jwt(self.state, query_client, request, audience)

    def _generate(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        grant: Grant = user
        return self.tokens.issue(self.where(), client, grant, scope or grant.scope,
                                 include_refresh=include_refresh_token and grant_type != "client_credentials",
                                 jkt=dpop_http.proof_jkt())  # DPoP-bound when the request carried a proof

    def handle_error_response(self, request, error: OAuth2Error):
        if isinstance(error, InvalidClientError):
            # RFC 6749 5.2: 401 (with a WWW-Authenticate challenge) when the client authenticated with the
            # Authorization header; otherwise 400, which Inferno's backend-services kit asserts for a bad
            # client_assertion_type (its other client-authentication checks accept 400 or 401).
            error.status_code = 401 if flask_request.headers.get("Authorization") else 400
        if not error.description and error.error == "unsupported_grant_type":  # every rejection says why
            grant = flask_request.form.get("grant_type")
            error.description = (f"grant_type {grant!r} is not supported here; use authorization_code, "
                                 "refresh_token or client_credentials" if grant else "grant_type is missing")
        return super().handle_error_response(request, error)

    def token_response(self):
        return self.create_token_response(flask_request)
