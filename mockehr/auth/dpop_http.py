"""DPoP (RFC 9449) at the endpoints: the token and PAR endpoints, the grants, and the resources
(the FHIR API and userinfo). The proof checks themselves are mockehr.auth.dpop's (pure); this
module adds what needs memory or the request: the jti replay cache, server nonces, the public URL
a proof must name, the server flags and the audit trail.

- Token and PAR endpoints: a `DPoP` header, when sent, must hold a valid proof (else 400
  invalid_dpop_proof, or use_dpop_nonce with a `DPoP-Nonce` header); the proof's key then binds the
  access token (cnf.jkt, token_type DPoP), a public client's refresh token, or (at PAR) the code.
- Grants: `check_token_request` refuses a request without a proof when the client registered
  dpop_bound_access_tokens, the server runs with --require-dpop, or the code or refresh token is
  bound to a key; a proof signed with another key than the bound one is invalid_grant.
- Resources: `authenticate` takes `Authorization: Bearer` (unbound tokens only) or
  `Authorization: DPoP` with a proof whose ath and key match the token; refusals are
  `DPoPChallenge`s, answered 401 with `WWW-Authenticate: DPoP error=..., algs=...`.

Settings: serve --require-dpop (Settings.require_dpop) and --dpop-nonce (Settings.dpop_nonce).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import deque
from typing import Callable

import orjson
from authlib.oauth2.rfc6749.errors import InvalidGrantError, OAuth2Error
from flask import Response, current_app, g, request

from mockehr.auth.dpop import ALGS, IAT_WINDOW, Proof, ProofError, b64url, verify_proof
from mockehr.auth.tokens import AccessToken, InvalidToken

NONCE_STEP = 60  # a new nonce every minute ...
NONCE_LIFETIME = 300  # ... each good for five
REPLAY_HORIZON = 2 * IAT_WINDOW + 5  # a jti is remembered while a proof carrying it could still pass the iat check
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class InvalidDPoPProofError(OAuth2Error):
    """RFC 9449 5: the token endpoint's error for a missing or invalid DPoP proof."""

    error = "invalid_dpop_proof"


class DPoPChallenge(InvalidToken):
    """A resource request refused under the DPoP scheme (RFC 9449 7.1): 401 with these headers."""

    def __init__(self, error: str, description: str, nonce: str | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        # a quoted-string of visible ASCII: what the client sent (htu, jti) may hold anything
        safe = description.replace("\\", "/").replace('"', "'").encode("ascii", "backslashreplace").decode()
        self.headers = {"WWW-Authenticate": f'DPoP error="{error}", error_description="{safe}", '
                                            f'algs="{" ".join(ALGS)}"'}
        if nonce:
            self.headers["DPoP-Nonce"] = nonce


class DPoPState:
    """What DPoP checking remembers: the proofs' jti values seen lately, and the nonce secret."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._order: deque = deque()
        self._secret = secrets.token_bytes(32)

    def fresh(self, jti: str) -> bool:
        """Remember jti; False if it was seen within the replay horizon (a replayed proof)."""
        now = self.clock()
        with self._lock:
            while self._order and self._order[0][0] < now:
                expiry, old = self._order.popleft()
                if self._seen.get(old) == expiry:
                    del self._seen[old]
            if jti in self._seen:
                return False
            expiry = now + REPLAY_HORIZON
            self._seen[jti] = expiry
            self._order.append((expiry, jti))
            return True

    def nonce(self) -> str:
        """The nonce to hand out now (a new one every NONCE_STEP seconds; no memory needed to check it)."""
        stamp = int(self.clock() // NONCE_STEP * NONCE_STEP)
        return self._nonce_for(stamp)

    def _nonce_for(self, stamp: int) -> str:
        raw = stamp.to_bytes(8, "big", signed=True)
        return f"{b64url(raw)}.{b64url(hmac.new(self._secret, raw, hashlib.sha256).digest()[:18])}"

    def nonce_problem(self, nonce: str | None) -> str | None:
        """Why this proof nonce is not acceptable (answered with use_dpop_nonce), or None."""
        if nonce is None:
            return "this server requires a nonce in DPoP proofs: put the one in this answer's DPoP-Nonce header " \
                   "in the proof's nonce claim"
        stamp_text = nonce.partition(".")[0]
        try:
            raw = base64.urlsafe_b64decode(stamp_text + "=" * (-len(stamp_text) % 4))
        except (ValueError, TypeError):
            raw = b""
        stamp = int.from_bytes(raw, "big", signed=True) if len(raw) == 8 else None
        if stamp is None or not hmac.compare_digest(self._nonce_for(stamp).encode(), nonce.encode("utf-8", "replace")):
            return ("the DPoP proof's nonce was not issued by this server: use the one in this answer's DPoP-Nonce "
                    "header")
        age = self.clock() - stamp
        if age > NONCE_LIFETIME or age < -NONCE_STEP:
            return "the DPoP proof's nonce has expired: use the one in this answer's DPoP-Nonce header"
        return None

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
            self._order.clear()


# -- settings and the current request ----------------------------------------------------------
def setting(name: str) -> bool:
    """A server flag of Settings (serve --require-dpop, --dpop-nonce, --require-par)."""
    return bool(getattr(current_app.extensions["mockehr.settings"], name, False))


def request_proof(service, access_token: str | None = None) -> Proof:
    """The verified DPoP proof of the current request (its URL as the client addressed it, under
    --public-url too); ProofError if it is missing or bad, or replays an earlier proof's jti."""
    state: DPoPState = service.dpop
    proof = verify_proof(request.headers.getlist("DPoP"), method=request.method,
                         url=service.root_url() + request.path, now=service.clock(), access_token=access_token,
                         nonce_problem=state.nonce_problem if setting("dpop_nonce") else None)
    if not state.fresh(proof.jti):
        raise ProofError(f"the DPoP proof's jti {proof.jti[:60]!r} was used before (a replayed proof): make a new "
                         "proof, with a new jti, for every request")
    return proof


def proof_jkt() -> str | None:
    """The thumbprint of the current token request's proof key (what new tokens are bound to), or None."""
    proof: Proof | None = g.get("mockehr_dpop")
    return proof.jkt if proof is not None else None


def _record(error: str, reason: str, **fields) -> None:
    """Every DPoP refusal is an audit event of its own (`mockehr audit --type dpop`)."""
    current_app.extensions["mockehr.audit"].record("dpop", "failure", endpoint=request.path, method=request.method,
                                                   error=error, reason=reason, **fields)


# -- token and PAR endpoints ---------------------------------------------------------------------
def endpoint_proof(service) -> Response | None:
    """Before the token or PAR endpoint does anything: a DPoP header, if any, must hold a valid proof.
    The proof is kept for the grants (g.mockehr_dpop); an error answer is returned if it is not valid."""
    if "DPoP" not in request.headers:
        return None
    try:
        g.mockehr_dpop = request_proof(service)
    except ProofError as exc:
        _record(exc.error, exc.description, client=request.form.get("client_id"))
        headers = {**_NO_STORE, **nonce_headers(service, force=exc.error == "use_dpop_nonce")}
        return Response(orjson.dumps({"error": exc.error, "error_description": exc.description}), 400, headers,
                        content_type="application/json")
    return None


def nonce_headers(service, force: bool = False) -> dict:
    """`DPoP-Nonce` for token, PAR and resource answers while the server asks for nonces."""
    return {"DPoP-Nonce": service.dpop.nonce()} if force or setting("dpop_nonce") else {}


def audit_detail() -> dict:
    """What the token endpoint's audit event says about DPoP."""
    jkt = proof_jkt()
    return {"token_type": "DPoP", "dpop_jkt": jkt} if jkt else {}


def check_token_request(client, *, bound_jkt: str | None = None, bound_to: str = "") -> None:
    """In a grant's validation, before anything is spent: is this token request's DPoP proof (or its
    absence) acceptable for this client and this code or refresh token? Raises the OAuth error."""
    proof: Proof | None = g.get("mockehr_dpop")
    if proof is not None:
        if bound_jkt and proof.jkt != bound_jkt:
            reason = (f"the {bound_to} is bound to another DPoP key (jkt {bound_jkt}); this proof is signed with "
                      f"jkt {proof.jkt}")
            _record("invalid_grant", reason, client=client.client_id)
            raise InvalidGrantError(reason)
        return
    if bound_jkt:
        why = f"the {bound_to} is bound to a DPoP key (jkt {bound_jkt}): send a DPoP proof signed with that key"
    elif client.metadata.extra.get("dpop_bound_access_tokens") is True:
        why = (f"client '{client.client_id}' was registered with dpop_bound_access_tokens: every token request "
               "needs a DPoP proof (a DPoP header)")
    elif setting("require_dpop"):
        why = "this server runs with --require-dpop: every token request needs a DPoP proof (a DPoP header)"
    else:
        return
    _record("invalid_dpop_proof", why, client=client.client_id)
    raise InvalidDPoPProofError(why)


# -- resources -------------------------------------------------------------------------------------
def authenticate(service, header: str | None) -> AccessToken:
    """The access token of a resource request: `Bearer <token>` for an unbound token, `DPoP <token>`
    with a matching proof for a DPoP-bound one. InvalidToken (Bearer challenge) or DPoPChallenge."""
    if not header:
        raise InvalidToken("no access token: send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "dpop" and token:
        return _dpop_token(service, token)
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("the Authorization header must be 'Bearer <access token>' (or 'DPoP <access token>' "
                           "with a DPoP proof)")
    access = service.tokens.verify(token, service.where().fhir_base)
    if _bound_key(access):
        raise _challenge(service, "invalid_token", "this access token is DPoP-bound (token_type DPoP): send it as "
                         "'Authorization: DPoP <token>' with a DPoP proof, not as a Bearer token", access)
    return access


def _dpop_token(service, token: str) -> AccessToken:
    try:
        access = service.tokens.verify(token, service.where().fhir_base)
    except InvalidToken as exc:
        raise _challenge(service, "invalid_token", str(exc)) from None
    jkt = _bound_key(access)
    if not jkt:
        raise _challenge(service, "invalid_token", "this access token is not DPoP-bound (token_type Bearer): send "
                         "it as 'Authorization: Bearer <token>'", access)
    try:
        proof = request_proof(service, access_token=token)
    except ProofError as exc:
        raise _challenge(service, exc.error, exc.description, access) from None
    if proof.jkt != jkt:
        # RFC 9449 7.1: the proof is fine, the token's binding fails: invalid_token
        raise _challenge(service, "invalid_token", f"the DPoP proof is signed with another key (jkt {proof.jkt}) than "
                         f"the one the access token is bound to (cnf.jkt {jkt})", access)
    return access


def _bound_key(access: AccessToken) -> str | None:
    cnf = access.claims.get("cnf")
    return cnf.get("jkt") if isinstance(cnf, dict) else None


def _challenge(service, error: str, description: str, access: AccessToken | None = None) -> DPoPChallenge:
    _record(error, description, client=access.client_id if access else None)
    nonce = nonce_headers(service, force=error == "use_dpop_nonce").get("DPoP-Nonce")
    return DPoPChallenge(error, description, nonce)


def challenge_response(exc: Exception) -> Response | None:
    """The 401 answer for a DPoPChallenge outside the FHIR API (userinfo); None for other errors."""
    if not isinstance(exc, DPoPChallenge):
        return None
    body = orjson.dumps({"error": exc.error, "error_description": exc.description})
    return Response(body, 401, {**_NO_STORE, **exc.headers}, content_type="application/json")
