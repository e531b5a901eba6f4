"""examples/node: the Node suite of docs/other-languages.md (fhirclient.js, openid-client, the control
API), run with `npm test` exactly as the guide says, so the example stays green."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO

EXAMPLE = REPO / "examples" / "node"

pytestmark = pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")),
                                reason="node and npm are needed for examples/node (.ci/run installs them)")


def test_the_node_example_suite_passes():
    if not (EXAMPLE / "node_modules" / "openid-client").exists():  # .ci/run installs them; else do it here
        installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE, capture_output=True,
                                   text=True, timeout=600)
        assert installed.returncode == 0, installed.stderr[-3000:]
    env = {**os.environ, "MOCKEHR_COMMAND": json.dumps([sys.executable, "-m", "mockehr"])}
    env.pop("MOCKEHR_URL", None)
    run = subprocess.run(["npm", "test", "--silent"], cwd=EXAMPLE, env=env, capture_output=True, text=True,
                         timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    passed = [line for line in report.splitlines() if line.startswith("ok ")]
    for name in ("fhirclient.js: EHR launch", "openid-client: SMART Backend Services", "control API: a throttle"):
        assert any(name in line for line in passed), report[-3000:]
    assert "# fail 0" in report and "# pass 3" in report
