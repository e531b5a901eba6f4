"""The `mockehr` command: thin wrappers that parse options, call, and print."""

from __future__ import annotations

import time
from pathlib import Path

import click

from mockehr import __version__, control_cli


@click.group()
@click.version_option(__version__, prog_name="mockehr")
def main() -> None:
    """mockehr: a SMART on FHIR EHR for your laptop and your test suite."""


def _check_faults(specs: tuple[str, ...]) -> tuple[str, ...]:
    """Bad specs stop `serve` before it starts: exit 2 with the parser's message."""
    from mockehr.faults import FaultSpecError, parse_fault

    for spec in specs:
        try:
            parse_fault(spec)
        except FaultSpecError as exc:
            raise click.BadParameter(str(exc), param_hint=f"--fault {spec!r}") from None
    return specs


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Persist writes here (default: in memory, gone at exit).")
@click.option("--dataset", "dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Serve a dataset written by `mockehr seed` instead of the default one.")
@click.option("--patients", type=click.IntRange(1, 5_000),
              help="Generate this many patients at start instead of the default dataset.")
@click.option("--seed", type=int, help="Seed for --patients (default: the default dataset's seed).")
@click.option("--public-url", help="The root URL as clients see it (behind a proxy or in a container).")
@click.option("--time-shift/--no-time-shift", default=True, show_default=True,
              help="Move the dataset's dates so its fixed 'today' is this week (a newborn stays a newborn).")
@click.option("--auto-approve", is_flag=True,
              help="Skip login, pickers and consent: authorize redirects straight back with a code.")
@click.option("--strict", is_flag=True,
              help="Refuse unknown client_ids (no on-the-spot registration) and requests without PKCE.")
@click.option("--access-token-lifetime", type=click.IntRange(1, 365 * 24 * 3600), default=3600,
              show_default=True, help="Seconds an access token lives.")
@click.option("--require-par", is_flag=True,
              help="Refuse authorization requests not pushed to the PAR endpoint first (RFC 9126).")
@click.option("--require-dpop", is_flag=True,
              help="Refuse token requests without a DPoP proof: every access token is DPoP-bound (RFC 9449).")
@click.option("--dpop-nonce", is_flag=True,
              help="DPoP proofs must carry a server nonce (use_dpop_nonce answers with a DPoP-Nonce header).")
@click.option("--admin-token", help="Open the control API (/admin) to any caller with this bearer token "
                                    "(default: loopback callers only).")
@click.option("--fault", "faults", multiple=True, callback=lambda ctx, param, value: _check_faults(value),
              metavar="SPEC", help="A fault in force from the start, e.g. throttle:every=3 (repeatable; "
                                   "see the README's Faults section).")
@click.option("--fault-seed", type=int, default=0, show_default=True,
              help="Seed of the faults' rate draws: the same seed repeats the same pattern.")
@click.option("--bulk-delay", type=click.FloatRange(0, 86_400), metavar="SECONDS",
              help="Make every Bulk Data export ($export) take at least this long (default 0).")
@click.option("--json", "json_line", is_flag=True,
              help='Once listening, print one JSON line {"url", "fhir_base", "smart_configuration", "port"} '
                   "instead of the two human lines (for test suites in other languages).")
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Once listening, write the same JSON (plus the pid) to this file, atomically; removed at exit.")
def serve(host, port, data_dir, dataset_dir, patients, seed, public_url, time_shift, auto_approve, strict,
          access_token_lifetime, admin_token, faults, fault_seed, json_line, ready_file, bulk_delay,
          require_par=False, require_dpop=False, dpop_nonce=False) -> None:
    """Serve the FHIR API, the authorization server and the launcher on one port."""
    from mockehr.config import Settings
    from mockehr.server import run_forever
    from mockehr.store.dataset import DatasetError

    if dataset_dir and (patients or seed is not None):
        raise click.UsageError("--dataset cannot be combined with --patients/--seed")
    if seed is not None and patients is None:
        from mockehr.synth import DEFAULT_PATIENTS
        patients = DEFAULT_PATIENTS
    settings = Settings.from_env(host=host, port=port, data_dir=data_dir, dataset_dir=dataset_dir,
                                 patients=patients, seed=seed, public_url=public_url,
                                 time_shift=time_shift, auto_approve=auto_approve or None, strict=strict or None,
                                 access_token_lifetime=access_token_lifetime, admin_token=admin_token,
                                 faults=tuple(faults), fault_seed=fault_seed, bulk_delay=bulk_delay,
                                 require_par=require_par or None, require_dpop=require_dpop or None,
                                 dpop_nonce=dpop_nonce or None)
    try:
        run_forever(settings, announce=lambda line: click.echo(line), json_line=json_line, ready_file=ready_file)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # e.g. the port is taken
        import errno
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(f"cannot listen on {host}:{port}: port {port} is in use by another "
                                       "program; pick another with --port (or --port 0 for any free one)") from None
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@main.command()
@click.option("--patients", default=None, type=click.IntRange(1, 5_000),
              help="How many patients (default: the default dataset's size).")
@click.option("--seed", default=None, type=int, help="Random seed (default: the default dataset's seed).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the dataset into.")
def seed(patients, seed, out_dir) -> None:
    """Generate a synthetic dataset (NDJSON per resource type plus a patient catalogue)."""
    from mockehr import synth

    patients = synth.DEFAULT_PATIENTS if patients is None else patients
    seed = synth.DEFAULT_SEED if seed is None else seed
    with click.progressbar(length=patients, label=f"Generating {patients} patients") as bar:
        dataset = synth.generate_dataset(patients=patients, seed=seed, progress=bar.update)
    written = synth.write_dataset(dataset, out_dir)
    total = sum(written.values())
    click.echo(f"Wrote {total} resources of {len(written)} types to {out_dir}")


@main.group()
def clients() -> None:
    """Registered OAuth clients kept in a --data-dir (restart the server to see changes)."""


_DATA_DIR = click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                         help="The directory `mockehr serve --data-dir` uses.")


@clients.command("add")
@_DATA_DIR
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeat for several.")
@click.option("--auth", "method", default="none", show_default=True,
              type=click.Choice(["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]))
@click.option("--jwks", "jwks_file", type=click.File("rb"), help="Public JWKS file (private_key_jwt).")
@click.option("--jwks-uri", help="JWKS URL (private_key_jwt).")
@click.option("--grant", "grant_types", multiple=True,
              type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
              help="Default: authorization_code and refresh_token, or client_credentials without redirect URIs.")
@click.option("--scope", help="Scopes the client may ask for.")
@click.option("--name", "client_name", help="Shown on the consent page.")
@click.option("--require-pkce", is_flag=True)
def clients_add(data_dir, redirect_uris, method, jwks_file, jwks_uri, grant_types, scope, client_name,
                require_pkce) -> None:
    """Register a client; prints its client_id (and secret, once)."""
    import orjson

    from mockehr.auth.registration import RegistrationError, validate_client_metadata
    from mockehr.auth.state import ClientRegistry

    if not grant_types:
        grant_types = ("authorization_code", "refresh_token") if redirect_uris else ("client_credentials",)
    body = {"redirect_uris": list(redirect_uris), "token_endpoint_auth_method": method,
            "grant_types": list(grant_types), "require_pkce": require_pkce}
    for name, value in (("scope", scope), ("client_name", client_name), ("jwks_uri", jwks_uri)):
        if value:
            body[name] = value
    if jwks_file:
        body["jwks"] = orjson.loads(jwks_file.read())
    try:
        metadata = validate_client_metadata(body)
    except RegistrationError as exc:
        raise click.ClickException(f"{exc.error}: {exc.description}") from None
    client, secret = ClientRegistry(data_dir, time.time).register(metadata)
    click.echo(f"client_id: {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}  (shown once; only its digest is kept)")


@clients.command("list")
@_DATA_DIR
def clients_list(data_dir) -> None:
    """List registered clients."""
    from mockehr.auth.state import ClientRegistry

    for client in ClientRegistry(data_dir, time.time).all():
        meta = client.metadata
        origin = "auto-registered" if client.auto_registered else "registered"
        click.echo(f"{client.client_id}  {meta.token_endpoint_auth_method:20} {','.join(meta.grant_types):40} "
                   f"{meta.client_name or ''}  ({origin}) {' '.join(meta.redirect_uris)}")


@clients.command("remove")
@_DATA_DIR
@click.argument("client_id")
def clients_remove(data_dir, client_id) -> None:
    """Remove a client."""
    from mockehr.auth.state import ClientRegistry

    if not ClientRegistry(data_dir, time.time).remove(client_id):
        raise click.ClickException(f"no client '{client_id}' in {data_dir}")
    click.echo(f"removed {client_id}")


# The control API's mirror (fault, keys, reset, audit, token, launch) lives in mockehr/control_cli.py.
for _command in control_cli.COMMANDS:
    main.add_command(_command)
