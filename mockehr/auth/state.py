"""The authorization server's memory: clients (persisted under --data-dir),
launches, authorization codes, grants and the indexes that find them."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import orjson
from tinydb import TinyDB
from tinydb.storages import MemoryStorage

from mockehr.auth.model import (
    AuthContext, Client, CodeRecord, Grant, Launch, PendingAuthorization, digest, new_secret,
)
from mockehr.store.overlay import DurableJSONStorage, atomic_write

CODE_LIFETIME = 600  # RFC 6749 recommends at most 10 minutes
LAUNCH_LIFETIME = 3600
PENDING_LIFETIME = 1800  # a user has half an hour to get through login, pickers and consent


class ClientRegistry:
    FILE_NAME = "clients.json"

    def __init__(self, data_dir: Path | None, clock: Callable[[], float]):
        from mockehr.auth.registration import validate_client_metadata

        self._validate = validate_client_metadata
        self._clock = clock
        if data_dir is None:
            self._db = TinyDB(storage=MemoryStorage)
        else:
            self._db = TinyDB(Path(data_dir) / self.FILE_NAME, storage=DurableJSONStorage)
        self._table = self._db.table("clients", cache_size=0)
        self._clients: dict[str, Client] = {}
        for doc in self._table.all():
            self._clients[doc["client_id"]] = self._from_doc(doc)

    def _from_doc(self, doc: dict) -> Client:
        return Client(doc["client_id"], self._validate(doc["metadata"]), doc.get("secret_digest"),
                      doc.get("auto_registered", False), doc.get("created", 0.0))

    def get(self, client_id: str | None) -> Client | None:
        return self._clients.get(client_id) if client_id else None

    def all(self) -> list[Client]:
        return sorted(self._clients.values(), key=lambda c: c.created)

    def register(self, metadata, client_id: str | None = None, auto: bool = False) -> tuple[Client, str | None]:
        """(client, secret in the clear or None). The secret is shown once and kept as a digest."""
        secret = new_secret() if metadata.token_endpoint_auth_method.startswith("client_secret") else None
        client = Client(client_id or uuid.uuid4().hex, metadata, digest(secret) if secret else None, auto,
                        self._clock())
        self._table.insert({"client_id": client.client_id, "metadata": metadata.to_response(),
                            "secret_digest": client.secret_digest, "auto_registered": auto,
                            "created": client.created})
        self._clients[client.client_id] = client
        return client, secret

    def remove(self, client_id: str) -> bool:
        if client_id not in self._clients:
            return False
        del self._clients[client_id]
        self._table.remove(lambda doc: doc["client_id"] == client_id)
        return True

    def clear(self) -> None:
        self._clients.clear()
        self._table.truncate()


class GrantFile:
    """Grants under --data-dir, so tokens issued before a restart still work (and revoked ones don't)."""

    FILE_NAME = "grants.json"

    def __init__(self, data_dir: Path | None):
        self.path = Path(data_dir) / self.FILE_NAME if data_dir else None

    def load(self) -> list[Grant]:
        if not self.path or not self.path.exists():
            return []
        return [grant_from_doc(doc) for doc in orjson.loads(self.path.read_bytes())]

    def save(self, grants: list[Grant]) -> None:
        if self.path:
            atomic_write(self.path, orjson.dumps([grant_to_doc(g) for g in grants]))


def grant_to_doc(grant: Grant) -> dict:
    doc = dataclasses.asdict(grant)
    doc["retired_refresh"] = sorted(grant.retired_refresh)
    doc["access_jtis"] = sorted(grant.access_jtis)
    return doc


def grant_from_doc(doc: dict) -> Grant:
    doc = dict(doc)
    doc["context"] = AuthContext(**doc["context"])
    doc["retired_refresh"] = set(doc["retired_refresh"])
    doc["access_jtis"] = set(doc["access_jtis"])
    return Grant(**doc)


class AuthState:
    def __init__(self, data_dir: Path | None = None, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.lock = threading.RLock()
        self.clients = ClientRegistry(data_dir, clock)
        self._grant_file = GrantFile(data_dir)
        self.launches: dict[str, Launch] = {}
        self.pending: dict[str, PendingAuthorization] = {}
        self.codes: dict[str, CodeRecord] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_index: dict[str, str] = {}  # refresh digest (current or retired) -> grant id
        self.jti_index: dict[str, str] = {}  # access token jti -> grant id
        self.assertion_jtis: dict[str, float] = {}  # client assertion jti -> its exp (replay guard)
        for grant in self._grant_file.load():
            self._index_grant(grant)

    def _index_grant(self, grant: Grant) -> None:
        self.grants[grant.grant_id] = grant
        for jti in grant.access_jtis:
            self.jti_index[jti] = grant.grant_id
        for token_digest in [*grant.retired_refresh, grant.refresh_digest]:
            if token_digest:
                self.refresh_index[token_digest] = grant.grant_id

    def _saved(self) -> None:
        """Write the grants out (under --data-dir) before the change is acknowledged."""
        self._grant_file.save(list(self.grants.values()))

    def reset(self) -> None:
        with self.lock:
            self.clients.clear()
            for table in (self.launches, self.pending, self.codes, self.grants, self.refresh_index, self.jti_index,
                          self.assertion_jtis):
                table.clear()
            self._saved()

    # -- launches -----------------------------------------------------------
    def add_launch(self, **context) -> Launch:
        now = self.clock()
        launch = Launch(launch_id=new_secret(12), created=now, expires=now + LAUNCH_LIFETIME, **context)
        with self.lock:
            self.launches[launch.launch_id] = launch
        return launch

    def launch(self, launch_id: str) -> Launch | None:
        launch = self.launches.get(launch_id)
        if launch is None or launch.expires < self.clock():
            return None
        return launch

    # -- requests waiting for the user (login, pickers, consent) -------------
    def add_pending(self, req) -> PendingAuthorization:
        now = self.clock()
        pending = PendingAuthorization(new_secret(16), req, AuthContext(nonce=req.nonce, sim_error=req.sim_error), new_secret(16), now,
                                       now + PENDING_LIFETIME)
        with self.lock:
            for old_id, old in list(self.pending.items()):
                if old.expires < now:
                    del self.pending[old_id]
            self.pending[pending.request_id] = pending
        return pending

    def pending_request(self, request_id: str | None) -> PendingAuthorization | None:
        pending = self.pending.get(request_id or "")
        if pending is None or pending.expires < self.clock():
            return None
        return pending

    def finish_pending(self, request_id: str) -> None:
        with self.lock:
            self.pending.pop(request_id, None)

    # -- codes --------------------------------------------------------------
    def add_code(self, client_id: str, redirect_uri: str, scope: str, context: AuthContext,
                 challenge: str | None, challenge_method: str | None, dpop_jkt: str | None = None) -> str:
        code = new_secret()
        record = CodeRecord(digest(code), client_id, redirect_uri, scope, context, challenge, challenge_method,
                            self.clock() + CODE_LIFETIME, dpop_jkt=dpop_jkt)
        with self.lock:
            self.codes[record.code_digest] = record
        return code

    def code(self, code: str) -> CodeRecord | None:
        record = self.codes.get(digest(code))
        if record is None or record.expires < self.clock():
            return None
        return record

    # -- grants -------------------------------------------------------------
    def add_grant(self, client_id: str, scope: str, context: AuthContext) -> Grant:
        grant = Grant(uuid.uuid4().hex, client_id, scope, context, self.clock())
        with self.lock:
            self.grants[grant.grant_id] = grant
            self._saved()
        return grant

    def attach_access_token(self, grant: Grant, jti: str) -> None:
        with self.lock:
            grant.access_jtis.add(jti)
            self.jti_index[jti] = grant.grant_id
            self._saved()

    def rotate_refresh_token(self, grant: Grant) -> str:
        """A new refresh token for the grant; the previous one becomes a reuse tripwire."""
        token = new_secret()
        with self.lock:
            if grant.refresh_digest:
                grant.retired_refresh.add(grant.refresh_digest)
            grant.refresh_digest = digest(token)
            self.refresh_index[grant.refresh_digest] = grant.grant_id
            self._saved()
        return token

    def grant_for_refresh(self, token: str) -> tuple[Grant | None, bool]:
        """(grant, is_current): a retired token finds its grant with is_current False."""
        token_digest = digest(token)
        grant = self.grants.get(self.refresh_index.get(token_digest, ""))
        if grant is None:
            return None, False
        return grant, grant.refresh_digest == token_digest

    def grant_for_jti(self, jti: str) -> Grant | None:
        return self.grants.get(self.jti_index.get(jti, ""))

    def revoke_grant(self, grant: Grant) -> None:
        with self.lock:
            grant.revoked = True
            self._saved()

    def revoke_all(self) -> int:
        """Every grant issued so far stops working (the revoke-all fault); answers how many."""
        with self.lock:
            live = [grant for grant in self.grants.values() if not grant.revoked]
            for grant in live:
                grant.revoked = True
            self._saved()
            return len(live)

    def remember_assertion(self, jti: str, exp: float) -> bool:
        """False if this client-assertion jti was seen before (a replay)."""
        now = self.clock()
        with self.lock:
            for old, old_exp in list(self.assertion_jtis.items()):
                if old_exp < now - 600:
                    del self.assertion_jtis[old]
            if jti in self.assertion_jtis:
                return False
            self.assertion_jtis[jti] = exp
            return True
