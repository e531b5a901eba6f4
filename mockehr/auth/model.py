"""What the authorization server remembers: clients, launches, codes, grants.

A grant is one approval (one code exchange or one client_credentials call)
and everything issued from it: its access tokens (by jti) and its refresh
token family. Revoking any of them revokes the grant, as the issue asks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field


def digest(secret: str) -> str:
    """Secrets and tokens are kept as SHA-256 digests, never in the clear."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def redact(token: str | None) -> str | None:
    """What logs and the audit trail may show of a token or secret."""
    if not token:
        return token
    return token[:6] + "…" if len(token) > 12 else "…"


@dataclass
class Client:
    """A registered client, shaped for Authlib's ClientMixin."""

    client_id: str
    metadata: object  # registration.ClientMetadata
    secret_digest: str | None = None
    auto_registered: bool = False
    created: float = 0.0

    # -- Authlib ClientMixin ------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.metadata.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.metadata.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.secret_digest) and hmac.compare_digest(self.secret_digest, digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.metadata.token_endpoint_auth_method
        return True

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.metadata.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.metadata.grant_types

    @property
    def is_public(self) -> bool:
        return self.metadata.token_endpoint_auth_method == "none"


@dataclass
class Launch:
    """An EHR launch minted by POST /admin/launches: the context the EHR hands the app."""

    launch_id: str
    patient: str | None = None
    encounter: str | None = None
    user: str | None = None  # "Practitioner/ID" or "Patient/ID"
    app_url: str | None = None
    need_patient_banner: bool = True
    smart_style_url: str | None = None
    intent: str | None = None
    fhir_context: list = field(default_factory=list)
    sim_error: str | None = None  # a SIM_ERRORS name: this launch fails at that step
    skip_consent: bool = False  # the EHR has consented for the user: no consent page for this launch
    created: float = 0.0
    expires: float = 0.0


@dataclass
class AuthContext:
    """Who approved what, in which context: travels from authorize to every token."""

    user: str | None = None  # "Practitioner/ID", "Patient/ID", or None (backend services)
    patient: str | None = None  # patient id
    encounter: str | None = None
    fhir_context: list = field(default_factory=list)
    intent: str | None = None
    need_patient_banner: bool | None = None  # set only in EHR launches
    smart_style_url: str | None = None
    nonce: str | None = None
    auth_time: int | None = None
    launch_id: str | None = None
    sim_error: str | None = None  # a SIM_ERRORS name from the launch or the client: fails a later step
    sid: str | None = None  # the sign-in session (mockehr.auth.sessions) the grant belongs to
    amr: list | None = None  # how the user signed in: ["pwd"] or ["pwd", "otp"] (mockehr.auth.stepup)
    acr: str | None = None  # the authentication level reached, for the id_token

    # Authlib asks users for an id.
    def get_user_id(self) -> str | None:
        return self.user


@dataclass
class PendingAuthorization:
    """A validated authorization request going through login, pickers and consent."""

    request_id: str
    request: object  # authorize.AuthorizeRequest
    context: AuthContext  # filled in step by step: user, then patient, then encounter
    csrf: str  # every form of this request carries it
    created: float
    expires: float


@dataclass
class CodeRecord:
    code_digest: str
    client_id: str
    redirect_uri: str
    scope: str
    context: AuthContext
    challenge: str | None
    challenge_method: str | None
    expires: float
    used: bool = False
    grant_id: str | None = None  # set when exchanged, to revoke on replay
    replayed: bool = False  # a second exchange was tried (maybe while the first was still running)
    dpop_jkt: str | None = None  # the DPoP key the code is bound to (dpop_jkt, or a proof sent to PAR; RFC 9449 10)

    # Authlib's AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.context.nonce

    def get_auth_time(self) -> int | None:
        return self.context.auth_time


@dataclass
class Grant:
    grant_id: str
    client_id: str
    scope: str
    context: AuthContext
    created: float
    refresh_digest: str | None = None  # the one refresh token that works now
    retired_refresh: set = field(default_factory=set)  # rotated-away digests: reuse revokes the grant
    access_jtis: set = field(default_factory=set)
    revoked: bool = False
    online: bool = False  # online_access refresh tokens end with the session
    dpop_jkt: str | None = None  # a public client's refresh token is bound to this DPoP key (RFC 9449 5)

    # Authlib's TokenMixin, as the refresh grant sees its credential
    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client) -> bool:
        return client.client_id == self.client_id
