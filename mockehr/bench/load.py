"""The load generator: a lean keep-alive HTTP/1.1 client and a concurrency runner.

Why not `requests`: it costs ~0.3 ms of client CPU per call, as much as some of the
answers being measured, and it is a test extra, not a dependency. This client writes
the request in one send and reads the answer by Content-Length or chunks; that is all
a loopback benchmark against mockehr (or gunicorn) needs.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence
from urllib.parse import urlencode, urlsplit


class BenchError(RuntimeError):
    """A request answered something other than what the scenario expects."""


@dataclass
class Answer:
    status: int
    headers: dict  # lower-case names; a repeated header keeps its last value
    body: bytes

    def json(self):
        import orjson

        return orjson.loads(self.body)


class Connection:
    """One keep-alive connection to http://host:port."""

    def __init__(self, root: str, timeout: float = 60.0):
        parts = urlsplit(root)
        self.host, self.port = parts.hostname, parts.port or 80
        self.host_header = f"{self.host}:{self.port}".encode()
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""

    def _connect(self) -> None:
        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(self, method: str, path: str, body: bytes = b"", headers: Sequence[tuple[str, str]] = (),
                head: bool = False) -> Answer:
        if self._sock is None:
            self._connect()
        lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self.host_header]
        lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
        if body or method in ("POST", "PUT"):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        try:
            self._sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            return self._read(head or method == "HEAD")
        except (ConnectionError, socket.timeout):
            self.close()
            raise

    def get(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> Answer:
        return self.request("GET", path, headers=headers)

    def post_form(self, path: str, fields: dict, headers: Sequence[tuple[str, str]] = ()) -> Answer:
        return self.request("POST", path, urlencode(fields).encode(),
                            [("Content-Type", "application/x-www-form-urlencoded"), *headers])

    def post_json(self, path: str, body: bytes, headers: Sequence[tuple[str, str]] = (),
                  content_type: str = "application/json") -> Answer:
        return self.request("POST", path, body, [("Content-Type", content_type), *headers])

    # -- reading ------------------------------------------------------------------------------
    def _fill(self) -> None:
        more = self._sock.recv(262144)
        if not more:
            raise ConnectionError("the server closed the connection")
        self._buf += more

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + 2:]
                return line
            self._fill()

    def _exactly(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def _read(self, head: bool) -> Answer:
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        raw, self._buf = self._buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if head or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                parts.append(self._exactly(size))
                self._exactly(2)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:  # read to the end of the connection
            while True:
                try:
                    self._fill()
                except ConnectionError:
                    break
            body, self._buf = self._buf, b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, headers, body)


# -- measuring ----------------------------------------------------------------------------------
@dataclass
class Run:
    """One scenario at one concurrency: every unit's latency (ms) and the wall time of the lot."""

    latencies: list[float]
    wall: float  # seconds from the start signal to the last unit's end
    concurrency: int

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(int(len(ordered) * 0.95) - 1, 0)]

    @property
    def rate(self) -> float:
        """Units per second over the wall time (throughput)."""
        return len(self.latencies) / self.wall if self.wall else float("nan")

    def merge(self, other: "Run") -> "Run":
        """Two runs of the same thing as one (latencies pooled, wall times added)."""
        return Run(self.latencies + other.latencies, self.wall + other.wall, self.concurrency)

    def as_dict(self) -> dict:
        return {"p50_ms": round(self.p50, 3), "p95_ms": round(self.p95, 3), "per_s": round(self.rate, 1),
                "n": len(self.latencies)}


def run_load(root: str, unit: Callable[[Connection, object], None], items: list, concurrency: int) -> Run:
    """Run unit(connection, item) for every item, `concurrency` workers each on its own keep-alive
    connection, all released at once; the connections are opened (and used once, untimed) first."""
    connections = [Connection(root) for _ in range(concurrency)]
    shares = [items[i::concurrency] for i in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[BaseException] = []
    gate = threading.Barrier(concurrency + 1)
    done: list[float] = []

    def worker(index: int) -> None:
        conn, mine, out = connections[index], shares[index], latencies[index]
        try:
            conn.get("/_floor/")  # connect and warm, untimed
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        gate.wait()
        try:
            for item in mine:
                began = time.perf_counter()
                unit(conn, item)
                out.append((time.perf_counter() - began) * 1000)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.append(time.perf_counter())
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return Run([t for share in latencies for t in share], max(done) - began, concurrency)
