"""The built wheel, installed into a fresh venv outside the repo, serves the default patients."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import requests

from tests.helpers import REPO, ServeProcess, authorized_session

pytestmark = pytest.mark.slow


def test_wheel_installed_elsewhere_serves_default_patients(tmp_path: Path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(REPO)],
                   check=True)
    wheel = next(dist.glob("mockehr-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mockehr/seed_data/Patient.ndjson" in names
    assert "mockehr/launcher/templates/home.html" in names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run([env_dir / "bin" / "python", "-m", "pip", "install", "--quiet", str(wheel)], check=True)

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    expected = sum(1 for line in (REPO / "seed_data" / "Patient.ndjson").read_text().splitlines() if line.strip())
    with ServeProcess(command=[str(env_dir / "bin" / "mockehr")], cwd=workdir) as server:
        assert server.fhir_line == f"FHIR base: {server.url}/fhir"
        http = authorized_session(server.url)
        bundle = http.get(server.fhir_base + "/Patient", params={"_summary": "count"}).json()
        assert bundle["total"] == expected
        home = requests.get(server.url + "/")
        assert home.status_code == 200 and "Patients (" in home.text
        css = requests.get(server.url + "/static/mockehr.css")
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
