"""A real Prometheus Pushgateway on a loopback port, for tests (built by `make pushgateway`,
pushgateway.mk), and its pushed series read back through its HTTP API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PUSHGATEWAY = Path(os.environ.get("PUSHGATEWAY_BIN",
                                  "/var/cache/aftershock/pushgateway-v1.11.1/pushgateway"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_pushgateway(workdir: Path) -> Iterator[str]:
    """Start the Pushgateway on a free loopback port; yield its URL; stop it."""
    if not PUSHGATEWAY.is_file():
        raise AssertionError(f"no Pushgateway at {PUSHGATEWAY}: run `make pushgateway` "
                             "(make unit and make test do)")
    url = f"http://127.0.0.1:{free_port()}"
    log_path = workdir / "pushgateway.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(PUSHGATEWAY), f"--web.listen-address={url[7:]}"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError("the Pushgateway did not start:\n"
                                             + log_path.read_text()) from None
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def pushed(url: str) -> dict[str, list[dict[str, Any]]]:
    """Metric name -> its pushed samples (labels, value), from /api/v1/metrics."""
    with urllib.request.urlopen(f"{url}/api/v1/metrics", timeout=5) as r:
        groups = json.loads(r.read())["data"]
    out: dict[str, list[dict[str, Any]]] = {}
    for group in groups:
        for name, family in group.items():
            if isinstance(family, dict) and "metrics" in family:
                out.setdefault(name, []).extend(family["metrics"])
    return out
