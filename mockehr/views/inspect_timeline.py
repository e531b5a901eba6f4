"""The inspector's timeline: captured exchanges and audit events, made into steps. Pure.

A step is one HTTP exchange with the audit events recorded while it ran, or
one audit event recorded outside any request (a fault fired at start, ...).
Steps are ordered by id: an exchange gets its id when it ends, so the cursor
`since` never skips a slow request.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import orjson

from mockehr.audit import iso_time
from mockehr.views import explain

SHOWN_BODY = 8_000  # characters of a pretty-printed body shown in a step


def build_steps(exchanges: list[dict], events: list[dict]) -> list[dict]:
    """Steps, oldest first. Events of a request still running are left out (they come with its
    exchange, which is stored after them), and so are those whose exchange already left the ring."""
    fresh = {x["request_id"] for x in exchanges if "_step" not in x}  # steps not built yet need their events
    attached: dict[str, list[dict]] = {}
    alone = []
    for event in events:
        request_id = event.get("request_id")
        if request_id is None:
            alone.append(event)
        elif request_id in fresh:
            attached.setdefault(request_id, []).append(event)
    steps = [_cached_step(x, attached) for x in exchanges]
    steps += [event_step(e) for e in alone]
    steps.sort(key=lambda s: s["id"])
    return steps


def _cached_step(x: dict, attached: dict) -> dict:
    """An exchange's step is built once: its events were all recorded before it was stored."""
    step = x.get("_step")
    if step is None:
        step = x["_step"] = exchange_step(x, attached.get(x["request_id"], []))
    return step


# -- one exchange ---------------------------------------------------------------------
def exchange_view(x: dict) -> dict:
    """The parsed parts of a captured exchange; cached on it (an exchange never changes once stored)."""
    view = x.get("_view")
    if view is None:
        view = _parse(x)
        x["_view"] = view
    return view


def _parse(x: dict) -> dict:
    query = parse_qsl(x.get("query") or "", keep_blank_values=True)
    req_json, form, req_text = _body(x.get("req_body"))
    resp_json, _, resp_text = _body(x.get("resp_body"))
    location = next((v for n, v in x.get("resp_headers", []) if n == "Location"), "")
    tokens = []
    for where, unsigned in x.get("jwts", []):
        decoded = explain.decode_jwt(unsigned)
        if decoded:
            tokens.append({"label": explain.token_label(where), **decoded,
                           "notes": explain.claim_notes(decoded["claims"])})
    return {"query": query, "form": form, "req_json": req_json, "resp_json": resp_json, "location": location,
            "location_params": dict(parse_qsl(urlsplit(location).query)) if location else {},
            "tokens": tokens, "request_text": _request_text(x, query, req_text),
            "response_text": _response_text(x, resp_text)}


def _body(body: dict | None) -> tuple[object, list | None, str]:
    """(parsed JSON or None, form pairs or None, text to show) of a kept body."""
    if not body:
        return None, None, ""
    if "note" in body:
        return None, None, f"({body['note']})"
    if "form" in body:
        pairs = parse_qsl(body["form"], keep_blank_values=True)
        return None, pairs, "\n".join(f"{k}={v}" for k, v in pairs)
    if "json" in body:
        try:
            return body["json"], None, _pretty(body["json"])
        except TypeError:  # nested deeper than orjson writes (254 levels): a hostile body, shown by its size
            return None, None, f"(JSON nested too deeply to show, {body.get('size', 0)} bytes)"
    raw: bytes = body["raw"]
    truncated = body["size"] > len(raw)
    if not truncated and "json" in body.get("mime", ""):
        try:
            parsed = orjson.loads(raw)
            return parsed, None, _pretty(parsed)
        except (orjson.JSONDecodeError, TypeError):  # not JSON, or nested deeper than orjson writes: as text
            pass
    text = raw.decode("utf-8", "replace")
    if truncated:
        text += f"\n… ({body['size'] - len(raw)} more bytes not kept)"
    return None, None, text


def _pretty(value) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    if len(text) > SHOWN_BODY:
        text = text[:SHOWN_BODY] + f"\n… ({len(text) - SHOWN_BODY} more characters)"
    return text


def _request_text(x: dict, query: list, body: str) -> str:
    lines = [f"{x['method']} {x['path']}"]
    lines += [f"  {'?' if i == 0 else '&'}{k}={v}" for i, (k, v) in enumerate(query)]
    lines += [f"{n}: {v}" for n, v in x.get("req_headers", [])]
    return "\n".join(lines) + (f"\n\n{body}" if body else "")


def _response_text(x: dict, body: str) -> str:
    if not x.get("status"):
        return "(no response: the connection was dropped or the request failed before an answer)"
    lines = [f"HTTP {x['status']}  ({x.get('ms', 0):.1f} ms)"] + [f"{n}: {v}" for n, v in x.get("resp_headers", [])]
    return "\n".join(lines) + (f"\n\n{body}" if body else "")


def exchange_step(x: dict, events: list[dict]) -> dict:
    view = exchange_view(x)
    method, path, status = x["method"], x["path"], x.get("status", 0)
    kind = explain.classify(method, path)
    params = {**dict(view["query"]), **dict(view["form"] or [])}
    params["_location"] = view["location"]
    reason = failure_reason(events, view, x)
    failed = bool(reason) or status >= 400 or status == 0 or any(e.get("outcome") == "failure" for e in events)
    title, sentence = explain.describe(kind, method, path, status, params, not failed)
    minted = next((e for e in events if e.get("type") == "launch"), None)
    if minted:  # the control API or the launcher page created an EHR launch
        kind = "launch"
        title, sentence = explain.event_title(minted)
    interaction = explain.fhir_interaction(method, path)[0] if kind == "fhir" else None
    faults = [e for e in events if e.get("type") == "fault"]
    if faults:
        sentence += f" A configured fault fired here ({', '.join(explain.fault_name(e) for e in faults)})."
    return {
        "id": x["id"], "request_id": x["request_id"], "time": iso_time(x["start"]), "ms": round(x.get("ms", 0), 2),
        "kind": kind, "title": title, "explain": sentence, "outcome": "failure" if failed else "success",
        "reason": reason, "status": status, "method": method, "path": path,
        "spec": explain.spec_links(kind, params.get("grant_type"), not failed, interaction, bool(params.get("launch"))),
        "query": view["query"], "form": view["form"], "req_json": view["req_json"], "resp_json": view["resp_json"],
        "location": view["location_params"], "tokens": view["tokens"], "facts": x.get("facts", {}),
        "req_headers": dict(x.get("req_headers", [])), "events": events, "fault": bool(faults),
        "request_text": view["request_text"], "response_text": view["response_text"],
        "client": _first(e.get("client") for e in events), "launch": minted.get("launch") if minted else None,
        "grant": None,
        "quiet": kind == "page" and not events,  # page views of mockehr's own pages: hidden unless asked
    }


def failure_reason(events: list[dict], view: dict, x: dict) -> str | None:
    """Why the server refused, in its own words: the audit event, else the error body or header."""
    for event in events:
        if event.get("outcome") == "failure" and (event.get("reason") or event.get("error")):
            error, why = event.get("error"), event.get("reason")
            return f"{error}: {why}" if error and why else why or error
    body = view["resp_json"]
    if isinstance(body, dict):
        if body.get("error"):
            return f"{body['error']}: {body.get('error_description', '')}".rstrip(": ")
        if body.get("resourceType") == "OperationOutcome" and (x.get("status") or 0) >= 400:
            issue = (body.get("issue") or [{}])[0]
            return issue.get("diagnostics") or issue.get("code")
    params = view["location_params"]
    if params.get("error"):
        return f"{params['error']}: {params.get('error_description', '')}".rstrip(": ")
    challenge = next((v for n, v in x.get("resp_headers", []) if n == "WWW-Authenticate"), None)
    if challenge and (x.get("status") or 0) >= 400:
        return challenge
    return None


# -- one event on its own ---------------------------------------------------------------
def event_step(event: dict) -> dict:
    title, sentence = explain.event_title(event)
    failed = event.get("outcome") == "failure"
    fields = {k: v for k, v in event.items() if k not in ("id", "time", "type", "outcome")}
    return {
        "id": event["id"], "request_id": event.get("request_id"), "time": event["time"], "ms": None,
        "kind": event.get("type", "event"), "title": title, "explain": sentence,
        "outcome": "failure" if failed else "success", "reason": event.get("reason") if failed else None,
        "status": None, "method": None, "path": None,
        "spec": [explain.link("smart-ehr-launch")] if event.get("type") == "launch" else [],
        "query": [], "form": None, "req_json": None, "resp_json": None, "location": {}, "tokens": [], "facts": {},
        "req_headers": {}, "events": [event], "fault": event.get("type") == "fault",
        "request_text": "", "response_text": "\n".join(f"{k}: {v}" for k, v in fields.items()),
        "client": event.get("client"), "launch": event.get("launch") if event.get("type") == "launch" else None,
        "grant": None, "quiet": False,
    }


def _first(values):
    return next((v for v in values if v), None)


# -- what the browser gets ----------------------------------------------------------------
PUBLIC = ("id", "time", "ms", "kind", "title", "explain", "outcome", "reason", "status", "method", "path", "spec",
          "client", "launch", "fault", "request_text", "response_text")


def public(step: dict) -> dict:
    """The display fields of a step (what the page renders), JSON-ready; kept on a traced step."""
    shown = step.get("_public")
    if shown is not None and shown["launch"] == step["launch"] and shown["client"] == step["client"]:
        return shown
    shown = step["_public"] = {k: step[k] for k in PUBLIC}
    shown["tokens"] = [{"label": t["label"], "header": _pretty(t["header"]), "claims": _pretty(t["claims"]),
                        "notes": t["notes"]} for t in step["tokens"]]
    shown["events"] = _pretty(step["events"]) if step["events"] else ""
    return shown
