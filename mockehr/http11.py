"""A small threaded HTTP/1.1 server for the WSGI app: keep-alive, chunked bodies, no frills.

Why not werkzeug's development server: every request there goes through
http.server's email-based header parser and a general-purpose environ builder;
test suites make thousands of loopback requests, and this path costs about half
as much per request. It also hands the app the raw socket
(`environ["mockehr.socket"]`) and honours `environ["mockehr.drop"]`, which the
`drop` fault sets to close a connection without answering.

Scope: what SMART apps, FHIR clients and browsers send to a local server.
Requests are read with hard limits (request line, header count and size,
chunked body size); anything malformed gets a plain 400 and the connection is
closed. TLS, HTTP/2 and pipelining beyond keep-alive are out of scope.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import socketserver
import sys
import time
from email.utils import formatdate
from typing import Callable
from urllib.parse import unquote_to_bytes

log = logging.getLogger("mockehr.http")

MAX_LINE = 65536
MAX_HEADERS = 200
MAX_CHUNKED_BODY = 64 * 1024 * 1024
MAX_DRAIN = 1024 * 1024  # body bytes the app left unread that are read and dropped to keep the connection
LINGER_SECONDS = 2.0  # how long an unread larger body is dropped before the connection closes
IDLE_TIMEOUT = 120.0  # seconds a connection may wait in one read or write (slowloris clients end there)
_NO_BODY_STATUS = (204, 304)
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BadRequest(Exception):
    status = "400 Bad Request"


class TooLarge(BadRequest):
    status = "413 Content Too Large"


def _read_line(rfile) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise BadRequest("request line or header line too long")
    return line


def read_headers(rfile) -> list[tuple[str, str]]:
    headers = []
    while True:
        line = _read_line(rfile)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise BadRequest("connection closed inside the headers")
        if line[:1] in (b" ", b"\t"):
            raise BadRequest("obsolete header line folding is not accepted")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"malformed header line {line[:60]!r}")
        headers.append((name, value.strip()))
        if len(headers) > MAX_HEADERS:
            raise BadRequest("too many header lines")


def read_chunked(rfile) -> bytes:
    body = bytearray()
    while True:
        size_line = _read_line(rfile).split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_line):  # int(x, 16) would also take '-5', '+5', '0x5' and '1_0'
            raise BadRequest("malformed chunk size")
        size = int(size_line, 16)
        if size == 0:
            read_headers(rfile)  # trailers, ignored
            return bytes(body)
        if len(body) + size > MAX_CHUNKED_BODY:
            raise TooLarge(f"chunked request body larger than {MAX_CHUNKED_BODY} bytes")
        body += rfile.read(size)
        if rfile.read(2) != b"\r\n":
            raise BadRequest("chunk not terminated by CRLF")


class _Body(io.RawIOBase):
    """wsgi.input for a Content-Length body: never reads past the body (the next request follows)."""

    def __init__(self, rfile, length: int):
        self._rfile = rfile
        self.remaining = length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data = self._rfile.read(size) if size else b""
        self.remaining -= len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readline(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data = self._rfile.readline(size) if size else b""
        self.remaining -= len(data)
        return data

    def drain(self) -> None:
        while self.remaining:
            if not self.read(min(self.remaining, 65536)):
                break


class _Handler(socketserver.StreamRequestHandler):
    timeout = IDLE_TIMEOUT  # per socket operation (StreamRequestHandler.setup applies it)
    rbufsize = 65536
    wbufsize = 0
    disable_nagle_algorithm = True
    server: "LeanWSGIServer"

    def handle(self) -> None:
        try:
            while self._one_request():
                pass
        except (ConnectionError, TimeoutError, socket.timeout):
            pass

    def _one_request(self) -> bool:
        try:
            line = _read_line(self.rfile)
            while line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore empty lines before a request
                line = _read_line(self.rfile)
            if not line:
                return False
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
            if not version.startswith("HTTP/1.") or not method.isalpha():
                raise ValueError
            headers = read_headers(self.rfile)
        except (ValueError, UnicodeDecodeError, BadRequest) as exc:
            self._refuse(str(exc) if isinstance(exc, BadRequest) else "malformed request line")
            return False
        try:
            environ, body = self._environ(method, target, version, headers)
        except BadRequest as exc:
            self._refuse(str(exc), exc.status)
            return False
        keep_alive = self._wants_keep_alive(version, environ)
        keep_alive = self._run(environ, keep_alive, method == "HEAD", body)
        if isinstance(body, _Body):
            if body.remaining > MAX_DRAIN:  # e.g. a 413: the connection closes rather than read it all
                self._linger(body)
                return False
            body.drain()
        return keep_alive

    def _linger(self, body: "_Body") -> None:
        """Close without reading a huge body, but gently: a socket closed with unread data resets, and
        the client would lose the answer it was sent. Half-close, drop what comes for a moment, go."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_SECONDS)
            deadline = time.monotonic() + LINGER_SECONDS
            while body.remaining and time.monotonic() < deadline:
                if not body.read(min(body.remaining, 65536)):
                    break
        except OSError:
            pass

    def _environ(self, method: str, target: str, version: str, headers) -> tuple[dict, object]:
        if target.startswith(("http://", "https://")):  # absolute-form (RFC 9112 3.2.2)
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        path, _, query = target.partition("?")
        host, port = self.server.server_address[:2]
        environ = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"), "QUERY_STRING": query,
            "REQUEST_URI": target, "RAW_URI": target, "SERVER_NAME": str(host), "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": version, "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "mockehr.socket": self.connection,
        }
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                key = "HTTP_" + key
                environ[key] = f"{environ[key]}, {value}" if key in environ else value
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            self._continue(environ)
            data = read_chunked(self.rfile)
            environ.pop("HTTP_TRANSFER_ENCODING")
            environ["CONTENT_LENGTH"] = str(len(data))
            environ["wsgi.input"] = body = io.BytesIO(data)
            environ["wsgi.input_terminated"] = True
            return environ, body
        length = environ.get("CONTENT_LENGTH", "0") or "0"
        if not length.isdigit():
            raise BadRequest(f"Content-Length {length[:20]!r} is not a number")
        if int(length):
            self._continue(environ)
        environ["wsgi.input"] = body = _Body(self.rfile, int(length))
        return environ, body

    def _continue(self, environ: dict) -> None:
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    @staticmethod
    def _wants_keep_alive(version: str, environ: dict) -> bool:
        connection = environ.get("HTTP_CONNECTION", "").lower()
        if version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    def _run(self, environ: dict, keep_alive: bool, head: bool, body=None) -> bool:
        started: list = []

        def start_response(status, response_headers, exc_info=None):
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, response_headers]
            return self.wfile.write  # the legacy write() callable; mockehr never uses it

        result = self.server.app(environ, start_response)
        if environ.get("mockehr.drop"):  # the drop fault: close the connection, answer nothing
            if hasattr(result, "close"):
                result.close()
            self.connection.shutdown(socket.SHUT_RDWR)
            return False
        if isinstance(body, _Body) and body.remaining > MAX_DRAIN:
            keep_alive = False  # the body is not read to its end (see _linger): say so
        try:
            chunks = iter(result)
            first = next((chunk for chunk in chunks if chunk), b"")
            status, response_headers = started
            code = int(status[:3])
            names = {name.lower() for name, _ in response_headers}
            streamed = "content-length" in names  # known length: write the rest as it comes
            body = first if streamed else b"".join([first, *chunks])
            lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in response_headers)]
            if not streamed and code not in _NO_BODY_STATUS and code >= 200:
                lines.append(f"Content-Length: {len(body)}")
            if "date" not in names:
                lines.append(f"Date: {formatdate(usegmt=True)}")
            if not keep_alive:
                lines.append("Connection: close")
            payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            sends_body = not head and code not in _NO_BODY_STATUS
            self.wfile.write(payload + body if sends_body else payload)
            if streamed:
                for chunk in chunks:
                    if chunk and sends_body:
                        self.wfile.write(chunk)
        finally:
            if hasattr(result, "close"):
                result.close()
        if self.server.log_request:
            self.server.log_request(environ, code)
        return keep_alive

    def _refuse(self, reason: str, status: str = BadRequest.status) -> None:
        body = f"{status}: {reason}\n".encode()
        self.wfile.write(f"HTTP/1.1 {status}\r\n".encode() + b"Content-Type: text/plain; charset=utf-8\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class LeanWSGIServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = socket.SOMAXCONN  # socketserver's 5 resets the 6th of a burst of connections
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, app, log_request: Callable | None = None,
                 idle_timeout: float | None = IDLE_TIMEOUT):
        """idle_timeout: seconds a connection may sit in one read or write (a silent keep-alive client, a
        request sent a byte at a time) before it is closed; its thread is then free again."""
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.log_request = log_request
        handler = _Handler
        if idle_timeout != _Handler.timeout:
            handler = type("_Handler", (_Handler,), {"timeout": idle_timeout})
        super().__init__((host, port), handler)

    @property
    def server_port(self) -> int:
        return self.server_address[1]
