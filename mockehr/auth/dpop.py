"""DPoP proofs (RFC 9449), pure: read and check a proof JWT, JWK thumbprints (RFC 7638), the
request URL a proof names (htu) and the access token hash (ath).

No Flask and no memory here: the replay cache, server nonces and what the endpoints answer are
mockehr.auth.dpop_http's. `verify_proof` runs the checks of RFC 9449 4.3 in its order (nonce
included, through a callback) and raises `ProofError` naming the first one that fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote, urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry

# Asymmetric JWS algorithms only (RFC 9449 4.2: never "none", never a MAC). "EdDSA" is left out:
# RFC 9864 deprecates it for the fully specified "Ed25519".
ALGS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "Ed25519")
PROOF_TYPE = "dpop+jwt"
IAT_WINDOW = 60  # seconds a proof's iat may be off the server's clock, either way
MAX_PROOF_LENGTH = 16_384  # a proof carries a public key: an RSA 4096 key makes ~1.7 kB
_CURVE_OF = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "Ed25519": "Ed25519"}
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
_MIN_RSA_BITS = 2048
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ProofError(Exception):
    """Why a DPoP proof is refused: `error` is invalid_dpop_proof or use_dpop_nonce (RFC 9449 5, 7.1, 8)."""

    def __init__(self, description: str, error: str = "invalid_dpop_proof"):
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Proof:
    """A verified proof: whose key (jkt), and what it was made for."""

    jkt: str  # RFC 7638 SHA-256 thumbprint of the proof's jwk
    jti: str
    htm: str
    htu: str
    iat: float
    alg: str
    ath: str | None = None
    nonce: str | None = None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(jwk: dict) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url: the `jkt` of cnf (RFC 9449 6.1) and of dpop_jkt."""
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty"))
    if members is None or any(not isinstance(jwk.get(name), str) for name in members):
        raise ValueError(f"cannot take the thumbprint of a {jwk.get('kty')!r} key without {members}")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def is_thumbprint(value: object) -> bool:
    """Whether `value` looks like a jkt (base64url of 32 bytes), e.g. an authorization request's dpop_jkt."""
    return isinstance(value, str) and bool(_JKT.fullmatch(value))


def access_token_hash(token: str) -> str:
    """The `ath` claim: base64url SHA-256 of the access token's ASCII (RFC 9449 4.2)."""
    return b64url(hashlib.sha256(token.encode("ascii", "replace")).digest())


def normalize_url(url: str) -> str:
    """The URL as RFC 9449 4.3 compares htu: scheme and host case-insensitive, default port dropped,
    an empty path as "/", percent-encoding decoded, no query and no fragment. ValueError if unusable."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an absolute http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError on a bad port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{unquote(parts.path) or '/'}"


def _show(value: object, limit: int = 100) -> str:
    """A client-sent value for a message: repr'd, and cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def _segment_json(segment: str, what: str) -> dict:
    try:
        value = json.loads(_b64decode(segment))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[...]]]]
        raise ProofError(f"the DPoP proof's {what} is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise ProofError(f"the DPoP proof's {what} must be a JSON object")
    return value


def _check_jwk(jwk: object, alg: str):
    """The proof's public key, imported; ProofError if it is missing, private, weak or unfit for alg."""
    if not isinstance(jwk, dict):
        raise ProofError("the DPoP proof header has no jwk (the public key the proof is signed with)")
    private = [name for name in _PRIVATE_MEMBERS if name in jwk]
    if private:
        raise ProofError(f"the DPoP proof's jwk contains private key member(s) {', '.join(private)}; "
                         "send the public key only")
    kty = jwk.get("kty")
    wanted = "OKP" if alg == "Ed25519" else "EC" if alg.startswith("ES") else "RSA"
    if kty != wanted:
        raise ProofError(f"the DPoP proof's jwk has kty {_show(kty)}; alg {alg} needs a {wanted} key")
    if alg in _CURVE_OF and jwk.get("crv") != _CURVE_OF[alg]:
        raise ProofError(f"the DPoP proof's jwk is on curve {_show(jwk.get('crv'))}; alg {alg} needs {_CURVE_OF[alg]}")
    if kty == "RSA":
        try:
            bits = int.from_bytes(_b64decode(jwk.get("n")), "big").bit_length()
        except (ValueError, binascii.Error):
            raise ProofError("the DPoP proof's jwk is not a valid RSA public key") from None
        if bits < _MIN_RSA_BITS:
            raise ProofError(f"the DPoP proof's RSA key has {bits} bits; at least {_MIN_RSA_BITS} are required")
    try:
        key = JWKRegistry.import_key(jwk)
    except Exception:  # noqa: BLE001 - untrusted input into a parser with many failure types
        raise ProofError(f"the DPoP proof's jwk is not a valid {kty} public key") from None
    if key.is_private:
        raise ProofError("the DPoP proof's jwk is a private key; send the public key only")
    return key


def _registry(alg: str) -> JWSRegistry:
    registry = JWSRegistry(algorithms=[alg])
    registry.max_header_length = MAX_PROOF_LENGTH  # the default (512 bytes) is too small for an RSA jwk
    return registry


def verify_proof(values: list[str], *, method: str, url: str, now: float, access_token: str | None = None,
                 nonce_problem: Callable[[str | None], str | None] | None = None,
                 window: int = IAT_WINDOW, algs: tuple[str, ...] = ALGS) -> Proof:
    """Check the DPoP header values of one request (RFC 9449 4.3); the Proof, or ProofError.

    method, url: the request as the client addressed it (url without query: the public URL);
    access_token: the token presented with the proof at a resource (then `ath` must match);
    nonce_problem: None when the server asks no nonce; else a callback that says what is wrong with
    the proof's nonce claim (None = fine), answered as use_dpop_nonce.
    The replay check (jti never seen) is the caller's: it needs memory."""
    # A server may see repeated header lines joined with commas (WSGI does); a JWT never holds one.
    values = [part.strip() for value in values for part in value.split(",")]
    if not values or values == [""]:
        raise ProofError("no DPoP proof: send a DPoP header with a proof JWT (RFC 9449 4)")
    if len(values) > 1:
        raise ProofError("several DPoP headers: send exactly one DPoP proof")
    value = values[0].strip()
    if len(value) > MAX_PROOF_LENGTH:
        raise ProofError(f"the DPoP proof is longer than {MAX_PROOF_LENGTH} characters")
    segments = value.split(".")
    if len(segments) != 3 or not all(segments):
        raise ProofError("the DPoP header is not a signed JWT (three base64url parts separated by dots)")
    header = _segment_json(segments[0], "header")
    claims = _segment_json(segments[1], "payload")
    for name, kind in (("jti", str), ("htm", str), ("htu", str), ("iat", (int, float))):
        claim = claims.get(name)
        if claim is None:
            raise ProofError(f"the DPoP proof has no {name} claim (jti, htm, htu and iat are required)")
        if not isinstance(claim, kind) or isinstance(claim, bool) or claim == "":
            raise ProofError(f"the DPoP proof's {name} claim must be a {'number' if name == 'iat' else 'string'}")
    if not math.isfinite(claims["iat"]):
        raise ProofError("the DPoP proof's iat claim must be a finite number")
    if header.get("typ") != PROOF_TYPE:
        raise ProofError(f"the DPoP proof's typ is {_show(header.get('typ'))}; it must be {PROOF_TYPE!r}")
    alg = header.get("alg")
    if alg not in algs:
        kind = "'none' is" if alg == "none" else "symmetric (MAC) algorithms are" if str(alg).startswith("HS") else None
        why = f"{kind} never accepted; " if kind else ""
        raise ProofError(f"the DPoP proof's alg {_show(alg)} is not supported; {why}use one of {' '.join(algs)}")
    key = _check_jwk(header.get("jwk"), alg)
    try:
        jws.deserialize_compact(value, key, registry=_registry(alg))
    except (JoseError, ValueError, TypeError, KeyError):
        raise ProofError("the DPoP proof's signature does not verify with the jwk in its header") from None
    if claims["htm"] != method:
        raise ProofError(f"the DPoP proof is for method {_show(claims['htm'])} (htm); this request is {method}")
    htu = claims["htu"]
    if "?" in htu or "#" in htu:
        raise ProofError(f"the DPoP proof's htu {_show(htu, 300)} must be the URL without query or fragment")
    try:
        same_url = normalize_url(htu) == normalize_url(url)
    except ValueError:
        raise ProofError(f"the DPoP proof's htu {_show(htu, 300)} is not an absolute http(s) URL") from None
    if not same_url:
        raise ProofError(f"the DPoP proof is for {_show(htu, 300)[1:-1]} (htu); this request is for {url}")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise ProofError("the DPoP proof's nonce claim must be a string")
    if nonce_problem is not None:
        problem = nonce_problem(nonce)
        if problem:
            raise ProofError(problem, "use_dpop_nonce")
    age = now - claims["iat"]
    if age > window:
        raise ProofError(f"the DPoP proof was made {int(age)} s ago (iat); proofs are accepted for {window} s: "
                         "make a fresh proof for every request")
    if age < -window:
        raise ProofError(f"the DPoP proof's iat is {int(-age)} s in the future; is the client's clock right?")
    ath = claims.get("ath")
    if access_token is not None:
        if ath is None:
            raise ProofError("the DPoP proof has no ath claim; with an access token it must carry ath, the "
                             "base64url SHA-256 of the token")
        if ath != access_token_hash(access_token):
            raise ProofError("the DPoP proof's ath does not match the access token sent with it (ath is the "
                             "base64url SHA-256 of the token)")
    return Proof(jkt=thumbprint(header["jwk"]), jti=claims["jti"], htm=claims["htm"], htu=htu,
                 iat=claims["iat"], alg=alg, ath=ath if isinstance(ath, str) else None, nonce=nonce)
