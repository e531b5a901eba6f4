"""Bundles (search sets, history) and resource shaping (_elements, _summary)."""

from __future__ import annotations

from urllib.parse import urlencode

from mockehr.fhir.outcome import Problem, operation_outcome
from mockehr.store.store import Version

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "Resource encoded in summary mode"}
_ALWAYS = {"resourceType", "id", "meta"}


def _mark_subsetted(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    resource["meta"] = meta
    return resource


def shape(resource: dict, summary: str | None = None, elements: list[str] | None = None,
          required: frozenset = frozenset()) -> dict:
    """A copy trimmed to what _elements / _summary ask for; the stored resource is never touched."""
    if elements:
        keep = _ALWAYS | required | set(elements)
        return _mark_subsetted({k: val for k, val in resource.items() if k in keep})
    if summary == "data":
        return _mark_subsetted({k: val for k, val in resource.items() if k != "text"})
    if summary == "text":
        keep = _ALWAYS | required | {"text"}
        return _mark_subsetted({k: val for k, val in resource.items() if k in keep})
    return resource


def page_links(url: str, pairs: list[tuple[str, str]], offset: int, count: int, total: int) -> list[dict]:
    """self / first / previous / next / last links; stateless, so they stay valid while the data does."""
    kept = urlencode([(k, val) for k, val in pairs if k not in ("_offset", "_count")])
    prefix = f"{url}?{kept}&" if kept else f"{url}?"  # encoded once, not once per link

    def link(relation: str, at: int) -> dict:
        return {"relation": relation, "url": f"{prefix}_count={count}&_offset={at}"}

    links = [link("self", offset)]
    if count == 0:
        return links
    last = max(0, (total - 1) // count * count)
    links.append(link("first", 0))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    if offset + count < total:
        links.append(link("next", offset + count))
    links.append(link("last", last))
    return links


def search_bundle(fhir_base: str, matches: list[dict], included: list[dict], total: int | None,
                  links: list[dict], warnings: list[str]) -> dict:
    entries = [_entry(fhir_base, r, "match") for r in matches]
    entries += [_entry(fhir_base, r, "include") for r in included]
    if warnings:
        outcome = operation_outcome([Problem("warning", "not-supported", w) for w in warnings])
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(fhir_base: str, resource: dict, mode: str) -> dict:
    return {"fullUrl": f"{fhir_base}/{resource['resourceType']}/{resource['id']}", "resource": resource,
            "search": {"mode": mode}}


_METHOD_STATUS = {"SEED": ("PUT", "200 OK"), "POST": ("POST", "201 Created"), "PUT": ("PUT", "200 OK"),
                  "DELETE": ("DELETE", "204 No Content")}


def history_bundle(fhir_base: str, versions: list[Version], total: int, links: list[dict]) -> dict:
    entries = []
    for version in versions:
        method, status = _METHOD_STATUS[version.method]
        url = f"{version.type}/{version.id}" if method != "POST" else version.type
        entry = {"fullUrl": f"{fhir_base}/{version.type}/{version.id}"}
        if version.resource is not None:
            entry["resource"] = version.resource
        entry["request"] = {"method": method, "url": url}
        entry["response"] = {"status": status, "etag": f'W/"{version.vid}"', "lastModified": version.last_updated}
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": "history", "total": total, "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle
