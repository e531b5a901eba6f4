"""private_key_jwt client authentication (RFC 7523, SMART Backend Services).

The assertion must be signed RS384 or ES384 (RS256/ES256 are accepted too)
by one of the client's registered keys, with iss = sub = client_id, aud = the
token endpoint, an exp no more than five minutes ahead, and a jti never seen
before.
"""

from __future__ import annotations

import base64
import json
import urllib.request

from authlib.oauth2.rfc6749.errors import InvalidClientError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from mockehr.auth.registration import ASSERTION_ALGS

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME = 300


def _fail(message: str) -> InvalidClientError:
    return InvalidClientError(description=message)


def client_keys(client) -> KeySet:
    metadata = client.metadata
    if metadata.jwks:
        return KeySet.import_key_set(metadata.jwks)
    if metadata.jwks_uri:
        try:
            with urllib.request.urlopen(metadata.jwks_uri, timeout=5) as answer:  # the client's own URL
                return KeySet.import_key_set(json.loads(answer.read()))
        except (OSError, ValueError, JoseError) as exc:
            raise _fail(f"could not read the client's jwks_uri {metadata.jwks_uri}: {exc}") from None
    raise _fail("the client has no registered keys (jwks or jwks_uri)")


def authenticate_private_key_jwt(state, query_client, request, token_endpoint: str | tuple[str, ...]):
    """token_endpoint: the audience the assertion must name; at the PAR endpoint, a tuple of those accepted
    (the first one is named in the error)."""
    accepted = (token_endpoint,) if isinstance(token_endpoint, str) else tuple(token_endpoint)
    form = request.form
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if assertion_type != ASSERTION_TYPE or not assertion:
        return None  # not this method; Authlib tries the others
    claims_client = _unverified_iss(assertion)
    client = query_client(claims_client) if claims_client else None
    if client is None:
        raise _fail(f"client_assertion names an unknown client ({claims_client!r})")
    if client.metadata.token_endpoint_auth_method != "private_key_jwt":
        raise _fail(f"client '{client.client_id}' is not registered for private_key_jwt")
    try:
        token = jwt.decode(assertion, client_keys(client), algorithms=list(ASSERTION_ALGS))
    except JoseError as exc:
        raise _fail(f"client_assertion signature check failed ({exc.error}); sign with RS384 or ES384 using a "
                    "registered key") from None
    claims, header = token.claims, token.header
    if header.get("alg") not in ASSERTION_ALGS:
        raise _fail(f"client_assertion alg {header.get('alg')!r} is not accepted; use RS384 or ES384")
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise _fail("client_assertion iss and sub must both be the client_id")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not any(value in audiences for value in accepted):
        raise _fail(f"client_assertion aud must be the token endpoint {accepted[0]}")
    now = state.clock()
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        raise _fail("client_assertion has no exp")
    if exp <= now:
        raise _fail("client_assertion has expired")
    if exp > now + MAX_LIFETIME + 5:
        raise _fail("client_assertion exp is more than five minutes ahead")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _fail("client_assertion has no jti")
    if not state.remember_assertion(f"{client.client_id}:{jti}", exp):
        raise _fail("client_assertion jti was already used (replay)")
    return client


def _unverified_iss(assertion: str) -> str | None:
    """The iss claim before verification: it says whose keys to check the signature with."""
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims.get("iss") if isinstance(claims, dict) and isinstance(claims.get("iss"), str) else None
    except (IndexError, ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deeply nested JSON
        return None
