"""The protocol inspector: ROOT/inspector (the page) and ROOT/inspector/events (what the page polls).

Guarded like the control API (it shows client ids and decoded claims): loopback
callers, or `Authorization: Bearer <--admin-token>`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from flask import Blueprint, Response, current_app, render_template, request

from mockehr.admin import AdminError, check_admin_caller
from mockehr.lint import lint
from mockehr.paths import launcher_dir
from mockehr.views.inspect_timeline import build_steps, public
from mockehr.views.inspect_trace import trace

PAGE_LIMIT = 100  # steps rendered on the first view
POLL_LIMIT = 100  # steps answered per poll


@dataclass
class Filters:
    client: str = ""
    launch: str = ""
    everything: bool = False  # include page views of mockehr's own pages

    @classmethod
    def from_args(cls, args) -> "Filters":
        return cls(args.get("client", "").strip(), args.get("launch", "").strip(), args.get("all") == "1")

    def keep(self, step: dict) -> bool:
        return ((self.everything or not step["quiet"]) and (not self.client or step["client"] == self.client)
                and (not self.launch or step["launch"] == self.launch))

    def query(self) -> dict:
        return {k: v for k, v in (("client", self.client), ("launch", self.launch),
                                  ("all", "1" if self.everything else "")) if v}


def snapshot() -> tuple[list[dict], list[dict]]:
    """(steps, findings) of everything captured so far, traced and linted."""
    audit = current_app.extensions["mockehr.audit"]
    steps = build_steps(audit.exchanges(), audit.events())  # exchanges first: their events are older
    traced = trace(steps)
    fhir_base = _root() + "/fhir"
    return steps, lint(steps, traced, fhir_base)


def _choices(steps: list[dict], key: str) -> list[str]:
    return sorted({s[key] for s in steps if s[key]})


def _findings(findings: list[dict], filters: Filters) -> list[dict]:
    return [f for f in findings if (not filters.client or f["client"] == filters.client)
            and (not filters.launch or f["launch"] == filters.launch)]


def _root() -> str:
    return current_app.config["MOCKEHR_ROOT_URL"]()


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json",
                    headers={"Cache-Control": "no-store"})


def build_blueprint() -> Blueprint:
    bp = Blueprint("inspector", __name__, url_prefix="/inspector",
                   template_folder=str(launcher_dir() / "templates"))

    @bp.before_request
    def guard():
        check_admin_caller()

    @bp.errorhandler(AdminError)
    def refused(error: AdminError):
        if request.path.endswith("/events"):
            return _json({"error": error.message}, error.status)
        page = render_template("inspector_refused.html", message=error.message, root=_root(), active="inspector")
        return Response(page, status=error.status, mimetype="text/html")

    @bp.get("")
    def page():
        filters = Filters.from_args(request.args)
        steps, findings = snapshot()
        shown = [s for s in steps if filters.keep(s)]
        return render_template(
            "inspector.html", root=_root(), active="inspector", steps=[public(s) for s in shown[-PAGE_LIMIT:]],
            hidden=max(0, len(shown) - PAGE_LIMIT),
            findings=_findings(findings, filters), filters=filters, clients=_choices(steps, "client"),
            launches=_choices(steps, "launch"), since=steps[-1]["id"] if steps else 0)

    @bp.get("/events")
    def events():
        filters = Filters.from_args(request.args)
        raw = request.args.get("since", "0")
        if not raw.isdigit():
            return _json({"error": "since must be a whole number (the last step id you have)"}, 400)
        since = min(int(raw), 2**63 - 1)  # the answer echoes it, and JSON integers stop at 64 bits
        steps, findings = snapshot()
        fresh = [s for s in steps if s["id"] > since and filters.keep(s)]
        return _json({"last": max(since, steps[-1]["id"] if steps else 0),
                      "steps": [public(s) for s in fresh[-POLL_LIMIT:]], "findings": _findings(findings, filters)})

    return bp
