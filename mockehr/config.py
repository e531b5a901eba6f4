"""Settings: one dataclass, filled by the CLI, MOCKEHR_* environment variables or kwargs."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Persist writes under this directory; None keeps everything in memory.
    data_dir: Path | None = None
    # Serve a dataset directory written by `mockehr seed` instead of the default one.
    dataset_dir: Path | None = None
    # Generate a dataset at start instead of loading one (both None: the shipped default).
    patients: int | None = None
    seed: int | None = None
    # Move a seeded dataset's dates so its fixed "today" is this week (see store/dataset.py).
    time_shift: bool = True
    # The root URL as clients see it (proxies, containers); None: http://host:port
    public_url: str | None = None
    # Authorization: skip login/pickers/consent; refuse unknown clients and PKCE-less requests.
    auto_approve: bool = False
    strict: bool = False
    access_token_lifetime: int = 3600
    # PAR and DPoP (mockehr.auth.par_http, dpop_http): refuse authorization requests not pushed (RFC 9126),
    # token requests without a DPoP proof, and DPoP proofs without a server nonce (RFC 9449 8, 9).
    require_par: bool = False
    require_dpop: bool = False
    dpop_nonce: bool = False
    admin_token: str | None = None
    # Fault specs in force from the start (--fault), and the seed of their `rate` draws.
    faults: tuple[str, ...] = ()
    fault_seed: int = 0
    # Every Bulk Data export takes at least this many seconds (serve --bulk-delay).
    bulk_delay: float = 0.0
    # Largest page a search may return, whatever _count asks for.
    max_page_size: int = 1000
    default_page_size: int = 50
    # Largest request body accepted, in bytes: above it a 413 in the protocol's error shape.
    max_body_size: int = 16 * 1024 * 1024
    # Seconds a search may spend matching, sorting and including before it is stopped with a
    # 422 OperationOutcome (too-costly); 0 for no limit.
    search_time_budget: float = 10.0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> "Settings":
        """Defaults, then MOCKEHR_<FIELD> variables, then explicit overrides."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"MOCKEHR_{f.name.upper()}")
            if raw is not None and f.name not in ("extra", "faults"):
                values[f.name] = _coerce(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("data_dir", "dataset_dir"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        return cls(**values)


_INT_FIELDS = {"port", "patients", "seed", "max_page_size", "default_page_size", "access_token_lifetime",
               "max_body_size", "fault_seed"}
_BOOL_FIELDS = {"time_shift", "auto_approve", "strict", "require_par", "require_dpop", "dpop_nonce"}
_FLOAT_FIELDS = {"bulk_delay", "search_time_budget"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _coerce(name: str, raw: str):
    if name in _BOOL_FIELDS:
        if raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ValueError(f"MOCKEHR_{name.upper()} must be true or false, got {raw!r}")
    if name in _FLOAT_FIELDS:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 <= value < float("inf"):
            raise ValueError(f"MOCKEHR_{name.upper()} must be a number of seconds >= 0, got {raw!r}")
        return value
    if name in _INT_FIELDS:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"MOCKEHR_{name.upper()} must be a whole number, got {raw!r}") from None
    return raw
