"""Progress output, errors that name a fix, and small process helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

START = time.monotonic()
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class TestbedError(Exception):
    """A problem the user can fix; printed with the fix, never with a traceback."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def fail(problem: str, fix: str) -> NoReturn:
    raise TestbedError(problem, fix)


def say(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


@contextmanager
def step(title: str) -> Iterator[None]:
    t0 = time.monotonic()
    say(f"{title} ...")
    yield
    say(f"{title}: done in {time.monotonic() - t0:.1f}s")


def run(
    cmd: Sequence[str | Path],
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = 120,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short command and capture its output; on failure show what it said."""
    argv = [str(c) for c in cmd]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        input=input_text,
        check=False,
    )
    if check and proc.returncode != 0:
        out = (proc.stderr or proc.stdout).strip()[-2000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(argv)}\n{out}")
    return proc


def wait_for(what: str, probe: Callable[[], object], timeout: float,
             interval: float = 0.5) -> None:
    """Poll probe() until it returns true; long waits print a line every 10 s."""
    t0 = time.monotonic()
    last_note = t0
    while True:
        if probe():
            return
        now = time.monotonic()
        if now - t0 > timeout:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")
        if now - last_note >= 10:
            say(f"  still waiting for {what} ({now - t0:.0f}s)")
            last_note = now
        time.sleep(interval)


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def die(err: TestbedError) -> NoReturn:
    print(f"\ntestbed: ERROR: {err.problem}\n  fix: {err.fix}", file=sys.stderr, flush=True)
    sys.exit(1)
