"""RP-initiated logout and back-channel logout, the pure parts.

OpenID Connect RP-Initiated Logout 1.0: the app sends the browser to `end_session_endpoint`
(/auth/logout) with `id_token_hint` (an id_token this server issued; expired ones are fine,
section 2), optionally `client_id`, `post_logout_redirect_uri` (sent back there only if the app
registered it in `post_logout_redirect_uris`), `state` (echoed) and `logout_hint`.

OpenID Connect Back-Channel Logout 1.0: when a session ends, each app with a grant in it that
registered `backchannel_logout_uri` gets a POST `logout_token=JWT` (section 2.5), the JWT typed
`logout+jwt` and carrying iss, aud, iat, exp, jti, sub, sid and the back-channel logout event,
never a nonce (section 2.4).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"
LOGOUT_TOKEN_LIFETIME = 120  # seconds: the receiver must check it promptly


def logout_token_claims(issuer: str, client_id: str, sub: str | None, sid: str | None, now: int) -> dict:
    """The claims of one logout token (Back-Channel Logout 1.0 section 2.4)."""
    if not sub and not sid:
        raise ValueError("a logout token names the session (sid) or the user (sub), or both")
    claims = {"iss": issuer, "aud": client_id, "iat": now, "exp": now + LOGOUT_TOKEN_LIFETIME,
              "jti": uuid.uuid4().hex, "events": {BACKCHANNEL_EVENT: {}}}
    if sub:
        claims["sub"] = sub
    if sid:
        claims["sid"] = sid
    return claims


class HintProblem(ValueError):
    """The id_token_hint is not an ID token this server issued (for the error page)."""


@dataclass(frozen=True)
class Hint:
    client_id: str
    sid: str | None
    sub: str


def read_id_token_hint(header: dict, claims: dict, issuer: str) -> Hint:
    """The client and session an id_token_hint names; its signature was verified by the caller.
    exp is not checked: RP-Initiated Logout 1.0 section 2 accepts expired ID tokens."""
    if header.get("typ") in ("at+jwt", LOGOUT_TOKEN_TYPE):
        raise HintProblem(f"id_token_hint is an {header['typ']} token, not an ID token")
    if claims.get("iss") != issuer:
        raise HintProblem(f"id_token_hint was issued by {claims.get('iss')!r}, not by this server ({issuer})")
    aud = claims.get("aud")
    if isinstance(aud, list):
        aud = aud[0] if len(aud) == 1 else None
    if not isinstance(aud, str) or not aud or not isinstance(claims.get("sub"), str):
        raise HintProblem("id_token_hint lacks the aud or sub of an ID token")
    sid = claims.get("sid")
    return Hint(aud, sid if isinstance(sid, str) else None, claims["sub"])


@dataclass(frozen=True)
class Destination:
    """Where the browser goes after logout: a registered URI (with state), or the signed-out page."""

    redirect: str | None
    notice: str | None = None  # why there is no redirect although the app asked for one


def destination(requested: str | None, client_id: str | None, registered) -> Destination:
    """RP-Initiated Logout 1.0 section 3: only an exact match of a URI the app registered."""
    if not requested:
        return Destination(None)
    if not client_id:
        return Destination(None, f"The app asked to be sent to {requested}, but named itself neither with "
                                 "id_token_hint nor with client_id, so the address cannot be checked.")
    if requested not in (registered or ()):
        listed = ", ".join(registered or ()) or "none"
        return Destination(None, f"The app asked to be sent to {requested}, which app {client_id} did not "
                                 f"register in post_logout_redirect_uris (registered: {listed}).")
    return Destination(requested)
