"""The management page lists live grants and revokes them (CSRF-protected)."""

from __future__ import annotations

import re

import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.helpers import system_token


def test_manage_lists_and_revokes_a_grant():
    with ServerThread(Settings(port=0)) as server:
        config = requests.get(f"{server.fhir_base}/.well-known/smart-configuration", timeout=30).json()
        manage_url = config["management_endpoint"]
        assert manage_url == f"{server.url}/auth/manage"
        token = system_token(server.url, "system/Patient.rs")
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{server.fhir_base}/Patient?_count=1", headers=headers, timeout=30).status_code == 200

        browser = requests.Session()
        page = browser.get(manage_url, timeout=30)
        assert page.status_code == 200 and "system/Patient.rs" in page.text
        grant_id = re.search(r'name="grant_id" value="([^"]+)"', page.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

        forged = requests.post(f"{server.url}/auth/manage/revoke", data={"grant_id": grant_id, "csrf": csrf},
                               timeout=30)  # no cookie: another site cannot revoke
        assert forged.status_code == 400
        assert requests.get(f"{server.fhir_base}/Patient?_count=1", headers=headers, timeout=30).status_code == 200

        done = browser.post(f"{server.url}/auth/manage/revoke", data={"grant_id": grant_id, "csrf": csrf},
                            timeout=30)
        assert done.status_code == 200 and "was revoked" in done.text and "system/Patient.rs" not in done.text
        assert requests.get(f"{server.fhir_base}/Patient?_count=1", headers=headers, timeout=30).status_code == 401


def test_capability_statement_lists_manage_in_oauth_uris():
    with ServerThread(Settings(port=0)) as server:
        statement = requests.get(f"{server.fhir_base}/metadata", timeout=30).json()
        uris = {e["url"]: e["valueUri"] for e in statement["rest"][0]["security"]["extension"][0]["extension"]}
        assert uris["manage"] == f"{server.url}/auth/manage"
        assert set(uris) == {"authorize", "token", "register", "introspect", "revoke", "manage"}
