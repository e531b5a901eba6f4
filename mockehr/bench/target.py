"""The server under test: mockehr and the framework floor, one WSGI app, one process, one port.

The floor is a bare Flask app (one route answering a small JSON object) mounted at
/_floor/ in front of mockehr's app by a path dispatcher, so both are served by the same
server class in the same process, through the same sockets, to the same client: the
ratio mockehr / floor is what mockehr adds on top of Flask and the HTTP server, and it
holds when absolute times drift on a shared machine.

    python -m mockehr.bench.target [--dataset DIR] [--no-auto-approve]   # lean server; prints a JSON line
    gunicorn -w 1 --threads 8 'mockehr.bench.target:gunicorn_app()'      # settings from MOCKEHR_* variables
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

FLOOR_PREFIX = "/_floor"


def floor_app():
    """The framework floor: the least a Flask endpoint can do."""
    from flask import Flask, request

    floor = Flask("mockehr-floor")

    @floor.route("/", methods=["GET", "POST"])
    def index():
        if request.method == "POST":
            request.get_data()
        return {"ok": True}

    return floor


class Dispatcher:
    """/_floor/... to the floor app, everything else to mockehr."""

    def __init__(self, app, floor):
        self.app = app  # mockehr's Flask app (tests and the bench reach its extensions through this)
        self.floor = floor

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        if path.startswith(FLOOR_PREFIX):
            environ["SCRIPT_NAME"] = FLOOR_PREFIX
            environ["PATH_INFO"] = path[len(FLOOR_PREFIX):] or "/"
            return self.floor(environ, start_response)
        return self.app(environ, start_response)


def build(settings) -> Dispatcher:
    from mockehr.app import create_app

    return Dispatcher(create_app(settings), floor_app())


def gunicorn_app() -> Dispatcher:
    """For `gunicorn 'mockehr.bench.target:gunicorn_app()'`: settings from MOCKEHR_* variables."""
    from mockehr.config import Settings

    return build(Settings.from_env())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="mockehr and the framework floor on one port (lean server)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--no-auto-approve", action="store_true")
    opts = parser.parse_args(argv)

    from mockehr.config import Settings
    from mockehr.server import _make_server

    settings = Settings(port=opts.port, dataset_dir=opts.dataset, auto_approve=not opts.no_auto_approve)
    server = _make_server(settings, quiet=True, app=build(settings))
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_port}", "pid": os.getpid()}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
