"""Go builds of Kubernetes+etcd, CoreDNS and metrics-server, cached by version.

Each binary lives in CACHE/<name>-<version>/ next to a stamp (a hash of the module's
sources); a changed go.mod/go.sum/main.go rebuilds, and Go's own build cache keeps
that to a relink.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from . import config as c
from .util import fail, say, step

K8S_SRC = c.TESTBED / "k8s"
COREDNS_SRC = c.TESTBED / "coredns"
METRICS_SRC = c.TESTBED / "metrics-server"
K8S_COMMANDS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
                "kube-proxy", "kubectl", "etcd"]


def k8s_version() -> str:
    return c.go_mod_version(K8S_SRC, "k8s.io/kubernetes")


def k8s_dir() -> Path:
    return c.CACHE / f"k8s-{k8s_version()}"


def bin_path(command: str) -> Path:
    """Path of one built command (a symlink into the multi-call binary, or its own)."""
    if command in K8S_COMMANDS:
        return k8s_dir() / command
    if command == "coredns":
        return c.CACHE / f"coredns-{c.go_mod_version(COREDNS_SRC, 'github.com/coredns/coredns')}" \
            / "coredns"
    if command == "metrics-server":
        ver = c.go_mod_version(METRICS_SRC, "sigs.k8s.io/metrics-server")
        return c.CACHE / f"metrics-server-{ver}" / "metrics-server"
    raise KeyError(command)


def stamp(src: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(src.glob("*")):
        if f.is_file() and f.suffix in (".go", ".mod", ".sum"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def go() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go"
                                    if Path("/usr/local/go/bin/go").exists() else None)
    if not found:
        fail("the Go toolchain is missing; Kubernetes, etcd, CoreDNS and metrics-server are "
             "built from their Go modules", "install Go >= 1.25 into /usr/local/go")
    return found


def _go_build(name: str, src: Path, target: str, out: Path, ldflags: str) -> None:
    env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-buildvcs=false")
    env["PATH"] = f"{Path(go()).parent}:{env.get('PATH', '')}"
    log = c.CACHE / f"build-{name}.log"
    tmp = out.with_name(out.name + ".tmp")
    cmd = [go(), "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), target]
    done = threading.Event()
    t0 = time.monotonic()

    def heartbeat() -> None:  # a cold Kubernetes build is quiet for a long time
        t0 = time.monotonic()
        while not done.wait(30):
            say(f"  still building {name} ({(time.monotonic() - t0) / 60:.1f} min; "
                f"log {log})")

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        with open(log, "w") as fh:
            rc = subprocess.call(cmd, cwd=src, env=env, stdout=fh, stderr=subprocess.STDOUT)
    finally:
        done.set()
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        fail(f"building {name} failed (exit {rc}):\n{tail}",
             f"read {log}; Go module downloads need the Go module proxy to be reachable")
    tmp.rename(out)
    # Kept for benchmarks/testbed_build.py: how long the last real build of this took.
    (out.parent / "build-seconds").write_text(f"{time.monotonic() - t0:.1f}\n")


def _cached(out: Path, src: Path) -> bool:
    st = out.parent / "stamp"
    return out.exists() and st.exists() and st.read_text().strip() == stamp(src)


def _finish(out: Path, src: Path) -> None:
    (out.parent / "stamp").write_text(stamp(src) + "\n")


def k8s() -> None:
    ver = k8s_version()
    out = k8s_dir() / "k8s"
    if not _cached(out, K8S_SRC):
        out.parent.mkdir(parents=True, exist_ok=True)
        major, minor = ver.lstrip("v").split(".")[:2]
        date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        flags = ["-s", "-w"]
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            for key, val in (("gitVersion", ver), ("gitMajor", major), ("gitMinor", minor),
                             ("gitTreeState", "clean"), ("buildDate", date)):
                flags.append(f"-X {pkg}.{key}={val}")
        with step(f"building Kubernetes {ver} + etcd (one binary; a cold build takes "
                  "about 4 min on 2 cores)"):
            _go_build("k8s", K8S_SRC, ".", out, " ".join(flags))
        _finish(out, K8S_SRC)
    for cmd in K8S_COMMANDS:
        link = out.parent / cmd
        if not link.is_symlink():
            link.symlink_to("k8s")


def coredns() -> None:
    out = bin_path("coredns")
    if _cached(out, COREDNS_SRC):
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with step(f"building CoreDNS ({out.parent.name})"):
        _go_build("coredns", COREDNS_SRC, ".", out, "-s -w")
    _finish(out, COREDNS_SRC)


def metrics_server() -> None:
    out = bin_path("metrics-server")
    if _cached(out, METRICS_SRC):
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    ver = out.parent.name.removeprefix("metrics-server-")
    flags = f"-s -w -X k8s.io/client-go/pkg/version.gitVersion={ver}"
    with step(f"building metrics-server ({ver})"):
        _go_build("metrics-server", METRICS_SRC, "sigs.k8s.io/metrics-server/cmd/metrics-server",
                  out, flags)
    _finish(out, METRICS_SRC)


def all_binaries() -> None:
    c.CACHE.mkdir(parents=True, exist_ok=True)
    k8s()
    coredns()
    metrics_server()
