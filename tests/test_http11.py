"""The HTTP/1.1 server under the app: keep-alive, bodies, HEAD, and refusals, over raw sockets."""

from __future__ import annotations

import socket
import threading

import pytest
from flask import Flask, Response, request

from mockehr.http11 import LeanWSGIServer


def _app() -> Flask:
    app = Flask("http11-test")

    @app.route("/echo", methods=["GET", "POST", "HEAD"])
    def echo():
        body = request.get_data()
        return {"method": request.method, "path": request.path, "args": request.args.to_dict(),
                "body": body.decode(), "length": len(body), "remote": request.remote_addr}

    @app.post("/ignore-body")
    def ignore_body():
        return "ignored"

    @app.get("/empty")
    def empty():
        return Response(status=204)

    @app.get("/stream")
    def stream():
        return Response((f"line {n}\n" for n in range(3)), mimetype="text/plain")

    return app


@pytest.fixture(scope="module")
def server():
    srv = LeanWSGIServer("127.0.0.1", 0, _app())
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.server_port), timeout=5)
    return sock


def _read_response(sock: socket.socket, head_only: bool = False) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            break
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return status, headers, rest[:length]


def test_keep_alive_serves_many_requests_on_one_connection(server):
    with _connect(server) as sock:
        for n in range(3):
            sock.sendall(f"GET /echo?n={n}&x=%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            status, headers, body = _read_response(sock)
            assert status == 200 and f'"n":"{n}"' in body.decode() and "\\u00e9" in body.decode()
            assert "connection" not in headers and headers["date"].endswith("GMT")


def test_request_bodies_by_length_and_chunked_and_the_next_request_still_parses(server):
    with _connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        assert b'"body":"hello"' in _read_response(sock)[2]
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n")
        assert b'"body":"abcdefg"' in _read_response(sock)[2]
        # a body the app never reads is skipped, not taken for the next request
        sock.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nGET /oops\r\n")
        assert _read_response(sock)[2] == b"ignored"
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        assert b'"method":"GET"' in _read_response(sock)[2]


def test_expect_100_continue(server):
    with _connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"ok")
        assert b'"body":"ok"' in _read_response(sock)[2]


def test_head_and_204_carry_no_body_and_streams_get_a_length(server):
    with _connect(server) as sock:
        sock.sendall(b"HEAD /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, _ = _read_response(sock, head_only=True)
        assert status == 200 and int(headers["content-length"]) > 0
        sock.sendall(b"GET /empty HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = _read_response(sock)
        assert status == 204 and body == b"" and "content-length" not in headers
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        assert _read_response(sock)[2] == b"line 0\nline 1\nline 2\n"


def test_http_1_0_and_connection_close_end_the_connection(server):
    for request_bytes in (b"GET /echo HTTP/1.0\r\n\r\n", b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n"):
        with _connect(server) as sock:
            sock.sendall(request_bytes)
            status, headers, _ = _read_response(sock)
            assert status == 200 and headers["connection"] == "close"
            assert sock.recv(10) == b""  # closed by the server


@pytest.mark.parametrize("raw", [
    b"NONSENSE\r\n\r\n",
    b"GET /echo HTTP/2.0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET /echo HTTP/1.1\r\n folded: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    b"GET /echo HTTP/1.1\r\n" + b"X-A: 1\r\n" * 201 + b"\r\n",
], ids=["no-version", "http2", "no-colon", "folding", "negative-length", "bad-chunk", "long-line",
        "many-headers"])
def test_malformed_requests_get_400_and_a_closed_connection(server, raw):
    with _connect(server) as sock:
        sock.sendall(raw)
        status, headers, body = _read_response(sock)
        assert status == 400 and headers["connection"] == "close"
        assert body.startswith(b"400 Bad Request: ")


def test_empty_lines_before_a_request_are_ignored_and_absolute_form_targets_work(server):
    with _connect(server) as sock:
        sock.sendall(b"\r\n\r\nGET http://127.0.0.1/echo?q=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        status, _, body = _read_response(sock)
        assert status == 200 and b'"path":"/echo"' in body and b'"q":"1"' in body
