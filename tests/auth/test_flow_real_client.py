"""A real client exercises PAR and DPoP: openid-client 6 (built on oauth4webapi, the Node client
examples/node already installs) runs a whole standalone launch against a server that requires PAR
and DPoP nonces: push with a DPoP proof, authorize with request_uri, DPoP-bound code exchange with
its id_token checked, FHIR read and userinfo with proofs, key-bound refresh. The script is
tests/auth/node/par_dpop_client.mjs; it prints one JSON line of findings, checked here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import jwt
import pytest

from tests.auth.conftest import Ehr, start
from tests.helpers import REPO

SCRIPT = Path(__file__).parent / "node" / "par_dpop_client.mjs"
OPENID_CLIENT = REPO / "examples" / "node" / "node_modules" / "openid-client" / "build" / "index.js"

pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="node is needed (.ci/run installs it)")


@pytest.fixture(scope="module")
def openid_client() -> Path:
    if not OPENID_CLIENT.exists():  # .ci/run installs examples/node's packages; else do it here
        if not shutil.which("npm"):
            pytest.skip("openid-client is not installed and npm is missing")
        installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REPO / "examples" / "node",
                                   capture_output=True, text=True, timeout=600)
        assert installed.returncode == 0, installed.stderr[-3000:]
    return OPENID_CLIENT


def test_openid_client_completes_a_par_and_dpop_launch(dataset_dir, openid_client):
    server = start(dataset_dir, auto_approve=True, require_par=True, dpop_nonce=True)
    try:
        ehr = Ehr(server)
        env = {**os.environ, "MOCKEHR_FHIR_BASE": ehr.fhir_base, "OPENID_CLIENT": str(openid_client)}
        run = subprocess.run(["node", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
        found = json.loads(run.stdout.strip().splitlines()[-1])
        assert found["authorize_params"] == ["client_id", "request_uri"]  # the request itself was pushed
        assert found["authorize_status"] == 302
        assert found["token_type"].lower() == "dpop" and found["refreshed_token_type"].lower() == "dpop"
        assert found["patient"] == "pat-a" and found["read_status"] == 200 and found["read_id"] == "pat-a"
        assert found["userinfo_fhirUser"].startswith(ehr.fhir_base + "/")
        assert found["thief"] == "invalid_grant"
        assert found["bearer_status"] == 401 and 'DPoP error="invalid_token"' in found["bearer_challenge"]
        claims = ehr.verify_access_token(found["access_token"])
        assert set(claims["cnf"]) == {"jkt"}
        assert jwt.get_unverified_header(found["access_token"])["typ"] == "at+jwt"
        # what the server saw: openid-client learnt the nonce from the push's use_dpop_nonce answer, retried,
        # and kept using it (the token endpoint and the FHIR API share the origin); the thief's new key had
        # to learn it too before being refused
        events = ehr.audit()
        assert [e["outcome"] for e in events if e["type"] == "par"] == ["failure", "success"]
        refusals = [(e["endpoint"], e["error"]) for e in events if e["type"] == "dpop"]
        assert refusals == [("/auth/par", "use_dpop_nonce"), ("/auth/token", "use_dpop_nonce"),
                            ("/auth/token", "invalid_grant"), ("/fhir/Patient/pat-a", "invalid_token")]
        issued = [e for e in events if e["type"] == "token" and e["outcome"] == "success"]
        assert [e["grant_type"] for e in issued] == ["authorization_code", "refresh_token"]
        assert all(e["token_type"] == "DPoP" and e["dpop_jkt"] == claims["cnf"]["jkt"] for e in issued)
    finally:
        server.stop()
