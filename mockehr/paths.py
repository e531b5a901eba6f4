"""Where the files that ship with the package live.

In a checkout, launcher/ and seed_data/ sit beside the package; in an
installed wheel they are copied inside it (see pyproject.toml).
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / name


def seed_data_dir() -> Path:
    return shipped_dir("seed_data")


def launcher_dir() -> Path:
    return shipped_dir("launcher")
