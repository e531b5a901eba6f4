"""The README's test-suite examples run here, so they never rot.

A ```python block right after `<!-- readme-test: python -->` runs as a script; one after
`<!-- readme-test: pytest -->` is a test module, run by pytest (pytester) with the installed plugin.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytest_plugins = ["pytester"]

_BLOCK = re.compile(r"<!-- readme-test: (\w+) -->\s*```python\n(.*?)```", re.S)


def blocks(kind: str) -> list[str]:
    found = [code for marker, code in _BLOCK.findall((REPO / "README.md").read_text()) if marker == kind]
    assert found, f"the README has no block marked <!-- readme-test: {kind} -->"
    return found


def test_the_marked_blocks_are_the_test_suite_section():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## In your test suite"):]
    assert len(_BLOCK.findall(section)) == len(_BLOCK.findall(readme)) == 2


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_examples_run(index, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(blocks("python")[index])
    run = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-4000:]


@pytest.mark.parametrize("index", range(len(blocks("pytest"))))
def test_pytest_examples_pass(index, pytester):
    pytester.makepyfile(test_readme_example=blocks("pytest")[index])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    tests = len(re.findall(r"^def test_", blocks("pytest")[index], re.M))
    result.assert_outcomes(passed=tests)
