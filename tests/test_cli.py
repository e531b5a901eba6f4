"""The `mockehr` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import requests
from click.testing import CliRunner

from mockehr.cli import main
from tests.helpers import ServeProcess, authorized_session


def test_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output and "seed" in result.output


def test_serve_rejects_bad_port_with_usage_error():
    result = CliRunner().invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "70000" in result.output


def test_serve_rejects_dataset_with_patients(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--dataset", str(tmp_path), "--patients", "3"])
    assert result.exit_code == 2
    assert "--dataset cannot be combined" in result.output


def test_seed_writes_a_dataset_that_serve_serves(tmp_path):
    out = tmp_path / "data"
    result = CliRunner().invoke(main, ["seed", "--patients", "3", "--seed", "11", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["patients"] == 3 and manifest["seed"] == 11
    assert f"to {out}" in result.output
    with ServeProcess("--dataset", str(out)) as server:
        bundle = authorized_session(server.url).get(server.fhir_base + "/Patient", params={"_summary": "count"}).json()
        assert bundle["total"] == 3


def test_serve_port_zero_prints_root_and_fhir_base():
    with ServeProcess() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert not server.url.endswith(":0")
        assert server.fhir_line == f"FHIR base: {server.url}/fhir"
        assert requests.get(server.fhir_base + "/metadata").json()["resourceType"] == "CapabilityStatement"


def test_serve_generates_patients_with_seed():
    with ServeProcess("--patients", "4", "--seed", "3") as server:
        bundle = authorized_session(server.url).get(server.fhir_base + "/Patient", params={"_summary": "count"}).json()
        assert bundle["total"] == 4


def test_serve_reports_a_taken_port():
    with ServeProcess() as server:
        port = server.url.rsplit(":", 1)[1]
        result = subprocess.run([sys.executable, "-m", "mockehr", "serve", "--port", port],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert f"port {port} is in use" in result.stderr
