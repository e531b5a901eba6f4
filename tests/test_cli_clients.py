"""`mockehr clients add/list/remove` on a data dir, and a served client from it."""

from __future__ import annotations

import re

import requests
from click.testing import CliRunner

from mockehr.cli import main
from mockehr.config import Settings
from mockehr.server import ServerThread


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_add_list_remove_and_use_a_client(tmp_path):
    data = str(tmp_path)
    added = _run("clients", "add", "--data-dir", data, "--auth", "client_secret_basic", "--name", "nightly job")
    assert added.exit_code == 0, added.output
    client_id = re.search(r"client_id: (\S+)", added.output).group(1)
    secret = re.search(r"client_secret: (\S+)", added.output).group(1)

    listed = _run("clients", "list", "--data-dir", data)
    assert client_id in listed.output and "client_credentials" in listed.output and "nightly job" in listed.output

    with ServerThread(Settings(port=0, data_dir=tmp_path)) as server:
        answer = requests.post(f"{server.url}/auth/token", data={"grant_type": "client_credentials",
                                                                "scope": "system/Patient.rs"},
                               auth=(client_id, secret), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "system/Patient.rs"

    removed = _run("clients", "remove", "--data-dir", data, client_id)
    assert removed.exit_code == 0 and f"removed {client_id}" in removed.output
    assert client_id not in _run("clients", "list", "--data-dir", data).output
    again = _run("clients", "remove", "--data-dir", data, client_id)
    assert again.exit_code == 1 and "no client" in again.output


def test_add_refuses_bad_metadata_with_the_reason(tmp_path):
    result = _run("clients", "add", "--data-dir", str(tmp_path), "--redirect-uri", "http://x/#frag")
    assert result.exit_code == 1
    assert "invalid_redirect_uri" in result.output and "fragment" in result.output


def test_token_command_prints_a_working_token():
    with ServerThread(Settings(port=0)) as server:
        result = _run("token", "--url", server.url, "--scope", "system/Patient.rs")
        assert result.exit_code == 0, result.output
        token = result.output.strip()
        read = requests.get(f"{server.fhir_base}/Patient?_count=1", headers={"Authorization": f"Bearer {token}"},
                            timeout=30)
        assert read.status_code == 200
        refused = requests.get(f"{server.fhir_base}/Observation?_count=1",
                               headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert refused.status_code == 403
        bad = _run("token", "--url", server.url, "--scope", "patient/*.rs")
        assert bad.exit_code == 1 and "invalid_scope" in bad.output


def test_launch_command_prints_the_launch_url():
    with ServerThread(Settings(port=0)) as server:
        result = _run("launch", "--url", server.url, "--patient", "p00001-diabetes-htn",
                      "--user", "Practitioner/pr-okafor", "--app-url", "http://localhost:3000/launch")
        assert result.exit_code == 0, result.output
        assert result.output.startswith("http://localhost:3000/launch?launch=")
        assert "iss=" in result.output
        bare = _run("launch", "--url", server.url, "--patient", "p00002-newborn")
        assert bare.exit_code == 0 and bare.output.startswith("launch=") and f"iss={server.fhir_base}" in bare.output
        bad = _run("launch", "--url", server.url, "--patient", "nobody")
        assert bad.exit_code == 1 and "nobody" in bad.output
