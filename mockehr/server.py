"""Running the app: in the foreground (`mockehr serve`) or in a thread (tests, the Python API)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Callable

from mockehr.app import create_app
from mockehr.capture import FHIR_SECRET_FIELDS, SECRET_FIELDS, Scrubber
from mockehr.config import Settings
from mockehr.http11 import LeanWSGIServer

access_log = logging.getLogger("mockehr.access")


def _log_request(environ: dict, status: int) -> None:
    query = environ["QUERY_STRING"]
    if query:  # a token or code an app put in a URL is cut to its first characters, as in the audit trail
        path = environ["PATH_INFO"]
        fhir = path == "/fhir" or path.startswith("/fhir/")
        query = Scrubber(FHIR_SECRET_FIELDS if fhir else SECRET_FIELDS).query(query, "log")
    target = environ["PATH_INFO"] + (f"?{query}" if query else "")
    access_log.info('%s "%s %s" %s', environ["REMOTE_ADDR"], environ["REQUEST_METHOD"], target, status)


def _make_server(settings: Settings, quiet: bool, app=None) -> LeanWSGIServer:
    """quiet: no per-request access log lines (a test suite would drown in them).
    app: an app already built by create_app (default: a new one)."""
    return LeanWSGIServer(settings.host, settings.port, app if app is not None else create_app(settings),
                          log_request=None if quiet else _log_request)


def urls(root: str) -> dict:
    """The URLs a client starts from (`serve --json`, `--ready-file`, MockEHR)."""
    return {"url": root, "fhir_base": f"{root}/fhir",
            "smart_configuration": f"{root}/fhir/.well-known/smart-configuration"}


def _root(settings: Settings, port: int) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def run_forever(settings: Settings, announce: Callable[[str], None] = print, *, json_line: bool = False,
                ready_file: Path | None = None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM).

    Once the socket listens: json_line prints one JSON object with the URLs instead of the two
    human lines; ready_file gets the same object plus the pid (written atomically, removed at exit)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = _make_server(settings, quiet=False)
    root = _root(settings, server.server_port)
    ready = {**urls(root), "port": server.server_port, "pid": os.getpid()}
    if json_line:
        announce(json.dumps({k: ready[k] for k in ("url", "fhir_base", "smart_configuration", "port")}))
    else:
        announce(f"mockehr serving {root}/")
        announce(f"FHIR base: {root}/fhir")
    sys.stdout.flush()
    if ready_file is not None:
        ready_file = Path(ready_file)
        temporary = ready_file.with_name(ready_file.name + ".tmp")
        temporary.write_text(json.dumps(ready) + "\n")
        os.replace(temporary, ready_file)  # readers never see a half-written file
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)


class ServerThread:
    """The app on a free port in a background thread; `with ServerThread(settings) as s: s.url`.

    clock: the app's time source (see create_app); app: serve this app instead of building one."""

    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], float] | None = None, app=None):
        self.settings = settings or Settings(port=0)
        self._clock = clock
        self._app = app
        self._server: LeanWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def app(self):
        return self._server.app if self._server is not None else self._app

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def local_url(self) -> str:
        """http://127.0.0.1:PORT whatever --public-url says (for calls made on this machine)."""
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return _root(self.settings, self._server.server_port)

    @property
    def fhir_base(self) -> str:
        return self.url + "/fhir"

    def start(self) -> "ServerThread":
        app = self._app if self._app is not None else create_app(self.settings, clock=self._clock)
        self._server = _make_server(self.settings, quiet=True, app=app)
        self._thread = threading.Thread(target=self._server.serve_forever, name="mockehr", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop at once: socketserver's shutdown() waits for the loop's next poll (up to 0.5 s), so
        poke the listening socket until the loop has seen the request."""
        server, self._server = self._server, None
        if server is None:
            return
        stopper = threading.Thread(target=server.shutdown, name="mockehr-stop", daemon=True)
        stopper.start()
        address = server.server_address[:2]
        while stopper.is_alive():
            try:
                socket.create_connection(address, timeout=0.5).close()
            except OSError:
                pass
            stopper.join(0.02)
        server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
