"""The CLI mirror of the control API (`mockehr fault|keys|reset|audit|token|launch`) against a real server."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading

import pytest
import requests
from click.testing import CliRunner

from mockehr.cli import main
from mockehr.config import Settings
from mockehr.server import ServerThread
from tests.helpers import REPO, system_token

PATIENT = "p00001-diabetes-htn"


@pytest.fixture(scope="module")
def server():
    with ServerThread(Settings(port=0)) as running:
        yield running


@pytest.fixture
def ehr(server):
    """The shared server, back to its seed state (no faults) for each test."""
    requests.post(f"{server.url}/admin/reset", timeout=30).raise_for_status()
    yield server
    requests.delete(f"{server.url}/admin/faults", timeout=30)


def _run(*args: str, env: dict | None = None):
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# ---- fault ----------------------------------------------------------------------------------

def test_fault_add_list_remove_clear_round_trip(ehr):
    added = _run("fault", "add", "throttle:every=2", "--url", ehr.url)
    assert added.exit_code == 0, added.output
    first = added.output.split()[0]
    assert "answer 429" in added.output and "every 2nd" in added.output

    # it is in force: the 2nd FHIR request is throttled
    assert requests.get(f"{ehr.fhir_base}/metadata", timeout=30).status_code == 200
    throttled = requests.get(f"{ehr.fhir_base}/metadata", timeout=30)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"

    second = _run("fault", "add", "error:status=503,count=2", "--url", ehr.url).output.split()[0]
    assert second != first

    listed = _run("fault", "list", "--url", ehr.url)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split()[:5] == ["ID", "SPEC", "FIRED", "REMAINING", "SPENT"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[first][1:5] == ["throttle:every=2", "1", "-", "no"]
    assert rows[second][1:5] == ["error:status=503,count=2", "0", "2", "no"]

    raw = json.loads(_run("fault", "list", "--json", "--url", ehr.url).output)
    assert [item["id"] for item in raw] == [first, second]
    assert raw[0]["fired"] == 1 and raw[0]["remaining"] is None and raw[1]["remaining"] == 2

    removed = _run("fault", "remove", first, "--url", ehr.url)
    assert removed.exit_code == 0 and f"removed {first}" in removed.output
    assert [item["id"] for item in requests.get(f"{ehr.url}/admin/faults", timeout=30).json()] == [second]
    again = _run("fault", "remove", first, "--url", ehr.url)
    assert again.exit_code == 1 and "(HTTP 404)" in again.output

    cleared = _run("fault", "clear", "--url", ehr.url)
    assert cleared.exit_code == 0 and "cleared 1 fault" in cleared.output
    assert _run("fault", "list", "--url", ehr.url).output.strip() == "no faults"
    assert requests.get(f"{ehr.url}/admin/faults", timeout=30).json() == []


def test_bad_spec_exits_2_with_the_parser_message_and_sends_nothing():
    # against a port where nothing listens: exit 2 (not 1) shows nothing was sent
    dead = f"http://127.0.0.1:{_free_port()}"
    result = _run("fault", "add", "throtle", "--url", dead)
    assert result.exit_code == 2
    assert result.output.strip() == "Error: unknown kind 'throtle' (did you mean 'throttle'?)"
    bad_value = _run("fault", "add", "error:status=200", "--url", dead)
    assert bad_value.exit_code == 2 and "'status' must be an HTTP error status 400-599" in bad_value.output


def test_bad_spec_adds_nothing_to_a_real_server(ehr):
    result = _run("fault", "add", "latency", "--url", ehr.url)
    assert result.exit_code == 2 and "latency needs 'ms' (e.g. 'latency:ms=200')" in result.output
    assert requests.get(f"{ehr.url}/admin/faults", timeout=30).json() == []


def test_bad_spec_from_a_real_process_is_one_line_on_stderr():
    proc = subprocess.run([sys.executable, "-m", "mockehr", "fault", "add", "throttle:retry=2"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr == "Error: throttle does not take 'retry' (did you mean 'retry_after'?)\n"
    assert proc.stdout == ""


# ---- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["fault", "list"], ["fault", "add", "throttle"], ["fault", "clear"], ["fault", "remove", "f1"],
    ["keys", "rotate"], ["reset"], ["audit"], ["audit", "--follow"], ["token"], ["token", "--patient", PATIENT],
    ["launch", "--patient", PATIENT],
])
def test_unreachable_server_exits_1_cleanly(command):
    dead = f"http://127.0.0.1:{_free_port()}"
    result = _run(*command, "--url", dead)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot reach mockehr at {dead}: ")
    assert len(result.output.splitlines()) == 1


def test_unreachable_server_from_a_real_process_has_no_traceback():
    dead = f"http://127.0.0.1:{_free_port()}"
    proc = subprocess.run([sys.executable, "-m", "mockehr", "audit"], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "MOCKEHR_URL": dead})
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Error: cannot reach mockehr at {dead}: ") and "Traceback" not in proc.stderr


def test_bad_url_is_a_usage_error():
    result = _run("reset", "--url", "localhost:8080")
    assert result.exit_code == 2 and "not an http(s) URL" in result.output


def test_admin_token_wrong_missing_and_right():
    with ServerThread(Settings(port=0, admin_token="s3cret")) as guarded:
        wrong = _run("keys", "rotate", "--url", guarded.url, "--admin-token", "nope")
        assert wrong.exit_code == 1
        assert wrong.output.strip() == "Error: wrong admin token (HTTP 403)"
        missing = _run("audit", "--url", guarded.url)
        assert missing.exit_code == 1
        assert "needs Authorization: Bearer" in missing.output and "(HTTP 401)" in missing.output
        # the right token, from the environment like the server's own MOCKEHR_ADMIN_TOKEN
        right = _run("keys", "rotate", "--url", guarded.url, env={"MOCKEHR_ADMIN_TOKEN": "s3cret"})
        assert right.exit_code == 0, right.output
        launched = _run("launch", "--url", guarded.url, "--admin-token", "s3cret", "--patient", PATIENT)
        assert launched.exit_code == 0 and launched.output.startswith("launch=")
        refused = _run("launch", "--url", guarded.url, "--admin-token", "nope", "--patient", PATIENT)
        assert refused.exit_code == 1 and "wrong admin token" in refused.output


def test_a_server_error_message_is_shown():
    with ServerThread(Settings(port=0)) as running:
        bad = _run("launch", "--url", running.url, "--patient", PATIENT, "--sim-error", "nope")
        assert bad.exit_code == 1
        assert "unknown sim_error 'nope'" in bad.output and "(HTTP 400)" in bad.output


# ---- keys, reset --------------------------------------------------------------------------

def test_keys_rotate_prints_a_kid_in_the_jwks(ehr):
    config = requests.get(f"{ehr.fhir_base}/.well-known/smart-configuration", timeout=30).json()
    before = {key["kid"] for key in requests.get(config["jwks_uri"], timeout=30).json()["keys"]}

    kept = _run("keys", "rotate", "--keep-old", "--url", ehr.url)
    assert kept.exit_code == 0, kept.output
    kid = kept.output.strip()
    assert kid and kid not in before
    after_keep = {key["kid"] for key in requests.get(config["jwks_uri"], timeout=30).json()["keys"]}
    assert kid in after_keep and before <= after_keep

    dropped = _run("keys", "rotate", "--url", ehr.url).output.strip()
    after_drop = {key["kid"] for key in requests.get(config["jwks_uri"], timeout=30).json()["keys"]}
    assert dropped in after_drop and kid not in after_drop


def test_reset_puts_data_and_audit_back(ehr):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {system_token(ehr.url)}"
    created = session.post(f"{ehr.fhir_base}/Observation", timeout=30, json={
        "resourceType": "Observation", "status": "final", "code": {"text": "mood"},
        "subject": {"reference": f"Patient/{PATIENT}"}})
    assert created.status_code == 201
    location = created.headers["Location"].split("/_history")[0]

    result = _run("reset", "--url", ehr.url)
    assert result.exit_code == 0 and "seed state" in result.output

    assert session.get(location, timeout=30).status_code == 401          # tokens are gone too
    fresh = {"Authorization": f"Bearer {system_token(ehr.url)}"}
    assert requests.get(location, headers=fresh, timeout=30).status_code == 404
    assert not [e for e in requests.get(f"{ehr.url}/admin/audit", timeout=30).json() if e.get("status") == 201]


# ---- audit --------------------------------------------------------------------------------

def test_audit_lines_json_and_type_filter(ehr):
    requests.get(f"{ehr.fhir_base}/Patient", timeout=30)                     # 401: no token
    launched = _run("launch", "--url", ehr.url, "--patient", PATIENT, "--user", "Practitioner/pr-okafor")
    assert launched.exit_code == 0

    events = [json.loads(line) for line in _run("audit", "--json", "--url", ehr.url).output.splitlines()]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    fhir = [e for e in events if e["type"] == "fhir"]
    assert fhir[-1]["status"] == 401 and fhir[-1]["outcome"] == "failure"
    assert any(e["type"] == "launch" and e["patient"] == PATIENT for e in events)

    lines = _run("audit", "--url", ehr.url).output.splitlines()
    assert len(lines) == len(events)
    refused = next(line for line in lines if "GET /fhir/Patient -> 401" in line)
    assert refused.startswith(fhir[-1]["time"]) and " fhir " in refused and " failure " in refused
    launch_line = next(line for line in lines if " launch " in line)
    assert f"user=Practitioner/pr-okafor patient={PATIENT}" in launch_line

    only = [json.loads(line) for line in _run("audit", "--json", "--type", "launch", "--url", ehr.url)
            .output.splitlines()]
    assert only and {e["type"] for e in only} == {"launch"}


def test_audit_follow_prints_new_events_until_ctrl_c(ehr):
    requests.get(f"{ehr.fhir_base}/Patient", timeout=30)  # one event before we start
    proc = subprocess.Popen([sys.executable, "-m", "mockehr", "audit", "--follow", "--json", "--url", ehr.url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=30))
        assert first["type"] == "fhir" and first["path"].startswith("/fhir/Patient")
        for n in range(2):
            requests.get(f"{ehr.fhir_base}/Observation", params={"n": n}, timeout=30)
            event = json.loads(lines.get(timeout=30))
            assert event["id"] > first["id"] and event["path"] == f"/fhir/Observation?n={n}"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


# ---- token, launch ------------------------------------------------------------------------

def test_token_with_patient_mints_a_token_for_that_patient(ehr):
    result = _run("token", "--patient", PATIENT, "--url", ehr.url)
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert _jwt_claims(token)["patient"] == PATIENT
    headers = {"Authorization": f"Bearer {token}"}
    own = requests.get(f"{ehr.fhir_base}/Patient/{PATIENT}", headers=headers, timeout=30)
    assert own.status_code == 200
    other = requests.get(f"{ehr.fhir_base}/Patient/p00002-newborn", headers=headers, timeout=30)
    assert other.status_code in (403, 404)

    full = json.loads(_run("token", "--patient", PATIENT, "--scope", "patient/Observation.rs", "--json",
                           "--url", ehr.url).output)
    assert full["patient"] == PATIENT and full["scope"] == "patient/Observation.rs"
    assert full["token_type"].lower() == "bearer" and full["expires_in"] > 0
    # minted through the token code path: audited
    assert any(e["type"] == "token" and e.get("patient") == PATIENT
               for e in requests.get(f"{ehr.url}/admin/audit", timeout=30).json())

    bad = _run("token", "--patient", "nobody", "--url", ehr.url)
    assert bad.exit_code == 1 and "(HTTP 400)" in bad.output


def test_token_without_context_keeps_client_credentials(ehr):
    result = _run("token", "--url", ehr.url, "--scope", "system/Patient.rs", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["scope"] == "system/Patient.rs" and "patient" not in _jwt_claims(answer["access_token"])
    events = requests.get(f"{ehr.url}/admin/audit", timeout=30).json()
    assert [e["grant_type"] for e in events if e["type"] == "token"] == ["client_credentials"]


def test_launch_with_sim_error(ehr):
    result = _run("launch", "--url", ehr.url, "--patient", PATIENT, "--app-url", "http://localhost:3000/launch",
                  "--sim-error", "auth_invalid_scope")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("http://localhost:3000/launch?launch=")
    launch_event = [e for e in requests.get(f"{ehr.url}/admin/audit", timeout=30).json() if e["type"] == "launch"]
    assert launch_event[-1]["sim_error"] == "auth_invalid_scope"
