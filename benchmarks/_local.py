"""Shared helpers for the load benchmarks: the sample app on loopback, free ports."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
SAMPLEAPP_SRC = ROOT / "testbed" / "sampleapp"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aftershock"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_sampleapp() -> Path:
    """Build testbed/sampleapp (stdlib Go) once per source version, cached outside the repo."""
    h = hashlib.sha256()
    for p in [*sorted(SAMPLEAPP_SRC.glob("*.go")), SAMPLEAPP_SRC / "go.mod"]:
        h.update(p.read_bytes())
    out = CACHE / f"sampleapp-{h.hexdigest()[:12]}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
        subprocess.run(["go", "build", "-o", str(out), "."], cwd=SAMPLEAPP_SRC, env=env,
                       check=True)
    return out


class SampleApp:
    """The sample app on 127.0.0.1 with its exact-duration outage endpoint."""

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {"STARTUP_DELAY": "0s", **env}
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SampleApp:
        binary = build_sampleapp()
        self._proc = subprocess.Popen([str(binary), "serve", "--listen", f"127.0.0.1:{self.port}"],
                                      env={**os.environ, **self._env},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sample app did not become ready")

    def outage(self, ms: int) -> tuple[float, float]:
        """Start an outage of exactly ``ms``; returns its true (start, end) in epoch seconds."""
        req = urllib.request.Request(f"{self.url}/admin/outage?ms={ms}", method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            o = json.load(r)
        return o["start_unix_nano"] / 1e9, o["end_unix_nano"] / 1e9

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
