"""Minting and checking tokens.

Access tokens are JWTs shaped per RFC 9068 (typ at+jwt, aud = the FHIR base,
kid in the header) so workshop users can decode them; the server still keys
each one by jti to its grant, so revoking the grant kills the token at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

from mockehr.auth.keys import JoseError, KeyRing
from mockehr.auth.model import AuthContext, Client, Grant
from mockehr.auth.scopes import ScopeSet, parse_scopes
from mockehr.auth.state import AuthState


class InvalidToken(Exception):
    """Why a bearer token is refused, in words for WWW-Authenticate."""


@dataclass(frozen=True)
class AccessToken:
    claims: dict
    grant: Grant
    scopes: ScopeSet

    @property
    def patient(self) -> str | None:
        return self.grant.context.patient

    @property
    def user(self) -> str | None:
        return self.grant.context.user

    @property
    def client_id(self) -> str:
        return self.grant.client_id


@dataclass(frozen=True)
class Issuer:
    """Where this server is, as the current request sees it."""

    issuer: str  # also the FHIR base
    token_endpoint: str

    @property
    def fhir_base(self) -> str:
        return self.issuer


class TokenService:
    def __init__(self, state: AuthState, keys: KeyRing, lifetime: Callable[[], int],
                 user_claims: Callable[[str], dict], forged: Callable[[], bool] = lambda: False,
                 subject: Callable[[Client, str], str] | None = None):
        self.state = state
        self.subject = subject or (lambda client, user: user)  # the user's sub as this client sees it (pairwise)
        self.forged = forged  # the bad-signature fault: sign new tokens with a key not in the JWKS
        self.keys = keys
        self.lifetime = lifetime  # seconds an access token lives (faults may change it)
        self.user_claims = user_claims  # "Practitioner/x" -> {"name": ..., "email": ...}

    def issue(self, where: Issuer, client: Client, grant: Grant, scope: str, include_refresh: bool,
              jkt: str | None = None) -> dict:
        """jkt: the thumbprint of the token request's DPoP proof key: the token is bound to it (RFC 9449 6)."""
        now = int(self.state.clock())
        lifetime = int(self.lifetime())
        scopes = parse_scopes(scope)
        ctx = grant.context
        jti = uuid.uuid4().hex
        claims = {"iss": where.issuer, "sub": self.subject(client, ctx.user) if ctx.user else client.client_id,
                  "aud": where.fhir_base,
                  "client_id": client.client_id, "scope": scope, "iat": now, "exp": now + lifetime, "jti": jti}
        if ctx.patient:
            claims["patient"] = ctx.patient
        if ctx.encounter:
            claims["encounter"] = ctx.encounter
        if ctx.user and scopes.fhir_user:
            claims["fhirUser"] = f"{where.fhir_base}/{ctx.user}"
        if jkt:
            claims["cnf"] = {"jkt": jkt}
        self.state.attach_access_token(grant, jti)
        response: dict = {"access_token": self.keys.sign(claims, "RS256", typ="at+jwt",
                                                                   forged=self.forged()),
                          "token_type": "DPoP" if jkt else "Bearer", "expires_in": lifetime, "scope": scope}
        if scopes.openid and ctx.user:
            response["id_token"] = self.id_token(where, client, ctx, scopes, now, lifetime)
        granted = parse_scopes(grant.scope)  # a refresh may narrow the token, never the grant
        if include_refresh and (granted.offline_access or granted.online_access):
            if jkt and client.is_public and not grant.dpop_jkt:  # RFC 9449 5: a public client's refresh token
                grant.dpop_jkt = jkt  # is bound to the key too (checked by mockehr.auth.dpop_http)
            response["refresh_token"] = self.state.rotate_refresh_token(grant)
            grant.online = granted.online_access and not granted.offline_access
        response.update(launch_context(ctx, where))
        return response

    def id_token(self, where: Issuer, client: Client, ctx: AuthContext, scopes: ScopeSet, now: int,
                 lifetime: int) -> str:
        claims = {"iss": where.issuer, "sub": self.subject(client, ctx.user), "aud": client.client_id, "iat": now,
                  "exp": now + lifetime, "auth_time": ctx.auth_time or now}
        if ctx.nonce:
            claims["nonce"] = ctx.nonce
        if ctx.sid:  # the sign-in session: RP-initiated and back-channel logout name it
            claims["sid"] = ctx.sid
        if ctx.acr:
            claims["acr"] = ctx.acr
        if ctx.amr:
            claims["amr"] = list(ctx.amr)
        claims.update(self.identity_claims(where, ctx.user, scopes))
        return self.keys.sign(claims, "RS256", forged=self.forged())

    def identity_claims(self, where: Issuer, user: str, scopes: ScopeSet) -> dict:
        """The OIDC claims about the user that these scopes release (id_token and userinfo)."""
        claims = {}
        if scopes.fhir_user:
            claims["fhirUser"] = f"{where.fhir_base}/{user}"
        known = self.user_claims(user)
        if scopes.profile:
            claims.update({k: v for k, v in known.items()
                           if k in ("name", "given_name", "family_name", "npi", "roles", "organization")})
        if scopes.email and known.get("email"):
            claims["email"] = known["email"]
        return claims

    def verify(self, token: str, fhir_base: str) -> AccessToken:
        try:
            header, claims = self.keys.verify(token)
        except (JoseError, ValueError) as exc:
            raise InvalidToken(f"the token is not one this server signed ({type(exc).__name__})") from None
        if header.get("typ") != "at+jwt":
            raise InvalidToken("this is not an access token (an id_token cannot be used as a bearer token)")
        # iat and exp are whole seconds with iat truncated, so a token lives through its whole exp second:
        # a token with expires_in 1 minted at x.9 s must not be dead 0.1 s later (RFC 6749 5.1).
        now = int(self.state.clock())
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now:
            raise InvalidToken("the access token has expired")
        if claims.get("aud") != fhir_base:
            raise InvalidToken(f"the access token is for {claims.get('aud')!r}, not for {fhir_base!r}")
        grant = self.state.grant_for_jti(str(claims.get("jti")))
        if grant is None:
            raise InvalidToken("the access token is not known to this server (issued before a reset or restart?)")
        if grant.revoked:
            raise InvalidToken("the access token was revoked")
        return AccessToken(claims, grant, parse_scopes(claims.get("scope", "")))


def launch_context(ctx: AuthContext, where: Issuer) -> dict:
    """The SMART launch context fields of a token response."""
    fields: dict = {}
    if ctx.patient:
        fields["patient"] = ctx.patient
    if ctx.encounter:
        fields["encounter"] = ctx.encounter
    if ctx.fhir_context:
        fields["fhirContext"] = ctx.fhir_context
    if ctx.intent:
        fields["intent"] = ctx.intent
    if ctx.need_patient_banner is not None:
        fields["need_patient_banner"] = ctx.need_patient_banner
    if ctx.smart_style_url:
        fields["smart_style_url"] = ctx.smart_style_url
    return fields
