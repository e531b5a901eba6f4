"""Nothing acknowledged is lost: restarts on the same --data-dir, and a SIGKILL mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
import requests

from mockehr.config import Settings
from mockehr.server import ServerThread
from mockehr.store.overlay import Overlay
from tests.fhir.conftest import ids
from tests.helpers import authorized_session

NEW_PATIENT = {"resourceType": "Patient", "name": [{"family": "Durable"}], "gender": "other"}


def _thread_server(dataset_dir: Path, data_dir: Path) -> ServerThread:
    return ServerThread(Settings(port=0, dataset_dir=dataset_dir, data_dir=data_dir)).start()


def test_writes_survive_a_restart_with_their_versions(dataset_dir, tmp_path):
    data_dir = tmp_path / "state"
    first = _thread_server(dataset_dir, data_dir)
    try:
        base = first.fhir_base
        http = authorized_session(first.url)
        created = http.post(f"{base}/Patient", json=NEW_PATIENT, timeout=30).json()
        new_id = created["id"]
        updated = dict(created, gender="female")
        assert http.put(f"{base}/Patient/{new_id}", json=updated, timeout=30).status_code == 200
        seed = http.get(f"{base}/Patient/pat-2", timeout=30).json()
        assert http.put(f"{base}/Patient/pat-2", json=dict(seed, active=True), timeout=30).status_code == 200
        assert http.delete(f"{base}/Patient/pat-5", timeout=30).status_code == 200
    finally:
        first.stop()
    assert (data_dir / Overlay.FILE_NAME).is_file()

    second = _thread_server(dataset_dir, data_dir)
    try:
        base = second.fhir_base
        http = authorized_session(second.url)
        current = http.get(f"{base}/Patient/{new_id}", timeout=30)
        assert current.status_code == 200
        assert current.headers["ETag"] == 'W/"2"'
        assert current.json()["gender"] == "female"
        assert http.get(f"{base}/Patient/{new_id}/_history/1", timeout=30).json()["gender"] == "other"
        history = http.get(f"{base}/Patient/{new_id}/_history", timeout=30).json()
        assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"', 'W/"1"']
        assert http.get(f"{base}/Patient/pat-2", timeout=30).json()["active"] is True
        assert http.get(f"{base}/Patient/pat-2/_history/1", timeout=30).json()["active"] is False
        assert http.get(f"{base}/Patient/pat-5", timeout=30).status_code == 410
        search = http.get(f"{base}/Patient", params={"family": "durable"}, timeout=30).json()
        assert ids(search) == [new_id]
        assert http.get(f"{base}/Patient", params={"active": "true"}, timeout=30).json()["total"] == 3
        # reset drops the overlay on disk too
        second.app.extensions["mockehr.store"].reset()
    finally:
        second.stop()

    third = _thread_server(dataset_dir, data_dir)
    try:
        http = authorized_session(third.url)
        assert http.get(f"{third.fhir_base}/Patient/{new_id}", timeout=30).status_code == 404
        assert http.get(f"{third.fhir_base}/Patient/pat-5", timeout=30).status_code == 200
    finally:
        third.stop()


def _spawn(dataset_dir: Path, data_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with log.open("ab") as stderr:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "mockehr", "serve", "--port", "0", "--dataset", str(dataset_dir),
             "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=Path(__file__).resolve().parents[2])
    line = proc.stdout.readline()
    if not line.startswith("mockehr serving http://"):
        proc.kill()
        proc.wait()
        raise AssertionError(f"no URL on stdout: {line!r}; stderr: {log.read_text()[-2000:]}")
    return proc, line.split()[-1].rstrip("/")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_every_acknowledged_create_survives_sigkill(dataset_dir, tmp_path):
    data_dir = tmp_path / "state"
    log = tmp_path / "server.log"
    proc, root = _spawn(dataset_dir, data_dir, log)
    acknowledged: list[str] = []
    enough = threading.Event()
    stop = threading.Event()

    def writer():
        with authorized_session(root) as session:
            while not stop.is_set():
                try:
                    response = session.post(f"{root}/fhir/Patient", json=NEW_PATIENT, timeout=30)
                except requests.RequestException:
                    return  # the server is gone
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])
                    if len(acknowledged) >= 25:
                        enough.set()

    thread = threading.Thread(target=writer, daemon=True)
    try:
        thread.start()
        assert enough.wait(timeout=120), f"writes did not go through; stderr: {log.read_text()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)  # while a write may be in flight
        proc.wait(timeout=30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        thread.join(timeout=60)
    assert len(acknowledged) >= 25

    overlay = orjson.loads((data_dir / Overlay.FILE_NAME).read_bytes())  # parses: never half-written
    stored = {doc["id"] for doc in overlay["versions"].values()}
    assert set(acknowledged) <= stored

    proc, root = _spawn(dataset_dir, data_dir, log)
    try:
        assert not [p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")]  # no temp files left over
        with authorized_session(root) as session:
            for rid in acknowledged:
                assert session.get(f"{root}/fhir/Patient/{rid}", timeout=30).status_code == 200, rid
            found = session.get(f"{root}/fhir/Patient", params={"family": "durable", "_count": "1000"},
                                timeout=30).json()
            assert set(acknowledged) <= set(ids(found))
            assert found["total"] in (len(acknowledged), len(acknowledged) + 1)  # + at most the one in flight
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
