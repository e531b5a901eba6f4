"""The FHIR interactions, independent of HTTP: read, search, write, history, $everything."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from mockehr.fhir import search
from mockehr.fhir.access import RequestAccess, forbidden
from mockehr.fhir.extract import reference_target
from mockehr.fhir.outcome import FHIRError, Problem
from mockehr.fhir.searchparams import PATIENT_COMPARTMENT, RESOURCE_TYPES, reference_params
from mockehr.fhir.values import BadValue, date_range
from mockehr.store.store import Store, Version, VersionConflict

_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_SERVED = frozenset(RESOURCE_TYPES)
_MAX_INCLUDE_ROUNDS = 3


@dataclass
class SearchResult:
    request: search.SearchRequest
    total: int
    page: list[dict]
    included: list[dict]


def check_type(rtype: str) -> None:
    if rtype in _SERVED:
        return
    from mockehr.fhir.validate import resource_types

    if rtype in resource_types():
        raise FHIRError(404, "not-supported", f"{rtype} is a FHIR resource type this server does not serve")
    raise FHIRError(404, "not-found", f"unknown resource type '{rtype}'")


def check_id(rid: str) -> None:
    if not _ID_RE.match(rid):
        raise FHIRError(400, "invalid", f"'{rid}' is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)")


class FHIRService:
    def __init__(self, store: Store, default_count: int = 50, max_count: int = 1000, time_budget: float = 0.0):
        self.store = store
        self.default_count = default_count
        self.max_count = max_count
        self.time_budget = time_budget  # seconds a search may run (0: no limit)

    # -- reading ------------------------------------------------------------
    def read(self, rtype: str, rid: str, access: RequestAccess | None = None) -> Version:
        check_type(rtype)
        check_id(rid)
        if access and access.is_own_resource(rtype, rid):
            access = None  # the signed-in user's own resource (fhirUser) is readable with any scopes
        decision = access.require("read", rtype) if access else None
        version = self.store.read(rtype, rid)
        if version is None:
            raise FHIRError(404, "not-found", f"{rtype}/{rid} is not known to this server")
        if version.deleted:
            raise FHIRError(410, "deleted", f"{rtype}/{rid} was deleted (version {version.vid})",
                            headers={"ETag": f'W/"{version.vid}"'})
        if access:
            access.check(decision, rtype, version.resource, "read")
        return version

    def vread(self, rtype: str, rid: str, vid: str, access: RequestAccess | None = None) -> Version:
        check_type(rtype)
        check_id(rid)
        if access and access.is_own_resource(rtype, rid):
            access = None
        decision = access.require("vread", rtype) if access else None
        if not (vid.isascii() and vid.isdigit()):
            raise FHIRError(400, "invalid", f"'{vid}' is not a version id; versions are numbered 1, 2, 3, ...")
        version = self.store.vread(rtype, rid, int(vid))
        if version is None:
            if self.store.read(rtype, rid) is None:
                raise FHIRError(404, "not-found", f"{rtype}/{rid} is not known to this server")
            raise FHIRError(404, "not-found", f"{rtype}/{rid} has no version {vid}")
        if version.deleted:
            raise FHIRError(410, "deleted", f"version {vid} of {rtype}/{rid} is its deletion")
        if access:
            access.check(decision, rtype, version.resource, "read")
        return version

    def search(self, rtype: str, pairs: list[tuple[str, str]], strict: bool = False,
               access: RequestAccess | None = None) -> SearchResult:
        check_type(rtype)
        decision = access.require("search", rtype) if access else None
        request = search.parse(rtype, pairs, strict=strict, default_count=self.default_count,
                               max_count=self.max_count)
        index = self.store.index(rtype)
        budget = search.Budget(self.time_budget)
        with self.store.lock:
            ids = search.run(request, index, budget)
            visible = access.visible_ids(decision, rtype) if access else None
            if visible is not None:
                ids = [rid for rid in ids if rid in visible]
            page_ids = ids[request.offset:request.offset + request.count] if request.summary != "count" else []
            page = [self.store.read(rtype, rid).resource for rid in page_ids]
            included = self._included(request, page, budget)
            if access:
                included = [r for r in included if access.may_see(r["resourceType"], r)]
        return SearchResult(request, len(ids), page, included)

    def _included(self, request: search.SearchRequest, page: list[dict],
                  budget: search.Budget | None = None) -> list[dict]:
        if not (request.include or request.revinclude):
            return []
        seen = {(r["resourceType"], r["id"]) for r in page}
        found: list[dict] = []
        frontier = page
        for round_no in range(_MAX_INCLUDE_ROUNDS):
            if budget is not None:
                budget.check()
            fresh: list[dict] = []
            for inc in request.include:
                if round_no and not inc.iterate:
                    continue
                for resource in frontier:
                    if resource["resourceType"] != inc.source:
                        continue
                    for key in self.store.index(inc.source).keys(resource["id"], inc.param):
                        if "/" in key and (inc.target is None or key.startswith(inc.target + "/")):
                            fresh.extend(self._take(*key.split("/", 1), seen))
            for inc in request.revinclude:
                if round_no and not inc.iterate:
                    continue
                index = self.store.index(inc.source)
                for resource in frontier:
                    for rid in sorted(index.lookup(inc.param, f"{resource['resourceType']}/{resource['id']}")):
                        fresh.extend(self._take(inc.source, rid, seen))
            found.extend(fresh)
            frontier = fresh
            if not fresh or not any(i.iterate for i in request.include + request.revinclude):
                break
        return found

    def _take(self, rtype: str, rid: str, seen: set) -> list[dict]:
        if (rtype, rid) in seen:
            return []
        seen.add((rtype, rid))
        version = self.store.read(rtype, rid)
        return [version.resource] if version and not version.deleted else []

    # -- writing ------------------------------------------------------------
    def _checked_body(self, rtype: str, body: object) -> dict:
        from mockehr.fhir.validate import validate_resource

        if not isinstance(body, dict):
            raise FHIRError(400, "invalid", "the request body must be a JSON object holding one FHIR resource")
        if body.get("resourceType") != rtype:
            raise FHIRError(400, "invalid", f"the body's resourceType is {body.get('resourceType')!r}, "
                            f"but the URL is for {rtype}", "resourceType")
        issues = [i for i in validate_resource(body) if i.severity == "error"]
        if issues:
            first, rest = issues[0], issues[1:]
            raise FHIRError(422, first.code, first.message, first.expression,
                            extra=[Problem("error", i.code, i.message, i.expression) for i in rest])
        return body

    def create(self, rtype: str, body: object, if_none_exist: str | None = None,
               access: RequestAccess | None = None) -> tuple[Version, bool]:
        """(version, created); created is False when If-None-Exist found the resource already there."""
        check_type(rtype)
        decision = access.require("create", rtype) if access else None
        resource = dict(self._checked_body(rtype, body))
        resource.pop("id", None)  # the server assigns ids on create
        if access:
            access.check(decision, rtype, resource, "create")
        with self.store.lock:
            if if_none_exist:
                pairs = parse_qsl(if_none_exist.lstrip("?"), keep_blank_values=True)
                ids = search.run(search.parse(rtype, pairs, strict=True), self.store.index(rtype))
                if access:  # what the caller may not see does not exist for it (nor is it answered back)
                    ids = [rid for rid in ids if access.may_see(rtype, self.store.read(rtype, rid).resource)]
                if len(ids) > 1:
                    raise FHIRError(412, "duplicate", f"If-None-Exist: {if_none_exist} matches {len(ids)} "
                                    f"{rtype} resources; it must match at most one")
                if ids:
                    return self.store.read(rtype, ids[0]), False
            return self.store.create(rtype, resource), True

    def update(self, rtype: str, rid: str, body: object, if_match: int | None = None,
               access: RequestAccess | None = None) -> tuple[Version, bool]:
        check_type(rtype)
        check_id(rid)
        decision = access.require("update", rtype) if access else None
        resource = self._checked_body(rtype, body)
        if "id" not in resource:
            raise FHIRError(400, "required", f"the body has no id; it must carry id '{rid}' as in the URL", "id")
        if resource["id"] != rid:
            raise FHIRError(400, "invalid", f"the body's id '{resource['id']}' does not match the URL's '{rid}'", "id")
        if access:
            current = self.store.read(rtype, rid)
            if current is not None and not current.deleted:
                access.check(decision, rtype, current.resource, "update")
            access.check(decision, rtype, resource, "update")
        try:
            return self.store.update(rtype, rid, resource, if_match)
        except VersionConflict as conflict:
            current = f"version {conflict.current}" if conflict.current else "no live version"
            raise FHIRError(412, "conflict", f"If-Match asks for version {if_match} of {rtype}/{rid}, "
                            f"but the server has {current}") from None

    def delete(self, rtype: str, rid: str, access: RequestAccess | None = None) -> Version | None:
        check_type(rtype)
        check_id(rid)
        decision = access.require("delete", rtype) if access else None
        with self.store.lock:
            current = self.store.read(rtype, rid)
            if access and current is not None and not current.deleted:
                access.check(decision, rtype, current.resource, "delete")
            referrers = self.referrers(rtype, rid)
            if referrers:
                sample = ", ".join(referrers[:5]) + (" ..." if len(referrers) > 5 else "")
                raise FHIRError(409, "conflict", f"{rtype}/{rid} is still referenced by {len(referrers)} "
                                f"resource(s) ({sample}); delete or update those first")
            return self.store.delete(rtype, rid)

    def referrers(self, rtype: str, rid: str) -> list[str]:
        key, out = f"{rtype}/{rid}", []
        for source in RESOURCE_TYPES:
            index = self.store.index(source)
            hits = set().union(*(index.lookup(param, key) for param in reference_params(source)))
            out.extend(f"{source}/{hit}" for hit in sorted(hits) if (source, hit) != (rtype, rid))
        return out

    # -- history and operations -------------------------------------------
    def history(self, rtype: str | None, rid: str | None, since: str | None,
                access: RequestAccess | None = None) -> list[Version]:
        if rtype is not None:
            check_type(rtype)
            if access:
                access.require("history", rtype)
        if rid is not None:
            check_id(rid)
            versions = self.store.history(rtype, rid)
            if not versions:
                raise FHIRError(404, "not-found", f"{rtype}/{rid} is not known to this server")
            if access and not access.may_see_id(rtype, rid):
                # as a read would: another patient's resource is refused, not shown as empty history
                raise forbidden(f"history of {rtype}/{rid} is not allowed: it is outside what this token may see")
        else:
            versions = self.store.all_history(rtype)
        if since:
            try:
                low = date_range(since)[0]
            except BadValue as exc:
                raise FHIRError(400, "invalid", f"_since: {exc}") from None
            versions = [v for v in versions if date_range(v.last_updated)[0] >= low]
        if access:  # a version shows when its resource, as it was then, is visible to the caller
            versions = [v for v in versions if v.resource is None and access.may_see_id(v.type, v.id)
                        or v.resource is not None and access.may_see(v.type, v.resource)]
        return versions

    def everything(self, pid: str, types: list[str] | None, since: str | None,
                   access: RequestAccess | None = None) -> list[dict]:
        """The patient and its compartment, then what those resources point at outside it."""
        patient = self.read("Patient", pid, access).resource
        unknown = [t for t in types or [] if t not in _SERVED]
        if unknown:
            raise FHIRError(400, "invalid", f"_type: {', '.join(unknown)} is not a resource type this server "
                            "serves", "_type")
        low = None
        if since:
            try:
                low = date_range(since)[0]
            except BadValue as exc:
                raise FHIRError(400, "invalid", f"_since: {exc}") from None
        key = f"Patient/{pid}"
        with self.store.lock:
            members: list[dict] = [patient]
            for rtype, params in PATIENT_COMPARTMENT.items():
                index = self.store.index(rtype)
                ids = set().union(*(index.lookup(p, key) for p in params))
                members.extend(self.store.read(rtype, rid).resource for rid in sorted(ids))
            seen = {(r["resourceType"], r["id"]) for r in members}
            extras: list[dict] = []
            outside: dict[str, tuple[str, str] | None] = {}  # reference key -> target outside the compartment
            for resource in members:
                rtype = resource["resourceType"]
                ref_params = reference_params(rtype)
                for param, refs in self.store.index(rtype).all_keys(resource["id"]).items():
                    if param not in ref_params:
                        continue
                    for ref in refs:
                        if ref not in outside:
                            target = reference_target(ref) if "/" in ref else None
                            keep = target and target[0] not in PATIENT_COMPARTMENT and target[0] != "Patient"
                            outside[ref] = target if keep else None
                        target = outside[ref]
                        if target is not None and target not in seen:
                            extras.extend(self._take(target[0], target[1], seen))
        result = members + extras
        if types:
            result = [r for r in result if r["resourceType"] in types]
        if low is not None:
            result = [r for r in result if date_range(r["meta"]["lastUpdated"])[0] >= low]
        if access:
            result = [r for r in result if access.may_see(r["resourceType"], r)]
        return result
