"""Signing keys: an RSA key (RS256/RS384) and an EC P-384 key (ES384), with kids.

Keys are made on first use (RSA generation costs ~100 ms, which a test suite
starting the server thousands of times should not pay up front). Under
--data-dir they live in keys.json so a restart keeps issued tokens valid.
Rotation makes a new pair; `keep_old` keeps the old public keys in the JWKS
(and accepted for verification) until the next rotation.
"""

from __future__ import annotations

import threading
from functools import lru_cache
import uuid
from pathlib import Path

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from mockehr.store.overlay import atomic_write

SIGNING_ALGS = ("RS256", "RS384", "ES384")


class KeyRing:
    FILE_NAME = "keys.json"

    def __init__(self, data_dir: Path | None = None):
        self._path = Path(data_dir) / self.FILE_NAME if data_dir else None
        self._lock = threading.Lock()
        self._current: list = []  # [rsa, ec]
        self._retired: list = []  # old keys still published and accepted
        self._forgers: dict = {}  # kid -> a key of the same type that is never published

    # -- lifecycle --------------------------------------------------------
    def _ensure(self) -> None:
        if self._current:
            return
        with self._lock:
            if self._current:
                return
            if self._path and self._path.exists():
                self._load()
            elif self._path:
                self._current = _new_pair()
                self._save()
            else:
                self._current = list(_first_pair())

    def rotate(self, keep_old: bool = False) -> str:
        """New keys; answers the new RSA key's kid."""
        self._ensure()
        with self._lock:
            self._retired = list(self._current) if keep_old else []
            self._current = _new_pair()
            self._save()
            return self._current[0].kid

    def _save(self) -> None:
        if not self._path:
            return
        body = {"current": [k.as_dict(private=True) for k in self._current],
                "retired": [k.as_dict(private=True) for k in self._retired]}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self._path, orjson.dumps(body), mode=0o600)  # private keys: owner only

    def _load(self) -> None:
        body = orjson.loads(self._path.read_bytes())
        self._current = [_import(k) for k in body["current"]]
        self._retired = [_import(k) for k in body.get("retired", [])]

    # -- use ----------------------------------------------------------------
    @property
    def rsa(self) -> RSAKey:
        self._ensure()
        return self._current[0]

    @property
    def ec(self) -> ECKey:
        self._ensure()
        return self._current[1]

    def key_for(self, alg: str):
        return self.ec if alg.startswith("ES") else self.rsa

    def jwks(self) -> dict:
        self._ensure()
        keys = []
        for key in [*self._current, *self._retired]:
            public = key.as_dict(private=False)
            public["use"] = "sig"
            public["alg"] = "ES384" if key.key_type == "EC" else "RS256"
            keys.append(public)
        return {"keys": keys}

    def sign(self, claims: dict, alg: str = "RS256", typ: str = "JWT", forged: bool = False) -> str:
        """forged (the bad-signature fault): signed by a key that is not in the JWKS, under a
        published kid, so verifiers find the key and the signature fails."""
        key = self.key_for(alg)
        signer = self._forger(key) if forged else key
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, signer, algorithms=[alg])

    def _forger(self, key):
        with self._lock:
            if key.kid not in self._forgers:
                fresh = _new_pair()[0 if key.key_type == "RSA" else 1]
                self._forgers[key.kid] = _import({**fresh.as_dict(private=True), "kid": key.kid})
            return self._forgers[key.kid]

    def verify(self, token: str) -> tuple[dict, dict]:
        """(header, claims) of a token signed by one of our published keys; raises JoseError."""
        self._ensure()
        keys = KeySet([*self._current, *self._retired])
        decoded = jwt.decode(token, keys, algorithms=list(SIGNING_ALGS))
        return decoded.header, decoded.claims


@lru_cache(maxsize=1)
def _first_pair() -> tuple:
    """The first keys of every in-memory server of this process: RSA generation costs ~100 ms, and test
    suites start many servers. Sharing them is harmless: each server's tokens name its own issuer and
    audience, so another server refuses them; a rotation gives a server keys of its own."""
    return tuple(_new_pair())


def _new_pair() -> list:
    stamp = uuid.uuid4().hex[:12]
    rsa = RSAKey.generate_key(2048, parameters={"kid": f"rsa-{stamp}"}, private=True)
    ec = ECKey.generate_key("P-384", parameters={"kid": f"ec-{stamp}"}, private=True)
    return [rsa, ec]


def _import(data: dict):
    return RSAKey.import_key(data) if data["kty"] == "RSA" else ECKey.import_key(data)


__all__ = ["KeyRing", "SIGNING_ALGS", "JoseError"]
