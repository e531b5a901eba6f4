"""Search value semantics (pure): dates as ranges, quantities, strings, tokens.

Resource values and query values are both turned into the same shapes so a
match is a comparison, never a re-parse at query time.
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from datetime import datetime, timedelta, timezone

NEG_INF = float("-inf")
POS_INF = float("inf")

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class BadValue(ValueError):
    """A query value that cannot be parsed; the message says what was expected."""


def date_range(text: str) -> tuple[float, float]:
    """The half-open [low, high) span of epoch seconds a FHIR date/dateTime/instant covers.

    '2020' covers the whole year, '2020-03-04T10:00' that minute. Times without a
    zone are taken as UTC (FHIR leaves it to the server; we pick one and say so).
    """
    m = _DATE_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise BadValue(f"'{text}' is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.sss][Z|+hh:mm])")
    g = m.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            start = datetime(year, 1, 1, tzinfo=timezone.utc)
            return start.timestamp(), datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp()
        month = int(g["m"])
        if g["d"] is None:
            start = datetime(year, month, 1, tzinfo=timezone.utc)
            days = calendar.monthrange(year, month)[1]
            return start.timestamp(), (start + timedelta(days=days)).timestamp()
        day = int(g["d"])
        if g["H"] is None:
            start = datetime(year, month, day, tzinfo=timezone.utc)
            return start.timestamp(), (start + timedelta(days=1)).timestamp()
        tz = timezone.utc
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hh, mm = int(g["tz"][1:3]), int(g["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hh, minutes=mm))
        hour, minute = int(g["H"]), int(g["M"] or 0)
        second = int(g["S"] or 0)
        start = datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp()
    except ValueError:
        raise BadValue(f"'{text}' is not a real calendar date or time") from None
    if g["f"]:
        frac = g["f"]
        start += float(frac)
        # at least one float step wide: 10**-7 s and less vanish next to epoch seconds, and [start, start) is empty
        return start, max(start + 10 ** -(len(frac) - 1), math.nextafter(start, math.inf))
    if g["S"] is not None:
        return start, start + 1
    if g["M"] is not None:
        return start, start + 60
    return start, start + 3600


def date_matches(prefix: str, target: tuple[float, float], query: tuple[float, float]) -> bool:
    """FHIR R4 date prefix semantics on half-open ranges (search.html#prefix)."""
    tlo, thi = target
    qlo, qhi = query
    contained = qlo <= tlo and thi <= qhi
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return not contained
    if prefix == "gt":
        return thi > qhi
    if prefix == "lt":
        return tlo < qlo
    if prefix == "ge":
        return thi > qhi or contained
    if prefix == "le":
        return tlo < qlo or contained
    if prefix == "sa":
        return tlo >= qhi
    if prefix == "eb":
        return thi <= qlo
    if prefix == "ap":
        # Approximately: overlap with the query widened by 10% of its distance from now.
        width = max(qhi - qlo, 0.1 * abs(datetime.now(timezone.utc).timestamp() - qlo))
        return tlo < qhi + width * 0.1 and thi > qlo - width * 0.1
    raise BadValue(f"unknown prefix '{prefix}'")


PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def split_prefix(text: str) -> tuple[str, str]:
    if len(text) > 2 and text[:2] in PREFIXES and not text[2:3].isalpha():
        return text[:2], text[2:]
    return "eq", text


_NUMBER_RE = re.compile(r"^[+-]?\d+(?:\.(?P<decimals>\d+))?(?:[eE](?P<exponent>[+-]?\d{1,4}))?$")


def number_range(text: str) -> tuple[float, float, float]:
    """(value, low, high): '5.4' means [5.35, 5.45) because of its implied precision."""
    m = _NUMBER_RE.match(text)
    if not m:
        raise BadValue(f"'{text}' is not a number")
    value = float(text)
    decimals = len(m.group("decimals") or "")
    exponent = int(m.group("exponent") or 0)
    try:
        # The spec reads '1e2' as 95..105: exponent form counts one digit finer.
        half = 0.5 * 10.0 ** (exponent - decimals - (1 if m.group("exponent") else 0))
    except OverflowError:
        half = POS_INF
    if value in (NEG_INF, POS_INF) or half == POS_INF:
        raise BadValue(f"'{text}' is out of range")
    return value, value - half, value + half


def number_matches(prefix: str, target: float, query: tuple[float, float, float]) -> bool:
    value, low, high = query
    if prefix == "eq":
        return low <= target < high
    if prefix == "ne":
        return not (low <= target < high)
    if prefix in ("gt", "sa"):
        return target > value
    if prefix in ("lt", "eb"):
        return target < value
    if prefix == "ge":
        return target >= value
    if prefix == "le":
        return target <= value
    if prefix == "ap":
        return abs(target - value) <= abs(value) * 0.1
    raise BadValue(f"unknown prefix '{prefix}'")


def normalize_string(text: str) -> str:
    """FHIR string search ignores case and accents: 'Zoë' matches 'zoe'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def token_keys(system: str | None, code: str | None) -> list[str]:
    """Index keys under which a coded value answers: code, system|code, |code, system|."""
    keys = []
    if code:
        keys.append(code)
        keys.append(f"{system}|{code}" if system else f"|{code}")
    if system:
        keys.append(f"{system}|")
    return keys
