"""`mockehr serve --json` and `--ready-file`: how suites in other languages learn the URLs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import requests

from tests.helpers import REPO


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mockehr", "serve", "--port", "0", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_json_prints_one_line_with_the_urls_and_nothing_else_on_stdout():
    proc = _serve("--json", "--auto-approve")
    try:
        line = proc.stdout.readline()
        ready = json.loads(line)
        assert set(ready) == {"url", "fhir_base", "smart_configuration", "port"}
        assert ready["url"] == f"http://127.0.0.1:{ready['port']}"
        assert ready["fhir_base"] == ready["url"] + "/fhir"
        discovery = requests.get(ready["smart_configuration"], timeout=30)  # listening already
        assert discovery.status_code == 200 and discovery.json()["issuer"] == ready["fhir_base"]
        assert requests.post(ready["url"] + "/admin/faults", json={"spec": "throttle:every=1"},
                             timeout=30).status_code == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""  # the access log goes to stderr: stdout stays machine-readable
    assert "GET /fhir/.well-known/smart-configuration" in err


def test_ready_file_appears_when_listening_and_goes_at_exit(tmp_path):
    ready_file = tmp_path / "mockehr.json"
    proc = _serve("--ready-file", str(ready_file), "--public-url", "http://ehr.test:9000")
    try:
        deadline = time.monotonic() + 60
        while not ready_file.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no ready file"
            time.sleep(0.01)
        ready = json.loads(ready_file.read_text())
        assert ready["pid"] == proc.pid
        assert ready["url"] == "http://ehr.test:9000"  # the URLs clients use
        assert ready["smart_configuration"] == "http://ehr.test:9000/fhir/.well-known/smart-configuration"
        local = f"http://127.0.0.1:{ready['port']}"  # where to reach it from this machine
        assert requests.get(local + "/fhir/metadata", timeout=30).status_code == 200
        assert proc.stdout.readline().startswith("mockehr serving http://ehr.test:9000/")  # humans still told
        assert not list(tmp_path.glob("*.tmp"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert not ready_file.exists()


def test_a_bad_fault_stops_serve_before_any_ready_signal(tmp_path):
    ready_file = tmp_path / "ready.json"
    proc = _serve("--json", "--ready-file", str(ready_file), "--fault", "throtle")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == ""
    assert "unknown kind 'throtle' (did you mean 'throttle'?)" in err
    assert not ready_file.exists()
