"""Shared fixtures: the default dataset is generated once per test session."""

from __future__ import annotations

import pytest

from mockehr import synth


@pytest.fixture(scope="session")
def dataset() -> synth.Dataset:
    return synth.generate_dataset()


@pytest.fixture(scope="session")
def by_type(dataset) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for resource in dataset.resources:
        out.setdefault(resource["resourceType"], []).append(resource)
    return out


@pytest.fixture(scope="session")
def index(dataset) -> dict[tuple[str, str], dict]:
    return {(r["resourceType"], r["id"]): r for r in dataset.resources}


@pytest.fixture(scope="session")
def larger_dataset() -> synth.Dataset:
    """Designed personas plus random patients, to exercise the random-population code."""
    return synth.generate_dataset(patients=60, seed=7)
