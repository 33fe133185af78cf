"""A tiny HTTP server on 127.0.0.1 for load tests: 200 on every GET, except during an
outage (503 for every request handled inside it), with exact outage bounds."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        now = time.time()
        status = 503 if any(a <= now < b for a, b in self.server.outages) else 200
        body = b"ok\n" if status == 200 else b"outage\n"
        with self.server.lock:
            self.server.served += 1
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    outages: list[tuple[float, float]]
    served: int
    lock: threading.Lock


class LoopbackServer:
    """``with LoopbackServer() as s: s.url ... s.outage(0.2)``."""

    def __init__(self) -> None:
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.outages = []
        self._srv.served = 0
        self._srv.lock = threading.Lock()
        self.port = self._srv.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def outage(self, seconds: float) -> tuple[float, float]:
        """Fail every request for ``seconds`` from now; returns (start, end)."""
        start = time.time()
        self._srv.outages.append((start, start + seconds))
        return start, start + seconds

    @property
    def served(self) -> int:
        """Requests answered so far."""
        return self._srv.served

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._srv.shutdown()
        self._srv.server_close()


@contextlib.contextmanager
def unanswering_listener(*, accept_queue_full: bool) -> Iterator[tuple[str, int]]:
    """A 127.0.0.1 listener that never accepts; yields its address.

    With a full accept queue the kernel drops new SYNs, so a connect times out; otherwise
    the connection is made and no response ever comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0 if accept_queue_full else 64)
        # listen(0) queues one connection: four are more than enough to fill it.
        queued = [socket.socket() for _ in range(4 if accept_queue_full else 0)]
        try:
            for s in queued:
                s.setblocking(False)
                s.connect_ex(listener.getsockname())
            host, port = listener.getsockname()
            yield host, port
        finally:
            for s in queued:
                s.close()
