"""FHIR R4 primitive datatypes: one check per type, returning a problem or None.

Regexes are those of the R4 spec (datatypes.html), written for Python: the
spec's \\s / \\S are XML Schema classes (only space, tab, CR, LF), and [0-9]
is spelled out because Python's \\d also matches non-ASCII digits. Full dates
are also checked against the calendar (the spec regex accepts 2023-02-31).
"""

from __future__ import annotations

import math
import re
from datetime import date

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_MONTH = r"(0[1-9]|1[0-2])"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"

_DATE_RE = re.compile(f"{_YEAR}(-{_MONTH}(-{_DAY})?)?")
_DATETIME_RE = re.compile(f"{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_ZONE})?)?)?")
_INSTANT_RE = re.compile(f"{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}")
_TIME_RE = re.compile(_TIME)
_CODE_RE = re.compile(r"[^ \t\r\n]+([ \t\r\n][^ \t\r\n]+)*")
_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_URI_RE = re.compile(r"[^ \t\r\n]+")
_OID_RE = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")
_UUID_RE = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The R4 regex forgets '/', which is part of the base64 alphabet.
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_XSD_SPACE = str.maketrans("", "", " \t\r\n")

# Reference.reference forms other than '#id' and urn:uuid/urn:oid.
REF_ID_RE = re.compile(r"([A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")
REF_CONDITIONAL_RE = re.compile(r"([A-Za-z]+)\?\S+")  # transaction-style Type?search
ABS_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^ \t\r\n]+")

_INT_MIN, _INT_MAX = -2147483648, 2147483647
_EMPTY = "empty string; elements must have a value or children"


def show(value: object, limit: int = 60) -> str:
    """A JSON-ish rendering of `value` for messages, cut to `limit` characters."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, dict):
        text = "{...}"
    elif isinstance(value, list):
        text = "[...]"
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _not_string(value: object, fhir_type: str) -> str:
    return f"expected a JSON string ({fhir_type}), got {kind(value)} {show(value)}"


def _string_check(fhir_type: str, regex: re.Pattern | None, expected: str = ""):
    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return _not_string(value, fhir_type)
        if not value:
            return _EMPTY
        if regex is not None and regex.fullmatch(value) is None:
            return f"{show(value)} is not a valid FHIR {fhir_type}{expected}"
        return None

    return check


def _calendar_ok(value: str) -> bool:
    """Day exists in its month (the regex already fixed the layout)."""
    if len(value) < 10:
        return True
    try:
        date(int(value[:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def _date_check(fhir_type: str, regex: re.Pattern, expected: str, calendar: bool = True):
    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return _not_string(value, fhir_type)
        if not value:
            return _EMPTY
        if regex.fullmatch(value) is None or (calendar and not _calendar_ok(value)):
            return f"{show(value)} is not a valid FHIR {fhir_type}{expected}"
        return None

    return check


def _int_check(fhir_type: str, minimum: int):
    def check(value: object) -> str | None:
        if type(value) is not int:  # excludes bool, and 1.0 (not an integer lexically)
            return f"expected a JSON integer ({fhir_type}), got {kind(value)} {show(value)}"
        if value < minimum:
            return f"{value} is not a valid FHIR {fhir_type} (must be >= {minimum})"
        if value > _INT_MAX:
            return f"{value} is not a valid FHIR {fhir_type} (must be <= {_INT_MAX})"
        return None

    return check


def _boolean(value: object) -> str | None:
    if value is True or value is False:
        return None
    return f"expected JSON true or false (boolean), got {kind(value)} {show(value)}"


def _decimal(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a JSON number (decimal), got {kind(value)} {show(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{show(value)} is not a valid FHIR decimal (must be finite)"
    return None


def _base64(value: object) -> str | None:
    if not isinstance(value, str):
        return _not_string(value, "base64Binary")
    if not value:
        return _EMPTY
    packed = value.translate(_XSD_SPACE)
    if len(packed) % 4 or _BASE64_RE.fullmatch(packed) is None:
        return f"{show(value)} is not valid base64 (base64Binary)"
    return None


def _xhtml(value: object) -> str | None:
    if not isinstance(value, str):
        return _not_string(value, "xhtml")
    if not value.lstrip().startswith("<div"):
        return f"{show(value)} is not valid narrative xhtml (it must be a <div> element)"
    return None


_DATE_FORMS = " (YYYY, YYYY-MM or YYYY-MM-DD)"
_DATETIME_FORMS = (" (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with a "
                   "time zone, e.g. 2024-01-31T08:30:00Z)")
_URI_FORMS = " (must not be empty or contain whitespace)"

CHECKS = {
    "boolean": _boolean,
    "integer": _int_check("integer", _INT_MIN),
    "positiveInt": _int_check("positiveInt", 1),
    "unsignedInt": _int_check("unsignedInt", 0),
    "decimal": _decimal,
    "string": _string_check("string", None),
    "markdown": _string_check("markdown", None),
    "code": _string_check("code", _CODE_RE, " (no leading, trailing or repeated whitespace)"),
    "id": _string_check("id", _ID_RE, " (1-64 characters: A-Z a-z 0-9 - .)"),
    "uri": _string_check("uri", _URI_RE, _URI_FORMS),
    "url": _string_check("url", _URI_RE, _URI_FORMS),
    "canonical": _string_check("canonical", _URI_RE, _URI_FORMS),
    "oid": _string_check("oid", _OID_RE, " (urn:oid: followed by dotted numbers, e.g. urn:oid:1.2.3)"),
    "uuid": _string_check("uuid", _UUID_RE, " (urn:uuid: followed by a lowercase 8-4-4-4-12 hex uuid)"),
    "base64Binary": _base64,
    "xhtml": _xhtml,
    "date": _date_check("date", _DATE_RE, _DATE_FORMS),
    "dateTime": _date_check("dateTime", _DATETIME_RE, _DATETIME_FORMS),
    "instant": _date_check("instant", _INSTANT_RE,
                           " (YYYY-MM-DDThh:mm:ss[.fff] with a time zone, e.g. 2024-01-31T08:30:00Z)"),
    "time": _date_check("time", _TIME_RE, " (hh:mm:ss[.fff])", calendar=False),
}
