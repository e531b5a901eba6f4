"""Running the app: in the foreground (`mockehr serve`) or in a thread (tests, the Python API)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Callable

from mockehr.app import create_app
from mockehr.config import Settings
from mockehr.http11 import LeanWSGIServer

access_log = logging.getLogger("mockehr.access")


def _log_request(environ: dict, status: int) -> None:
    query = environ["QUERY_STRING"]
    target = environ["PATH_INFO"] + (f"?{query}" if query else "")
    access_log.info('%s "%s %s" %s', environ["REMOTE_ADDR"], environ["REQUEST_METHOD"], target, status)


def _make_server(settings: Settings, quiet: bool) -> LeanWSGIServer:
    """quiet: no per-request access log lines (a test suite would drown in them)."""
    return LeanWSGIServer(settings.host, settings.port, create_app(settings),
                          log_request=None if quiet else _log_request)


def _root(settings: Settings, port: int) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def run_forever(settings: Settings, announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = _make_server(settings, quiet=False)
    root = _root(settings, server.server_port)
    announce(f"mockehr serving {root}/")
    announce(f"FHIR base: {root}/fhir")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class ServerThread:
    """The app on a free port in a background thread; `with ServerThread(settings) as s: s.url`."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings(port=0)
        self._server: LeanWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def app(self):
        return self._server.app

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def local_url(self) -> str:
        """http://127.0.0.1:PORT whatever --public-url says (for calls made on this machine)."""
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return _root(self.settings, self._server.server_port)

    @property
    def fhir_base(self) -> str:
        return self.url + "/fhir"

    def start(self) -> "ServerThread":
        self._server = _make_server(self.settings, quiet=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="mockehr", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
