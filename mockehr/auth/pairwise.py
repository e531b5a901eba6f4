"""Pairwise subject identifiers (OIDC Core 8.1).

A client registered with `subject_type=pairwise` sees each user under a `sub` of its own sector:
HMAC-SHA256(server secret, len(sector) ":" sector user), base64url (43 characters). The same user
has the same `sub` in every app of one sector and a different one in every other sector, and no
app can work back to the internal id (`Practitioner/pr-okafor`) from it. The sector is the host of the
`sector_identifier_uri` when the client registered one (mockehr never fetches that document: a
sandbox must work offline, so the client's word is taken), else the host of its redirect_uris
(which must then all share one host; a private-use scheme like com.example.app:/cb counts as
the host "com.example.app").

The secret is random, 32 bytes; under --data-dir it is kept in pairwise.key (mode 600) so the
identifiers survive restarts; in memory it lives as long as the server.

SMART's `fhirUser` claim still names the FHIR resource of the user (that is its point: the app
reads the Practitioner or Patient), so an app granted `fhirUser` learns the real identity anyway;
pairwise `sub` hides the user only from apps that are not granted fhirUser (or profile claims).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from mockehr.store.overlay import atomic_write

SECRET_FILE = "pairwise.key"


def uri_host(uri: str) -> str | None:
    """The host of a URI (lower case), or the scheme of a private-use URI without one."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.hostname:
        return parts.hostname.lower()
    return parts.scheme.lower() or None


def sector_identifier(redirect_uris, sector_identifier_uri: str | None) -> str | None:
    """The client's sector: the host of sector_identifier_uri, else the one host of its redirect_uris."""
    if sector_identifier_uri:
        return uri_host(sector_identifier_uri)
    hosts = {uri_host(uri) for uri in redirect_uris} - {None}
    return hosts.pop() if len(hosts) == 1 else None


def registration_problem(subject_type: str, redirect_uris, sector_identifier_uri: str | None) -> str | None:
    """OIDC Registration 2: redirect_uris on several hosts need a sector_identifier_uri for pairwise."""
    if subject_type != "pairwise" or sector_identifier_uri:
        return None
    hosts = sorted({uri_host(uri) for uri in redirect_uris} - {None})
    if len(hosts) > 1:
        return (f"subject_type 'pairwise' with redirect_uris on several hosts ({', '.join(hosts)}) needs a "
                "sector_identifier_uri naming the sector (OIDC Core 8.1)")
    return None


def pairwise_sub(secret: bytes, sector: str, user: str) -> str:
    message = f"{len(sector)}:{sector}{user}"  # length-prefixed: no (sector, user) pair collides with another
    mac = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def load_secret(data_dir: Path | None) -> bytes:
    """The server's pairwise secret: pairwise.key under --data-dir (made on first use), else a fresh one."""
    if data_dir is None:
        return secrets.token_bytes(32)
    path = Path(data_dir) / SECRET_FILE
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    secret = secrets.token_bytes(32)
    os.makedirs(path.parent, exist_ok=True)
    atomic_write(path, secret.hex().encode(), mode=0o600)
    return secret


class Subjects:
    """`sub` for a user as a client sees it."""

    def __init__(self, secret: bytes):
        self._secret = secret

    def of(self, client, user: str | None) -> str | None:
        if not user or client is None or getattr(client.metadata, "subject_type", "public") != "pairwise":
            return user
        metadata = client.metadata
        sector = sector_identifier(metadata.redirect_uris, metadata.extra.get("sector_identifier_uri")) \
            or f"client:{client.client_id}"
        return pairwise_sub(self._secret, sector, user)
