"""FHIR REST routes: translate HTTP to FHIRService calls and back. No logic here."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request

from mockehr.fhir import bulk_routes, bundle, http
from mockehr.fhir.access import RequestAccess
from mockehr.fhir.capability import capability_statement
from mockehr.fhir.outcome import FHIRError, information
from mockehr.fhir.service import FHIRService
from mockehr.fhir.validate import required_elements
from mockehr.store.store import Version


def fhir_base() -> str:
    return current_app.config["MOCKEHR_ROOT_URL"]() + "/fhir"


def _service() -> FHIRService:
    return current_app.extensions["mockehr.fhir"]


def _answer(body, status: int = 200, headers: dict | None = None) -> Response:
    return http.json_response(body, status, headers, http.response_type(request),
                              pretty=request.args.get("_pretty") == "true")


def _access() -> RequestAccess:
    guard = current_app.extensions["mockehr.guard"]
    token = g.mockehr_token
    own = token.user if token.scopes.fhir_user else None
    return RequestAccess(_service().store, lambda letter, rtype: guard.decide(token, letter, rtype), own)


def _authenticate() -> None:
    """Every FHIR call but metadata needs a valid bearer token."""
    from mockehr.auth.enforce import Unauthorized

    if request.endpoint == "fhir.metadata":
        return
    try:
        g.mockehr_token = current_app.extensions["mockehr.guard"].authenticate(request.headers.get("Authorization"))
    except Unauthorized as exc:
        safe = str(exc).replace('"', "'")
        raise FHIRError(401, "login", str(exc),  # a DPoP token or proof refused: the DPoP challenge (RFC 9449 7.1)
                        headers=exc.headers or {"WWW-Authenticate": f'Bearer error="invalid_token", '
                                                                    f'error_description="{safe}"'})


def _audit(response: Response) -> Response:
    if request.method == "OPTIONS":
        return response  # CORS preflights are the browser's, not the app's
    token = g.get("mockehr_token")
    outcome = "success" if response.status_code < 400 else "failure"
    detail = None
    if outcome == "failure" and response.mimetype in ("application/fhir+json", "application/json"):
        detail = (response.get_json(silent=True) or {}).get("issue", [{}])[0].get("diagnostics")
    current_app.extensions["mockehr.audit"].record(
        "fhir", outcome, method=request.method, path=_audited_path(), status=response.status_code,
        client=token.client_id if token else None, user=token.user if token else None,
        patient=token.patient if token else None, reason=detail)
    return response


def _audited_path() -> str:
    """The path and query; a token an app put in the query (?access_token=, which this server does not
    accept: RFC 6750 2.3 is discouraged) is cut to its first characters, never stored whole."""
    if "access_token" not in request.args:
        return request.full_path.rstrip("?")
    query = [(name, value[:6] + "…" if name == "access_token" else value)
             for name, value in request.args.items(multi=True)]
    return f"{request.path}?{urlencode(query)}"


def _version_headers(version: Version, with_location: bool = False) -> dict:
    headers = {"ETag": http.etag(version.vid), "Last-Modified": http.http_date(version.last_updated)}
    if with_location:
        headers["Location"] = f"{fhir_base()}/{version.type}/{version.id}/_history/{version.vid}"
    return headers


def _pairs() -> list[tuple[str, str]]:
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += list(request.form.items(multi=True))
    return pairs


def _page_links(path: str, pairs: list[tuple[str, str]], offset: int, count: int, total: int) -> list[dict]:
    return bundle.page_links(f"{fhir_base()}/{path}", pairs, offset, count, total)


def _write_answer(version: Version, status: int) -> Response:
    headers = _version_headers(version, with_location=True)
    wanted = http.prefer(request, "return")
    if wanted == "minimal":
        return Response(status=status, headers=headers)
    if wanted == "operationoutcome":
        return _answer(information(f"{version.type}/{version.id} is now at version {version.vid}"), status, headers)
    return _answer(version.resource, status, headers)


def build_blueprint() -> Blueprint:
    bp = Blueprint("fhir", __name__, url_prefix="/fhir")

    bp.before_request(_authenticate)
    bp.after_request(_audit)

    @bp.errorhandler(FHIRError)
    def fhir_error(error: FHIRError):
        return http.outcome_response(error.problems(), error.status, error.headers)

    @bp.get("/metadata")
    def metadata():
        security = current_app.config["MOCKEHR_CAPABILITY_SECURITY"](fhir_base().rsplit("/fhir", 1)[0])
        return _answer(capability_statement(fhir_base(), current_app.config["MOCKEHR_STARTED"], security))

    @bp.route("/<rtype>", methods=["GET"])
    @bp.route("/<rtype>/_search", methods=["POST"])
    def search_type(rtype: str):
        http.response_type(request)
        strict = http.prefer(request, "handling") == "strict"
        pairs = _pairs()
        result = _service().search(rtype, pairs, strict, _access())
        req = result.request
        required = required_elements(rtype)
        shaped = [bundle.shape(r, req.summary, req.elements, required) for r in result.page]
        page_size = 0 if req.summary == "count" else req.count  # a count has no pages to walk
        links = _page_links(rtype, pairs, req.offset, page_size, result.total)
        total = None if req.total == "none" else result.total
        return _answer(bundle.search_bundle(fhir_base(), shaped, result.included, total, links, req.ignored))

    @bp.post("/<rtype>")
    def create(rtype: str):
        http.response_type(request)
        body = http.read_json_body(request)
        version, created = _service().create(rtype, body, request.headers.get("If-None-Exist"), _access())
        return _write_answer(version, 201 if created else 200)

    @bp.get("/<rtype>/<rid>")
    def read(rtype: str, rid: str):
        http.response_type(request)
        if rid.startswith("$"):
            raise FHIRError(404, "not-supported", f"operation {rid} is not supported on {rtype}")
        version = _service().read(rtype, rid, _access())
        headers = _version_headers(version)
        if http.not_modified(request, version.vid, version.last_updated):
            return Response(status=304, headers=headers)
        summary = request.args.get("_summary")
        elements = [e for e in request.args.get("_elements", "").split(",") if e] or None
        shaped = bundle.shape(version.resource, summary if summary in ("data", "text") else None, elements,
                              required_elements(rtype))
        return _answer(shaped, headers=headers)

    @bp.put("/<rtype>/<rid>")
    def update(rtype: str, rid: str):
        http.response_type(request)
        body = http.read_json_body(request)
        if_match = request.headers.get("If-Match")
        expected = http.parse_etag(if_match, "If-Match") if if_match else None
        version, created = _service().update(rtype, rid, body, expected, _access())
        return _write_answer(version, 201 if created else 200)

    @bp.delete("/<rtype>/<rid>")
    def delete(rtype: str, rid: str):
        http.response_type(request)
        version = _service().delete(rtype, rid, _access())
        if version is None:
            return _answer(information(f"{rtype}/{rid} did not exist or was already deleted; nothing changed"))
        return _answer(information(f"deleted {rtype}/{rid} (version {version.vid} records the deletion)"),
                       headers={"ETag": http.etag(version.vid)})

    @bp.get("/_history")
    @bp.get("/<rtype>/_history")
    @bp.get("/<rtype>/<rid>/_history")
    def history(rtype: str | None = None, rid: str | None = None):
        http.response_type(request)
        pairs = _pairs()
        args = dict(pairs)
        versions = _service().history(rtype, rid, args.get("_since"), _access())
        count = _bounded_int(args, "_count", current_app.config["MOCKEHR_PAGE_SIZE"])
        offset = _bounded_int(args, "_offset", 0)
        path = "/".join(p for p in (rtype, rid, "_history") if p)
        links = _page_links(path, pairs, offset, count, len(versions))
        page = versions[offset:offset + count]
        return _answer(bundle.history_bundle(fhir_base(), page, len(versions), links))

    @bp.get("/<rtype>/<rid>/_history/<vid>")
    def vread(rtype: str, rid: str, vid: str):
        http.response_type(request)
        version = _service().vread(rtype, rid, vid, _access())
        return _answer(version.resource, headers=_version_headers(version))

    @bp.route("/Patient/<pid>/$everything", methods=["GET", "POST"])
    def everything(pid: str):
        http.response_type(request)
        pairs = _pairs()
        args = dict(pairs)
        types = [t for t in args.get("_type", "").split(",") if t] or None
        resources = _service().everything(pid, types, args.get("_since"), _access())
        count = _bounded_int(args, "_count", current_app.config["MOCKEHR_PAGE_SIZE"])
        offset = _bounded_int(args, "_offset", 0)
        links = _page_links(f"Patient/{pid}/$everything", pairs, offset, count, len(resources))
        page = resources[offset:offset + count]
        return _answer(bundle.search_bundle(fhir_base(), page, [], len(resources), links, []))

    bulk_routes.register(bp, fhir_base)  # $export, its status and files (Bulk Data Access IG)

    @bp.route("", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    @bp.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    @bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unknown(rest: str):
        status = 404 if request.method in ("GET", "POST") else 405
        if not rest.strip("/") and request.method == "POST":
            raise FHIRError(status, "not-supported", "batch and transaction Bundles are not supported by this "
                            "server; send each interaction on its own")
        raise FHIRError(status, "not-supported",
                        f"{request.method} /fhir/{rest} is not an interaction this server supports")

    return bp


def _bounded_int(args: dict, name: str, default: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise FHIRError(400, "invalid", f"{name} must be a whole number, got '{raw}'")
    limit = current_app.config["MOCKEHR_MAX_PAGE_SIZE"]
    return min(int(raw), limit) if name == "_count" else int(raw)
