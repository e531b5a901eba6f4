"""Dataset loading and the shift of a seeded dataset's dates to this week."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from mockehr.config import Settings
from mockehr.pages import age_text
from mockehr.server import ServerThread
from tests.helpers import authorized_session
from mockehr.store.dataset import DatasetError, read_dataset_dir, shift_dates, week_shift


def test_week_shift_is_whole_weeks_and_never_past_today():
    assert week_shift(date(2026, 6, 1), date(2026, 6, 1)) == 0
    assert week_shift(date(2026, 6, 1), date(2026, 6, 7)) == 0
    assert week_shift(date(2026, 6, 1), date(2026, 6, 8)) == 7
    assert week_shift(date(2026, 6, 1), date(2026, 11, 23)) == 175
    assert week_shift(date(2026, 6, 1), date(2026, 5, 31)) == -7


def test_shift_dates_moves_full_dates_only():
    raw = (b'{"birthDate":"2026-05-20","effectiveDateTime":"2026-05-30T10:15:00-05:00",'
           b'"onsetDateTime":"2019","x":"2019-04","note":"born 2026-05-20","bad":"2026-02-30"}')
    moved = orjson.loads(shift_dates(raw, 7))
    assert moved["birthDate"] == "2026-05-27"
    assert moved["effectiveDateTime"] == "2026-06-06T10:15:00-05:00"
    assert moved["onsetDateTime"] == "2019" and moved["x"] == "2019-04"
    assert moved["note"] == "born 2026-05-20"  # text inside a string is left alone
    assert moved["bad"] == "2026-02-30"


def _write(tmp_path, anchor: str | None):
    (tmp_path / "Patient.ndjson").write_bytes(
        orjson.dumps({"resourceType": "Patient", "id": "a", "birthDate": "2026-05-25",
                      "meta": {"lastUpdated": "2026-06-01T00:00:00Z"}}) + b"\n")
    if anchor:
        (tmp_path / "manifest.json").write_text(f'{{"anchor": "{anchor}"}}')


def test_read_shifts_only_datasets_with_an_anchor(tmp_path):
    _write(tmp_path, "2026-06-01")
    (patient,) = read_dataset_dir(tmp_path, date(2026, 6, 16))
    assert patient["birthDate"] == "2026-06-08"
    assert patient["meta"]["lastUpdated"] == "2026-06-15T00:00:00Z"
    (unshifted,) = read_dataset_dir(tmp_path, None)
    assert unshifted["birthDate"] == "2026-05-25"


def test_read_without_manifest_is_untouched(tmp_path):
    _write(tmp_path, None)
    (patient,) = read_dataset_dir(tmp_path, date(2030, 1, 1))
    assert patient["birthDate"] == "2026-05-25"


def test_bad_manifest_and_bad_lines_are_dataset_errors(tmp_path):
    _write(tmp_path, None)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(DatasetError, match="anchor"):
        read_dataset_dir(tmp_path, date.today())
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "Observation.ndjson").write_text('{"resourceType": "Observation"}\n')
    with pytest.raises(DatasetError, match="Observation.ndjson line 1"):
        read_dataset_dir(tmp_path, None)


def test_default_newborn_is_a_newborn_today():
    with ServerThread(Settings(port=0)) as server:
        patient = authorized_session(server.url).get(server.fhir_base + "/Patient/p00002-newborn").json()
    age_days = (date.today() - date.fromisoformat(patient["birthDate"])).days
    assert 0 <= age_days < 30


def test_age_text():
    assert age_text("1970-05-23", date(2026, 5, 22)) == "55"
    assert age_text("1970-05-23", date(2026, 5, 23)) == "56"
    assert age_text("2025-01-10", date(2026, 3, 9)) == "13 mo"
    assert age_text("2026-11-11", date(2026, 11, 23)) == "12 d"
    assert age_text(None, date(2026, 1, 1)) == "?"
