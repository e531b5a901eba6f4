"""Under --data-dir, keys, clients and grants survive a restart: issued tokens stay valid, revoked ones don't."""

from __future__ import annotations

import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.helpers import system_token

PUBLIC = "http://mockehr.test"  # the same public URL across restarts, so aud and iss stay the same


def _server(data_dir) -> ServerThread:
    return ServerThread(Settings(port=0, data_dir=data_dir, public_url=PUBLIC)).start()


def _status(server: ServerThread, token: str) -> int:
    # Requests go to the real port; the public URL only shapes what the server says about itself.
    return requests.get(f"{server.local_url}/fhir/Patient?_count=1", headers={"Authorization": f"Bearer {token}"},
                        timeout=30).status_code


def test_tokens_survive_a_restart_and_revocations_too(tmp_path):
    first = _server(tmp_path)
    try:
        keep = system_token(f"{first.local_url}")
        drop = system_token(f"{first.local_url}")
        assert _status(first, keep) == 200
        auth = first.app.extensions["mockehr.auth"]
        auth.state.revoke_grant(auth.state.grant_for_jti(auth.keys.verify(drop)[1]["jti"]))
        assert _status(first, drop) == 401
        jwks = requests.get(f"{first.local_url}/auth/jwks", timeout=30).json()
    finally:
        first.stop()

    second = _server(tmp_path)
    try:
        assert requests.get(f"{second.local_url}/auth/jwks", timeout=30).json() == jwks
        assert _status(second, keep) == 200
        assert _status(second, drop) == 401
    finally:
        second.stop()
