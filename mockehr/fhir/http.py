"""HTTP details of the FHIR API: formats, conditional headers, JSON answers."""

from __future__ import annotations

import re
from functools import lru_cache
from email.utils import format_datetime, parsedate_to_datetime
from datetime import datetime, timezone

import orjson
from flask import Request, Response

from mockehr.fhir.outcome import FHIRError, Problem, operation_outcome
from mockehr.fhir.values import BadValue, date_range

FHIR_JSON = "application/fhir+json"
JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "json", "text/json"}
XML_TYPES = {"application/fhir+xml", "application/xml", "application/xml+fhir", "xml", "text/xml"}
_WILDCARDS = {"*/*", "application/*", "text/html", "text/*"}


def response_type(request: Request) -> str:
    """The JSON media type to answer with, or a 406 when the client wants something else."""
    known = request.environ.get("mockehr.response_type")  # routes check it first, _answer asks again
    if known is None:
        known = request.environ["mockehr.response_type"] = _response_type(request)
    return known


def _response_type(request: Request) -> str:
    fmt = request.args.get("_format")
    if fmt:
        fmt = fmt.split(";")[0].strip().lower()
        if fmt in JSON_TYPES:
            return "application/json" if fmt == "application/json" else FHIR_JSON
        raise FHIRError(406, "not-supported", f"_format={fmt} is not available: this server answers only JSON "
                        "(application/fhir+json)")
    accepted = [m.split(";")[0].strip().lower() for m in request.headers.get("Accept", "").split(",") if m.strip()]
    if not accepted:
        return FHIR_JSON
    for media in accepted:
        if media in JSON_TYPES or media in _WILDCARDS:
            return "application/json" if media == "application/json" else FHIR_JSON
    wanted = ", ".join(accepted)
    kind = "XML" if any(m in XML_TYPES for m in accepted) else wanted
    raise FHIRError(406, "not-supported", f"Accept asks for {kind}, but this server answers only JSON "
                    "(application/fhir+json)")


def read_json_body(request: Request) -> object:
    ctype = (request.mimetype or "").lower()
    if ctype and ctype not in JSON_TYPES:
        raise FHIRError(415, "not-supported", f"Content-Type {ctype} is not supported: send application/fhir+json")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise FHIRError(400, "invalid", "the request body is empty; send a FHIR resource as JSON")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FHIRError(400, "invalid", f"the request body is not valid JSON: {exc}") from None


def json_response(body, status: int = 200, headers: dict | None = None, mimetype: str = FHIR_JSON,
                  pretty: bool = False) -> Response:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return Response(orjson.dumps(body, option=option), status=status, headers=headers,
                    content_type=f"{mimetype}; charset=utf-8")


def outcome_response(problems: list[Problem], status: int, headers: dict | None = None) -> Response:
    return json_response(operation_outcome(problems), status, headers)


def etag(vid: int) -> str:
    return f'W/"{vid}"'


_ETAG_RE = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def parse_etag(value: str, header: str) -> int:
    m = _ETAG_RE.match(value)
    if not m:
        raise FHIRError(400, "invalid", f"{header}: '{value}' is not a version ETag like W/\"3\"")
    return int(m.group(1))


def _utc(fhir_instant: str) -> datetime:
    """A FHIR instant as an aware UTC datetime, whole seconds (seed data may use any zone or precision)."""
    try:
        epoch = date_range(fhir_instant)[0]
    except BadValue:
        epoch = 0.0
    return datetime.fromtimestamp(epoch, timezone.utc).replace(microsecond=0)


@lru_cache(maxsize=4096)  # Last-Modified of every read; seed resources share a handful of instants
def http_date(fhir_instant: str) -> str:
    return format_datetime(_utc(fhir_instant), usegmt=True)


def not_modified(request: Request, vid: int, last_updated: str) -> bool:
    """If-None-Match wins over If-Modified-Since, as RFC 9110 says."""
    inm = request.headers.get("If-None-Match")
    if inm:
        tags = [t.strip() for t in inm.split(",")]
        return "*" in tags or any(_ETAG_RE.match(t) and int(_ETAG_RE.match(t).group(1)) == vid for t in tags)
    ims = request.headers.get("If-Modified-Since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False  # an unparsable date is ignored, per RFC 9110
        return since.tzinfo is not None and _utc(last_updated) <= since
    return False


def prefer(request: Request, key: str) -> str | None:
    """One token of the Prefer header: prefer(request, 'return') -> 'minimal'."""
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == key:
            return value.strip().strip('"').lower()
    return None
