"""AuthService: the authorization server's parts wired together, per app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from flask import request

from mockehr.audit import AuditLog
from mockehr.auth import authorize, dpop_http
from mockehr.auth.backchannel import Notifier
from mockehr.auth.keys import KeyRing
from mockehr.auth.model import AuthContext, Client, redact
from mockehr.auth.registration import RegistrationError, validate_client_metadata
from mockehr.auth.server import CONFIDENTIAL_METHODS, SmartAuthorizationServer
from mockehr.auth.pairwise import Subjects, load_secret
from mockehr.auth.par import PushedRequests
from mockehr.auth.scopes import ScopeError, parse_scopes
from mockehr.auth.sessions import SessionStore
from mockehr.auth.state import AuthState
from mockehr.auth.tokens import AccessToken, InvalidToken, Issuer, TokenService, launch_context
from mockehr.faults import FaultBoard


class AuthService:
    def __init__(self, *, data_dir: Path | None, root_url: Callable[[], str], directory: authorize.Directory,
                 user_claims: Callable[[str], dict], audit: AuditLog, auto_approve: bool, strict: bool,
                 token_lifetime: int, clock, faults: FaultBoard | None = None):
        # A mock serves plain http on a LAN (workshops, containers): Authlib would refuse it with a 500.
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
        self.faults = faults or FaultBoard()
        # The clock fault moves the authorization server's clock (iat, exp, code and launch expiry).
        clock = _skewed(clock, self.faults)
        self.root_url = root_url
        self.directory = directory
        self.audit = audit
        self.auto_approve = auto_approve
        self.strict = strict
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.state = AuthState(data_dir, clock)
        self.keys = KeyRing(data_dir)
        self.sessions = SessionStore(data_dir, clock)  # sign-in sessions (SSO, logout): mockehr.auth.signin
        self.subjects = Subjects(load_secret(data_dir))  # pairwise sub (mockehr.auth.pairwise)
        self.notifier = Notifier(audit)  # back-channel logout deliveries
        self.pushed = PushedRequests(clock)  # PAR request_uri records (mockehr.auth.par_http)
        self.dpop = dpop_http.DPoPState(clock)  # DPoP proof jti replay cache and nonces
        self.tokens = TokenService(self.state, self.keys, self._lifetime, user_claims,
                                   forged=lambda: self.faults.active("bad-signature") is not None,
                                   subject=self.subjects.of)
        self.server = SmartAuthorizationServer(self.state, self.tokens, self.where, self.faults, self.fault_fired)
        self.server.strict = strict

    def fault_fired(self, firing, **details) -> None:
        """Every fired fault is an audit event (the inspector shows them)."""
        self.audit.record("fault", "fired", fault=firing.fault_id, fault_kind=firing.spec.kind, spec=firing.spec.text,
                          reason=firing.spec.describe(), **details)

    def _lifetime(self) -> int:
        fault = self.faults.active("token-lifetime")
        return fault.params["seconds"] if fault else self.token_lifetime

    def where(self) -> Issuer:
        root = self.root_url()
        return Issuer(issuer=f"{root}/fhir", token_endpoint=f"{root}/auth/token")

    def reset(self) -> None:
        self.state.reset()
        self.sessions.clear()
        self.pushed.clear()
        self.dpop.clear()

    # -- clients --------------------------------------------------------------
    def auto_register(self, client_id: str, redirect_uri: str) -> Client:
        try:
            metadata = validate_client_metadata({"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none",
                                                 "grant_types": ["authorization_code", "refresh_token"],
                                                 "client_name": client_id})
        except RegistrationError as exc:  # a redirect_uri we would refuse at the registration endpoint too
            raise authorize.PageError(f"Unknown client_id '{client_id}' cannot be registered on the spot: "
                                      f"{exc.description}.") from None
        client, _ = self.state.clients.register(metadata, client_id=client_id, auto=True)
        self.audit.record("registration", client=client_id, redirect_uri=redirect_uri,
                          reason="unknown client_id registered on the spot as a public client (permissive mode)")
        return client

    def register_client(self, body: object, **audit_fields) -> tuple[Client, str | None, object]:
        """RFC 7591 registration: (client, secret or None, metadata); RegistrationError (audited) if refused."""
        try:
            metadata = validate_client_metadata(body)
        except RegistrationError as exc:
            self.audit.record("registration", "failure", error=exc.error, reason=exc.description, **audit_fields)
            raise
        client, secret = self.state.clients.register(metadata)
        self.audit.record("registration", client=client.client_id, client_name=metadata.client_name,
                          method=metadata.token_endpoint_auth_method, **audit_fields)
        return client, secret, metadata

    def mint_direct(self, client_id: str, scope: str, patient: str | None = None, user: str | None = None,
                    encounter: str | None = None) -> dict:
        """A token response without a flow (POST /admin/tokens, `mockehr token --patient`): the same
        TokenService as the token endpoint, audited as a token issue. ValueError says what is wrong."""
        try:
            scopes = parse_scopes(scope)
        except ScopeError as exc:
            raise ValueError(str(exc)) from None
        if "patient" in scopes.contexts() and not patient:
            raise ValueError("patient/ scopes need a patient in context: add \"patient\"")
        client = self.state.clients.get(client_id)
        if client is None:
            # confidential, so that it may hold system/ tokens; nobody learns its secret
            metadata = validate_client_metadata({"token_endpoint_auth_method": "client_secret_basic",
                                                 "client_name": client_id, "grant_types": ["client_credentials"]})
            client, _ = self.state.clients.register(metadata, client_id=client_id, auto=True)
        context = AuthContext(user=user, patient=patient, encounter=encounter,
                              auth_time=int(self.clock()) if user else None)
        grant = self.state.add_grant(client.client_id, scopes.text(), context)
        answer = self.tokens.issue(self.where(), client, grant, scopes.text(), include_refresh=True)
        self.audit.record("token", grant_type="direct (control API)", client=client.client_id, user=user,
                          patient=patient, encounter=encounter, scope=answer["scope"])
        return answer

    # -- authorization --------------------------------------------------------
    def issue_code(self, req: authorize.AuthorizeRequest, ctx: AuthContext, scope: str) -> str:
        code = self.state.add_code(req.client.client_id, req.redirect_uri, scope, ctx, req.challenge,
                                   req.challenge_method, dpop_jkt=req.dpop_jkt)
        session = self.sessions.by_sid(ctx.sid)
        if session is not None:  # the app takes part in the session: back-channel logout reaches it
            self.sessions.joined(session, req.client.client_id)
        self.audit.record("authorize", client=req.client.client_id, user=ctx.user, patient=ctx.patient,
                          encounter=ctx.encounter, scope=scope, launch="ehr" if req.is_ehr_launch else "standalone",
                          flags=req.flags or None, code=redact(code), sid=ctx.sid, acr=ctx.acr)
        return code

    def auto_context(self, req: authorize.AuthorizeRequest) -> AuthContext:
        return authorize.auto_context(req, self.directory, int(self.clock()))

    # -- bearer tokens --------------------------------------------------------
    def authenticate_bearer(self, header: str | None) -> AccessToken:
        """`Bearer <token>`, or `DPoP <token>` with a DPoP proof for a DPoP-bound token (RFC 9449 7)."""
        return dpop_http.authenticate(self, header)

    def authenticate_caller(self) -> str:
        """Introspection callers: a registered client, or anyone holding a valid access token."""
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return self.authenticate_bearer(header).client_id
        oauth_request = self.server.create_oauth2_request(request)
        # RFC 7662 2.1: the caller must authenticate; a bare public client_id proves nothing
        client = self.server.authenticate_client(oauth_request, CONFIDENTIAL_METHODS, "introspection")
        return client.client_id

    def introspect(self, token: str) -> dict:
        inactive = {"active": False}
        if not token:
            return inactive
        try:
            access = self.tokens.verify(token, self.where().fhir_base)
        except InvalidToken:
            grant, current = self.state.grant_for_refresh(token)
            if grant is None or not current or grant.revoked:
                return inactive
            return {"active": True, "scope": grant.scope, "client_id": grant.client_id,
                    "token_type": "refresh_token", "iat": int(grant.created),
                    **({"cnf": {"jkt": grant.dpop_jkt}} if grant.dpop_jkt else {}),  # bound to a DPoP key
                    **({"sub": self.subjects.of(self.state.clients.get(grant.client_id), grant.context.user)}
                       if grant.context.user else {}),
                    **launch_context(grant.context, self.where())}
        claims = access.claims
        answer = {"active": True, "scope": claims["scope"], "client_id": claims["client_id"],
                  "token_type": "DPoP" if "cnf" in claims else "Bearer", "exp": claims["exp"], "iat": claims["iat"],
                  "iss": claims["iss"], "aud": claims["aud"], "sub": claims["sub"]}
        if "cnf" in claims:  # RFC 9449 6.2: the key a DPoP-bound token is bound to
            answer["cnf"] = claims["cnf"]
        # SMART 2.2 token introspection: every launch context parameter of the token response SHALL be here
        answer.update(launch_context(access.grant.context, self.where()))
        for name in ("patient", "encounter", "fhirUser"):
            if name in claims:
                answer[name] = claims[name]
        return answer

    def revoke(self, token: str, client_id: str) -> bool:
        """RFC 7009: revoke the grant behind an access or refresh token of this client."""
        grant = None
        try:
            grant = self.tokens.verify(token, self.where().fhir_base).grant
        except InvalidToken:
            grant, _ = self.state.grant_for_refresh(token)
        if grant is None or grant.client_id != client_id:
            return False
        self.state.revoke_grant(grant)
        return True


def _skewed(clock: Callable[[], float], faults: FaultBoard) -> Callable[[], float]:
    def now() -> float:
        fault = faults.active("clock")
        return clock() + (fault.params["offset"] if fault else 0)
    return now
