"""Detached host processes with pid files that survive the make process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from . import config as c
from .util import BASE_PATH

# A process is ours when its command line names one of these directories.
OUR_MARKERS = (str(c.BASE), str(c.RUN), str(c.CACHE))


def _starttime(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # a zombie is dead even before it is reaped
        return None
    return fields[19]


def pidfile(name: str) -> Path:
    return c.PIDS / f"{name}.pid"


def pid_of(name: str) -> int | None:
    """The live pid recorded for a component, or None (pid reuse is detected)."""
    try:
        rec = json.loads(pidfile(name).read_text())
    except (OSError, ValueError):
        return None
    pid = int(rec["pid"])
    return pid if _starttime(pid) == rec["start"] else None


def start(name: str, argv: list[str]) -> int:
    c.LOGS.mkdir(parents=True, exist_ok=True)
    c.PIDS.mkdir(parents=True, exist_ok=True)
    env = {"PATH": f"{argv[0].rsplit('/', 1)[0]}:{BASE_PATH}", "HOME": "/root", "LANG": "C.UTF-8"}
    with open(c.LOGS / f"{name}.log", "ab") as log:
        log.write(f"\n=== {time.strftime('%F %T')} start: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd="/", env=env, start_new_session=True, close_fds=True,
        )
    pidfile(name).write_text(json.dumps({"pid": proc.pid, "start": _starttime(proc.pid)}))
    return proc.pid


def log_tail(name: str, lines: int = 15) -> str:
    try:
        text = (c.LOGS / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + ln for ln in text.splitlines()[-lines:])


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _starttime(p) is not None]
    return alive


def kill(pids: list[int], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL whatever is still there after timeout."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        pids = _wait_gone(pids, wait)
        if not pids:
            return


def stop(name: str, timeout: float = 10) -> None:
    pid = pid_of(name)
    if pid:
        kill([pid], timeout)
    pidfile(name).unlink(missing_ok=True)


def ours() -> dict[int, str]:
    """Every live process whose command line points into the testbed's directories."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd for m in OUR_MARKERS) and _starttime(int(entry.name)):
            found[int(entry.name)] = cmd.strip()
    return found


def http_ok(url: str, cert: str | None = None, timeout: float = 2) -> bool:
    """True when url answers 2xx. TLS is not verified: this is a liveness probe only."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(c.PKI / f"{cert}.crt", c.PKI / f"{cert}.key")
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return 200 <= int(resp.status) < 300
    except (OSError, ValueError):
        return False
