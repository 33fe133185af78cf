"""`make testbed-down` leaves nothing behind; then `make testbed-up` brings it back.

This module tears the cluster down, so it must run after every other e2e test: its
name sorts last in tests/e2e, and the Makefile may also run it on its own after the rest.
The checks below look at the host directly (procfs, iptables-save, ip, cgroupfs), not
through the testbed's own code, so a bug in `down` cannot hide itself.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, kubectl_json

pytestmark = pytest.mark.e2e

OURS = ("/var/lib/aftershock", "/run/aftershock")
CACHE = Path("/var/cache/aftershock")


def make(target: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", target], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, check=False)


def out(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def leftovers() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    procs = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if any(d in cmd for d in (*OURS, str(CACHE))):
                procs.append(f"{entry.name}: {cmd[:100]}")
    found["processes"] = procs
    found["mounts"] = [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines()
                       if any(d in ln for d in OURS)]
    found["iptables chains"] = [ln for tool in ("iptables-save", "ip6tables-save")
                                for ln in out(tool).splitlines()
                                if ln.startswith((":KUBE-", ":CNI-", ":AS-"))]
    found["links"] = [ln for ln in out("ip", "-o", "link", "show").splitlines()
                      if " as-" in ln or "master as-" in ln]
    found["routes"] = [ln for ln in out("ip", "-4", "route", "show").splitlines()
                       if "198.18." in ln or "198.19." in ln]
    found["cgroups"] = [str(p) for p in Path("/sys/fs/cgroup").glob("*/aftershock")]
    found["dirs"] = [d for d in (*OURS, str(ROOT / ".testbed"),
                                 "/var/lib/kubelet/device-plugins/kubelet.sock")
                     if Path(d).exists()]
    logs = Path("/var/log/containers")
    found["log links"] = [str(p) for p in logs.glob("*")
                          if p.is_symlink() and os.readlink(p).startswith(OURS)] \
        if logs.is_dir() else []
    return {k: v for k, v in found.items() if v}


def test_down_leaves_nothing_behind_then_up_restores(testbed: object) -> None:
    assert os.geteuid() == 0, "the testbed runs as root"
    down = make("testbed-down", timeout=300)
    try:
        assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
        assert leftovers() == {}
        assert CACHE.is_dir(), "down must keep the build cache"
    finally:
        up = make("testbed-up", timeout=900)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    nodes = kubectl_json("get", "nodes")["items"]
    ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in n["status"]["conditions"])]
    assert len(ready) == 3
