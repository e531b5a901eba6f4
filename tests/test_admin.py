"""The control API: who may call it, launches, reset, key rotation, audit."""

from __future__ import annotations

import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.helpers import system_token


def test_reset_drops_writes_clients_and_tokens():
    with ServerThread(Settings(port=0)) as server:
        token = system_token(server.url, "system/*.cruds")
        headers = {"Authorization": f"Bearer {token}"}
        created = requests.post(f"{server.fhir_base}/Patient", json={"resourceType": "Patient"}, headers=headers,
                                timeout=30).json()
        assert requests.post(f"{server.url}/admin/reset", timeout=30).json() == {"reset": True}
        assert requests.get(f"{server.url}/admin/audit", timeout=30).json() == []
        assert requests.get(f"{server.fhir_base}/Patient/{created['id']}", headers=headers,
                            timeout=30).status_code == 401  # the token went with the reset
        fresh = {"Authorization": f"Bearer {system_token(server.url)}"}
        assert requests.get(f"{server.fhir_base}/Patient/{created['id']}", headers=fresh, timeout=30).status_code == 404


def test_rotate_keys_invalidates_old_tokens_unless_kept():
    with ServerThread(Settings(port=0)) as server:
        token = system_token(server.url)
        headers = {"Authorization": f"Bearer {token}"}
        kept = requests.post(f"{server.url}/admin/keys/rotate", json={"keep_old": True}, timeout=30).json()
        jwks = requests.get(f"{server.url}/auth/jwks", timeout=30).json()
        assert kept["kid"] in {k["kid"] for k in jwks["keys"]} and len(jwks["keys"]) == 4
        assert requests.get(f"{server.fhir_base}/Patient?_count=1", headers=headers, timeout=30).status_code == 200
        dropped = requests.post(f"{server.url}/admin/keys/rotate", json={}, timeout=30).json()
        jwks = requests.get(f"{server.url}/auth/jwks", timeout=30).json()
        assert {k["kid"] for k in jwks["keys"]} == {dropped["kid"], dropped["kid"].replace("rsa-", "ec-")}
        refused = requests.get(f"{server.fhir_base}/Patient?_count=1", headers=headers, timeout=30)
        assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]
        bad = requests.post(f"{server.url}/admin/keys/rotate", json={"keep_old": "yes"}, timeout=30)
        assert bad.status_code == 400 and "keep_old" in bad.json()["error"]


def test_admin_token_guards_the_control_api():
    with ServerThread(Settings(port=0, admin_token="s3cret")) as server:
        assert requests.get(f"{server.url}/admin/audit", timeout=30).status_code == 401
        wrong = requests.get(f"{server.url}/admin/audit", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 403
        right = requests.get(f"{server.url}/admin/audit", headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert right.status_code == 200


def test_launch_validation_says_what_is_wrong():
    with ServerThread(Settings(port=0)) as server:
        bad = requests.post(f"{server.url}/admin/launches", json={"patient": "nobody"}, timeout=30)
        assert bad.status_code == 400 and "patient 'nobody'" in bad.json()["error"]
        bad = requests.post(f"{server.url}/admin/launches", json={"pateint": "x"}, timeout=30)
        assert bad.status_code == 400 and "pateint" in bad.json()["error"]
        bad = requests.post(f"{server.url}/admin/launches", data="[", timeout=30,
                            headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
        good = requests.post(f"{server.url}/admin/launches", timeout=30, json={
            "patient": "p00001-diabetes-htn", "app_url": "http://localhost:3000/launch?x=1"}).json()
        assert good["iss"] == server.fhir_base
        assert good["launch_url"] == (f"http://localhost:3000/launch?x=1&launch={good['launch']}"
                                      f"&iss={requests.utils.quote(server.fhir_base, safe='')}")
