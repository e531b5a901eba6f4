"""The CLI mirror of the control API: `mockehr fault|keys|reset|audit|token|launch` against a running server.

`ControlClient` is a small JSON client on urllib.request (no extra dependency).
Every failure it meets becomes a `ControlError` (a click.ClickException: exit 1,
one line on stderr, no traceback): the server cannot be reached, or it refused
the call (its own `error` message is shown), or it answered something that is not
mockehr's JSON. Bad input caught before anything is sent (a fault spec that does
not parse) exits 2, like any other usage error.
"""

from __future__ import annotations

import functools
import http.client
import json
import time
import urllib.error
import urllib.request
from base64 import b64encode
from urllib.parse import urlencode, urlsplit

import click

DEFAULT_URL = "http://127.0.0.1:8080"
POLL_SECONDS = 0.5


class ControlError(click.ClickException):
    """A call that failed; `status` is the HTTP status, or None when nothing answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _server_message(raw: bytes) -> str | None:
    """The message in an error body: {"error"[, "error_description"]} or an OperationOutcome."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), str):
        description = body.get("error_description")
        return f"{body['error']}: {description}" if description else body["error"]
    issues = body.get("issue")
    if isinstance(issues, list) and issues and isinstance(issues[0], dict):
        return issues[0].get("diagnostics") or issues[0].get("code")
    return None


class ControlClient:
    """JSON calls to a running mockehr: the control API (/admin, bearer --admin-token) and the auth server."""

    def __init__(self, url: str = DEFAULT_URL, admin_token: str | None = None, timeout: float = 30):
        self.root = url.rstrip("/")
        self.admin_token = admin_token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict | None = None, *, form: dict | None = None,
             headers: dict | None = None):
        """Send one request; answers the parsed JSON body of a 2xx, raises ControlError otherwise."""
        sent = {"Accept": "application/json"}
        data = None
        if form is not None:
            data = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None or method in ("POST", "PUT"):
            data = json.dumps(body or {}).encode()
            sent["Content-Type"] = "application/json"
        if self.admin_token and path.startswith("/admin/"):
            sent["Authorization"] = f"Bearer {self.admin_token}"
        sent.update(headers or {})
        request = urllib.request.Request(self.root + path, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            finally:
                exc.close()
            message = _server_message(raw) or f"{method} {path} answered {exc.code} {exc.reason}"
            raise ControlError(f"{message} (HTTP {exc.code})", exc.code) from None
        except urllib.error.URLError as exc:
            raise ControlError(f"cannot reach mockehr at {self.root}: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, malformed answers
            raise ControlError(f"cannot reach mockehr at {self.root}: {exc or type(exc).__name__}") from None
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise ControlError(f"{self.root}{path} answered {status} with a body that is not JSON; "
                               "is --url a mockehr server?", status) from None

    # ---- the control API ----------------------------------------------------------------

    def faults(self) -> list[dict]:
        return self.call("GET", "/admin/faults")

    def add_fault(self, spec: str) -> dict:
        return self.call("POST", "/admin/faults", {"spec": spec})

    def clear_faults(self) -> dict:
        return self.call("DELETE", "/admin/faults")

    def remove_fault(self, fault_id: str) -> dict:
        return self.call("DELETE", "/admin/faults/" + urllib.request.quote(fault_id, safe=""))

    def rotate_keys(self, keep_old: bool = False) -> dict:
        return self.call("POST", "/admin/keys/rotate", {"keep_old": keep_old})

    def reset(self) -> dict:
        return self.call("POST", "/admin/reset")

    def audit(self, since: int = 0) -> list[dict]:
        """Events with id > since, oldest first (filtered here too, for servers without ?since=)."""
        events = self.call("GET", "/admin/audit" + (f"?since={since}" if since else ""))
        if not isinstance(events, list):
            raise ControlError(f"{self.root}/admin/audit did not answer a list of events")
        return [event for event in events if isinstance(event, dict) and event.get("id", 0) > since]

    def launch(self, body: dict) -> dict:
        return self.call("POST", "/admin/launches", body)

    def mint_token(self, body: dict) -> dict:
        return self.call("POST", "/admin/tokens", body)

    def backend_token(self, scope: str) -> dict:
        """A token the way a backend service gets one: register a client, then client_credentials."""
        client = self.call("POST", "/auth/register", {"client_name": "mockehr token (CLI)",
                                                      "grant_types": ["client_credentials"],
                                                      "token_endpoint_auth_method": "client_secret_basic"})
        basic = b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
        return self.call("POST", "/auth/token", form={"grant_type": "client_credentials", "scope": scope},
                         headers={"Authorization": f"Basic {basic}"})


# ---- shared options -----------------------------------------------------------------------

def _check_url(ctx, param, value: str) -> str:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"'{value}' is not an http(s) URL such as {DEFAULT_URL}")
    return value


def with_client(command):
    """Adds --url and --admin-token; the command receives a ControlClient as `client`."""
    @click.option("--url", default=DEFAULT_URL, show_default=True, envvar="MOCKEHR_URL", show_envvar=True,
                  callback=_check_url, help="Root URL of a running mockehr.")
    @click.option("--admin-token", envvar="MOCKEHR_ADMIN_TOKEN", show_envvar=True,
                  help="The server's --admin-token, when it has one.")
    @functools.wraps(command)
    def wrapper(url, admin_token, **kwargs):
        return command(client=ControlClient(url, admin_token), **kwargs)
    return wrapper


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# ---- mockehr fault ------------------------------------------------------------------------

@click.group()
def fault() -> None:
    """Fault injection on a running server (the control API's /admin/faults).

    SPEC is KIND[:key=value,...], e.g. throttle:every=2 or error:status=503,count=1.
    """


@fault.command("add")
@click.argument("spec")
@with_client
def fault_add(client: ControlClient, spec: str) -> None:
    """Add a fault; prints its id and what it does."""
    from mockehr.faults import FaultSpecError, parse_fault

    try:
        parsed = parse_fault(spec)
    except FaultSpecError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
    added = client.add_fault(spec)
    click.echo(f"{added['id']}  {added.get('description') or parsed.describe()}")


def _fault_rows(faults: list[dict]) -> list[tuple[str, ...]]:
    rows = [("ID", "SPEC", "FIRED", "REMAINING", "SPENT", "WHAT")]
    for item in faults:
        remaining = item.get("remaining")
        rows.append((str(item.get("id", "")), str(item.get("spec", "")), str(item.get("fired", 0)),
                     "-" if remaining is None else str(remaining), "yes" if item.get("spent") else "no",
                     str(item.get("description", ""))))
    return rows


@fault.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON as is.")
@with_client
def fault_list(client: ControlClient, as_json: bool) -> None:
    """List the faults in force (remaining '-' = no limit)."""
    faults = client.faults()
    if as_json:
        _echo_json(faults)
        return
    if not faults:
        click.echo("no faults")
        return
    rows = _fault_rows(faults)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


@fault.command("clear")
@with_client
def fault_clear(client: ControlClient) -> None:
    """Remove every fault."""
    cleared = client.clear_faults().get("cleared", 0)
    click.echo(f"cleared {cleared} fault{'' if cleared == 1 else 's'}")


@fault.command("remove")
@click.argument("fault_id", metavar="ID")
@with_client
def fault_remove(client: ControlClient, fault_id: str) -> None:
    """Remove one fault by id (see `mockehr fault list`)."""
    removed = client.remove_fault(fault_id)
    click.echo(f"removed {removed.get('removed', fault_id)}")


# ---- mockehr keys, reset --------------------------------------------------------------------

@click.group()
def keys() -> None:
    """The authorization server's signing keys."""


@keys.command("rotate")
@click.option("--keep-old", is_flag=True, help="Keep the old keys in the JWKS (tokens signed with them still work).")
@with_client
def keys_rotate(client: ControlClient, keep_old: bool) -> None:
    """Start signing with a new key; prints its kid."""
    click.echo(client.rotate_keys(keep_old)["kid"])


@click.command()
@with_client
def reset(client: ControlClient) -> None:
    """Put a running server back to its seed state: data, clients, tokens, faults, audit trail."""
    client.reset()
    click.echo(f"reset {client.root} to its seed state")


# ---- mockehr audit --------------------------------------------------------------------------

def _short(value) -> str:
    if isinstance(value, dict):
        return str(value.get("spec") or value.get("id") or json.dumps(value))
    return str(value)


def format_event(event: dict) -> str:
    """One line: time, type, outcome, who, what, why."""
    who = " ".join(f"{name}={_short(event[name])}" for name in ("client", "user", "patient") if event.get(name))
    what = []
    if event.get("method") and event.get("path"):
        what.append(f"{event['method']} {event['path']}" + (f" -> {event['status']}" if event.get("status") else ""))
    for name in ("fault", "spec", "kid", "grant_type"):
        if event.get(name) is not None:
            what.append(f"{name}={_short(event[name])}")
    error, reason = event.get("error"), event.get("reason")
    why = f"{error}: {reason}" if error and reason and error not in str(reason) else (reason or error or "")
    parts = [str(event.get("time", "")), f"{event.get('type', '?'):<12}", f"{event.get('outcome', ''):<7}",
             who, " ".join(what), _short(why) if why else ""]
    return "  ".join(part for part in parts if part).rstrip()


@click.command()
@click.option("--follow", "-f", is_flag=True, help=f"Keep printing new events (polls every {POLL_SECONDS} s) "
                                                     "until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event and line (NDJSON).")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Only events of this type (fhir, token, authorize, launch, fault, ...); repeat for several.")
@with_client
def audit(client: ControlClient, follow: bool, as_json: bool, types: tuple[str, ...]) -> None:
    """Print the audit trail, oldest first, one event per line."""
    wanted = {t.lower() for t in types}

    def show(events: list[dict]) -> int:
        last = 0
        for event in events:
            last = max(last, event.get("id", 0))
            if wanted and str(event.get("type", "")).lower() not in wanted:
                continue
            click.echo(json.dumps(event, ensure_ascii=False) if as_json else format_event(event))
        return last

    try:
        last = show(client.audit())
        while follow:
            time.sleep(POLL_SECONDS)
            last = max(last, show(client.audit(since=last)))
    except KeyboardInterrupt:
        return


# ---- mockehr token, launch ------------------------------------------------------------------

@click.command()
@click.option("--scope", help="Scopes to ask for. Default: system/*.rs; with --patient patient/*.rs; "
                              "with --user (and no --patient) user/*.rs.")
@click.option("--client", "client_id", help="Mint for this client_id (POST /admin/tokens).")
@click.option("--patient", help="Patient id in context (POST /admin/tokens).")
@click.option("--user", help="Practitioner/ID or Patient/ID the token acts for (POST /admin/tokens).")
@click.option("--encounter", help="Encounter id in context (POST /admin/tokens).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole token response.")
@with_client
def token(client: ControlClient, scope, client_id, patient, user, encounter, as_json) -> None:
    """Print an access token from a running server, for curl.

    Without --client/--patient/--user/--encounter it registers a backend-services
    client and runs client_credentials (system/ scopes). With any of them it mints
    the token directly through the control API (POST /admin/tokens), audited like
    the token endpoint.

    \b
    TOKEN=$(mockehr token --patient p00001-diabetes-htn)
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/fhir/Patient/p00001-diabetes-htn
    """
    context = {"client_id": client_id, "patient": patient, "user": user, "encounter": encounter}
    if any(context.values()):
        if scope is None:
            scope = "patient/*.rs" if patient else "user/*.rs" if user else "system/*.rs"
        answer = client.mint_token({"scope": scope, **{k: v for k, v in context.items() if v}})
    else:
        answer = client.backend_token(scope or "system/*.rs")
    if as_json:
        _echo_json(answer)
    else:
        click.echo(answer["access_token"])


@click.command()
@click.option("--patient", help="Patient id in context.")
@click.option("--user", help="Practitioner/ID or Patient/ID who launches the app.")
@click.option("--encounter", help="Encounter id in context.")
@click.option("--app-url", help="The app's launch URL; the answer then includes launch_url to open.")
@click.option("--intent", help="SMART intent, e.g. reconcile-medications.")
@click.option("--no-banner", is_flag=True, help="need_patient_banner = false (the EHR shows its own banner).")
@click.option("--sim-error", help="Make one step of this launch fail (e.g. auth_invalid_scope, "
                                  "request_expired_token).")
@with_client
def launch(client: ControlClient, patient, user, encounter, app_url, intent, no_banner, sim_error) -> None:
    """Mint an EHR launch on a running server (POST /admin/launches); prints launch_url, or the launch id."""
    body = {k: v for k, v in {"patient": patient, "user": user, "encounter": encounter, "app_url": app_url,
                              "intent": intent, "sim_error": sim_error}.items() if v}
    if no_banner:
        body["need_patient_banner"] = False
    created = client.launch(body)
    click.echo(created.get("launch_url") or f"launch={created['launch']} iss={created['iss']}")


COMMANDS = (fault, keys, reset, audit, token, launch)
