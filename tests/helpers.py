"""Shared test helpers: run `mockehr serve` as a real process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


class ServeProcess:
    """`mockehr serve --port 0 ...` in a subprocess; reads the root URL it prints."""

    def __init__(self, *args: str, command: list[str] | None = None, cwd: Path | None = None):
        self.command = (command or [sys.executable, "-m", "mockehr"]) + ["serve", "--port", "0", *args]
        self.cwd = cwd or REPO
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60) -> "ServeProcess":
        self.proc = subprocess.Popen(self.command, cwd=self.cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().strip()
        if not first.startswith("mockehr serving "):
            self.proc.kill()
            raise AssertionError(f"mockehr serve printed {first!r}; stderr: {self.proc.stderr.read()[:2000]}")
        self.url = first.split()[-1].rstrip("/")
        self.fhir_line = self.proc.stdout.readline().strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/fhir/metadata", timeout=5).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.02)
        raise AssertionError("mockehr serve did not answer /fhir/metadata in time")

    @property
    def fhir_base(self) -> str:
        return self.url + "/fhir"

    def kill(self) -> None:
        self._end(self.proc.kill)

    def stop(self) -> None:
        self._end(self.proc.terminate)

    def _end(self, signal_it) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            signal_it()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def system_token(root: str, scope: str = "system/*.cruds") -> str:
    """An access token from a real backend-services client (client_secret_basic; see tests/auth for JWT)."""
    registration = requests.post(f"{root}/auth/register", timeout=30, json={
        "client_name": "mockehr test suite", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic", "scope": scope})
    assert registration.status_code == 201, registration.text
    client = registration.json()
    answer = requests.post(f"{root}/auth/token", timeout=30, data={"grant_type": "client_credentials", "scope": scope},
                           auth=(client["client_id"], client["client_secret"]))
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def authorized_session(root: str, scope: str = "system/*.cruds") -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {system_token(root, scope)}"
    return session
