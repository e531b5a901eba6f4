"""The `mockehr` command: thin wrappers that parse options, call, and print."""

from __future__ import annotations

from pathlib import Path

import click

from mockehr import __version__


@click.group()
@click.version_option(__version__, prog_name="mockehr")
def main() -> None:
    """mockehr: a SMART on FHIR EHR for your laptop and your test suite."""


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
def serve(host, port, data_dir, dataset_dir, patients, seed, public_url, time_shift) -> None:
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
                                 time_shift=time_shift)
    try:
        run_forever(settings, announce=lambda line: click.echo(line))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # e.g. the port is taken
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
