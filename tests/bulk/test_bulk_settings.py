"""The bulk delay setting: `serve --bulk-delay`, MOCKEHR_BULK_DELAY, Settings.bulk_delay."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mockehr import server
from mockehr.cli import main
from mockehr.config import Settings


@pytest.fixture
def served(monkeypatch):
    """The Settings `mockehr serve` would run with (nothing is started)."""
    seen = []
    monkeypatch.setattr(server, "run_forever", lambda settings, **kwargs: seen.append(settings))
    return seen


def test_serve_option_reaches_the_settings(served):
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--bulk-delay", "2.5"])
    assert result.exit_code == 0, result.output
    assert served[0].bulk_delay == 2.5


def test_default_and_environment(served, monkeypatch):
    assert CliRunner().invoke(main, ["serve", "--port", "0"]).exit_code == 0
    assert served[-1].bulk_delay == 0.0
    monkeypatch.setenv("MOCKEHR_BULK_DELAY", "3")
    assert CliRunner().invoke(main, ["serve", "--port", "0"]).exit_code == 0
    assert served[-1].bulk_delay == 3.0
    assert CliRunner().invoke(main, ["serve", "--port", "0", "--bulk-delay", "1"]).exit_code == 0
    assert served[-1].bulk_delay == 1.0  # the option wins over the environment


@pytest.mark.parametrize("value", ["-1", "soon", "100000"])
def test_bad_values_are_refused(served, value):
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--bulk-delay", value])
    assert result.exit_code == 2 and "--bulk-delay" in result.output
    assert served == []


@pytest.mark.parametrize("raw", ["-1", "soon", "inf", "nan"])
def test_bad_environment_values_are_refused(raw):
    with pytest.raises(ValueError, match="MOCKEHR_BULK_DELAY must be a number of seconds >= 0"):
        Settings.from_env({"MOCKEHR_BULK_DELAY": raw})


def test_help_mentions_it():
    assert "--bulk-delay SECONDS" in CliRunner().invoke(main, ["serve", "--help"]).output
