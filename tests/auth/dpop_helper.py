"""A DPoP client's half, for the tests: key pairs and proof JWTs made with PyJWT (not with the
server's code), and the token and FHIR calls that carry them."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ath(token: str) -> str:
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


@dataclass
class DPoPKey:
    alg: str
    private: object

    @property
    def jwk(self) -> dict:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg[:2] in ("RS", "PS") else jwt.algorithms.ECAlgorithm
        return algorithm.to_jwk(self.private.public_key(), as_dict=True)

    @property
    def jkt(self) -> str:
        """RFC 7638 thumbprint, computed here independently of the server."""
        jwk = self.jwk
        members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
        canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None,
              header: dict | None = None, **claims) -> str:
        """A proof for METHOD URL; keyword claims override (None drops one), header overrides the JOSE header."""
        body = {"jti": uuid.uuid4().hex, "htm": method, "htu": url, "iat": int(time.time())}
        if access_token is not None:
            body["ath"] = ath(access_token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode(body, self.private, algorithm=self.alg, headers=headers)


def dpop_key(alg: str = "ES256") -> DPoPKey:
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
        return DPoPKey(alg, ec.generate_private_key(curve))
    return DPoPKey(alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def dpop_challenge(answer, error: str) -> str:
    """The WWW-Authenticate: DPoP challenge of a refused resource request."""
    assert answer.status_code == 401, (answer.status_code, answer.text)
    challenge = answer.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("DPoP "), answer.headers
    assert f'error="{error}"' in challenge, challenge
    assert 'algs="' in challenge and "ES256" in challenge, challenge
    return challenge
