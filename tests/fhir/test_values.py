"""mockehr.fhir.values: dates as ranges, prefixes, number precision, string normalization, token keys."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mockehr.fhir import values as v


def ts(*args, tz=timezone.utc) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


# -- date_range --------------------------------------------------------------------

@pytest.mark.parametrize("text, low, high", [
    ("2023", ts(2023, 1, 1), ts(2024, 1, 1)),
    ("2023-02", ts(2023, 2, 1), ts(2023, 3, 1)),
    ("2024-02", ts(2024, 2, 1), ts(2024, 3, 1)),
    ("2023-12", ts(2023, 12, 1), ts(2024, 1, 1)),
    ("2024-02-29", ts(2024, 2, 29), ts(2024, 3, 1)),
    ("2023-01-15T10", ts(2023, 1, 15, 10), ts(2023, 1, 15, 11)),
    ("2023-01-15T10:30", ts(2023, 1, 15, 10, 30), ts(2023, 1, 15, 10, 31)),
    ("2023-01-15T10:30Z", ts(2023, 1, 15, 10, 30), ts(2023, 1, 15, 10, 31)),
    ("2023-01-15T10:30:05Z", ts(2023, 1, 15, 10, 30, 5), ts(2023, 1, 15, 10, 30, 6)),
    ("2023-01-15T10:30:05", ts(2023, 1, 15, 10, 30, 5), ts(2023, 1, 15, 10, 30, 6)),  # no zone: UTC
    ("2023-01-15T12:30:05+02:00", ts(2023, 1, 15, 10, 30, 5), ts(2023, 1, 15, 10, 30, 6)),
    ("2023-01-15T05:00:00-05:30", ts(2023, 1, 15, 10, 30), ts(2023, 1, 15, 10, 30, 1)),
    (" 2023 ", ts(2023, 1, 1), ts(2024, 1, 1)),
])
def test_date_range(text, low, high):
    assert v.date_range(text) == (low, high)


def test_date_range_fractional_seconds():
    low, high = v.date_range("2023-01-15T10:30:05.250Z")
    assert low == pytest.approx(ts(2023, 1, 15, 10, 30, 5) + 0.25)
    assert high - low == pytest.approx(0.001, abs=1e-6)
    low, high = v.date_range("2023-01-15T10:30:05.5Z")
    assert high - low == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize("text", ["", "23", "2023-1", "2023-01-1", "2023/01/01", "2023-01-15T", "2023-01-15 10:00",
                                  "2023-01-15T10:30:00+2", "tomorrow", "2023-13", "2023-02-30", "2023-00-10",
                                  "2023-01-15T25:00", "2023-01-15T10:61", "0000", "9999-12-31T24:00"])
def test_date_range_rejects(text):
    with pytest.raises(v.BadValue):
        v.date_range(text)


def test_date_range_rejects_non_strings():
    with pytest.raises(v.BadValue):
        v.date_range(2023)  # type: ignore[arg-type]


def test_bad_value_messages_say_what_is_expected():
    with pytest.raises(v.BadValue, match=r"is not a FHIR date \(YYYY, YYYY-MM"):
        v.date_range("soon")
    with pytest.raises(v.BadValue, match="'2023-02-30' is not a real calendar date"):
        v.date_range("2023-02-30")


# -- date_matches ------------------------------------------------------------------
# target ranges against the query "2023-06" (June 2023)
JUNE = v.date_range("2023-06")
INSIDE = v.date_range("2023-06-15")
BEFORE = v.date_range("2023-05-31")
AFTER = v.date_range("2023-07-01")
STRADDLE_START = (v.date_range("2023-05-20")[0], v.date_range("2023-06-10")[1])
STRADDLE_END = (v.date_range("2023-06-20")[0], v.date_range("2023-07-10")[1])
WIDER = v.date_range("2023")
OPEN_END = (v.date_range("2023-06-10")[0], v.POS_INF)


@pytest.mark.parametrize("target, expected", [
    (INSIDE, {"eq", "ge", "le"}),
    (JUNE, {"eq", "ge", "le"}),
    (BEFORE, {"ne", "lt", "le", "eb"}),
    (AFTER, {"ne", "gt", "ge", "sa"}),
    (STRADDLE_START, {"ne", "lt", "le"}),
    (STRADDLE_END, {"ne", "gt", "ge"}),
    (WIDER, {"ne", "gt", "lt", "ge", "le"}),
    (OPEN_END, {"ne", "gt", "ge"}),
])
def test_date_prefixes(target, expected):
    matched = {p for p in ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb") if v.date_matches(p, target, JUNE)}
    assert matched == expected


def test_date_ap_is_an_overlap_with_slack():
    assert v.date_matches("ap", INSIDE, JUNE)
    assert v.date_matches("ap", v.date_range("2023-07-02"), JUNE)  # just outside, within 10%
    assert not v.date_matches("ap", v.date_range("1990"), JUNE)


def test_unknown_prefix_raises():
    with pytest.raises(v.BadValue):
        v.date_matches("zz", INSIDE, JUNE)
    with pytest.raises(v.BadValue):
        v.number_matches("zz", 1.0, v.number_range("1"))


@pytest.mark.parametrize("text, expected", [
    ("gt2023", ("gt", "2023")), ("2023", ("eq", "2023")), ("eb5", ("eb", "5")), ("ap-3", ("ap", "-3")),
    ("ge", ("eq", "ge")), ("get", ("eq", "get")), ("nevermind", ("eq", "nevermind")), ("xx5", ("eq", "xx5")),
])
def test_split_prefix(text, expected):
    assert v.split_prefix(text) == expected


# -- numbers -----------------------------------------------------------------------

@pytest.mark.parametrize("text, value, low, high", [
    ("5", 5.0, 4.5, 5.5),
    ("5.4", 5.4, 5.35, 5.45),
    ("5.40", 5.4, 5.395, 5.405),
    ("100", 100.0, 99.5, 100.5),
    ("1e2", 100.0, 95.0, 105.0),
    ("1.5e2", 150.0, 149.5, 150.5),
    ("1E-1", 0.1, 0.095, 0.105),
    ("-3", -3.0, -3.5, -2.5),
    ("+2.50", 2.5, 2.495, 2.505),
])
def test_number_range(text, value, low, high):
    got = v.number_range(text)
    assert got == pytest.approx((value, low, high))


@pytest.mark.parametrize("text", ["", "five", "nan", "inf", "-inf", "1_000", " 5", "5.", ".5", "1e", "1e999",
                                  "0x10", "5,4", "1e99999"])
def test_number_range_rejects(text):
    with pytest.raises(v.BadValue):
        v.number_range(text)


@pytest.mark.parametrize("prefix, target, query, expected", [
    ("eq", 5.4, "5", True), ("eq", 5.5, "5", False), ("eq", 4.5, "5", True), ("eq", 5.0, "5.0", True),
    ("eq", 5.06, "5.0", False), ("ne", 5.06, "5.0", True), ("ne", 5.0, "5", False),
    ("gt", 5.1, "5", True), ("gt", 5.0, "5", False), ("lt", 4.9, "5", True), ("lt", 5.0, "5", False),
    ("ge", 5.0, "5", True), ("ge", 4.99, "5", False), ("le", 5.0, "5", True), ("le", 5.01, "5", False),
    ("sa", 6.0, "5", True), ("eb", 4.0, "5", True), ("ap", 109.0, "100", True), ("ap", 111.0, "100", False),
])
def test_number_matches(prefix, target, query, expected):
    assert v.number_matches(prefix, target, v.number_range(query)) is expected


# -- strings and tokens -----------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Zoë", "zoe"), ("MÜLLER", "muller"), ("García", "garcia"), ("Ångström", "angstrom"), ("straße", "strasse"),
    ("ﬁne", "fine"), ("plain", "plain"), ("", ""), ("Nguyễn", "nguyen"),
])
def test_normalize_string(text, expected):
    assert v.normalize_string(text) == expected


def test_token_keys():
    assert v.token_keys("http://loinc.org", "8867-4") == ["8867-4", "http://loinc.org|8867-4", "http://loinc.org|"]
    assert v.token_keys(None, "female") == ["female", "|female"]
    assert v.token_keys("http://x", None) == ["http://x|"]
    assert v.token_keys(None, None) == []
