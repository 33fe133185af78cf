"""Cold build time of the testbed's binaries: Kubernetes+etcd, CoreDNS, metrics-server.

    python3 benchmarks/testbed_build.py            print the recorded time of each cached build
    python3 benchmarks/testbed_build.py --cold     rebuild all three with an empty, throwaway
                                                   GOCACHE and GOMODCACHE in /var/tmp (about
                                                   8 min on 2 cores); the real caches are left
                                                   alone

The cold figure is what a fresh machine pays: downloading the modules from the Go module
proxy (timed on its own, as it depends on the network) and then compiling and linking.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "testbed"))

from tb import build
from tb import config as c

TARGETS = [
    ("kubernetes+etcd", build.K8S_SRC, ".", "k8s"),
    ("coredns", build.COREDNS_SRC, ".", "coredns"),
    ("metrics-server", build.METRICS_SRC, "sigs.k8s.io/metrics-server/cmd/metrics-server",
     "metrics-server"),
]


def recorded() -> None:
    for label, _src, _target, binary in TARGETS:
        path = build.bin_path("kubectl" if binary == "k8s" else binary).parent
        rec = path / "build-seconds"
        secs = rec.read_text().strip() + " s" if rec.exists() else "not recorded"
        print(f"{label:18} last build (cache {path}): {secs}")
    print("(a build after a cache hit in Go's build cache is mostly link time;"
          " use --cold for a from-scratch figure)")


def cold() -> None:
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="aftershock-coldbuild-", dir="/var/tmp") as tmp:
        env = dict(os.environ, GOCACHE=f"{tmp}/gocache", GOMODCACHE=f"{tmp}/gomod",
                   GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-buildvcs=false")
        fetched = 0.0
        for label, src, target, binary in TARGETS:
            t0 = time.monotonic()
            subprocess.run([build.go(), "mod", "download"], cwd=src, env=env, check=True)
            t1 = time.monotonic()
            subprocess.run([build.go(), "build", "-trimpath", "-ldflags", "-s -w", "-o",
                            f"{tmp}/{binary}", target], cwd=src, env=env, check=True)
            secs = time.monotonic() - t1
            fetched += t1 - t0
            total += secs
            print(f"{label:18} module download: {(t1 - t0) / 60:.1f} min, "
                  f"cold build: {secs / 60:.1f} min", flush=True)
        # The module cache is read-only by design; make it removable.
        subprocess.run([build.go(), "clean", "-modcache"], env=env, check=False)
    print(f"{'total':18} module download: {fetched / 60:.1f} min, cold build: "
          f"{total / 60:.1f} min ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    c.CACHE.mkdir(parents=True, exist_ok=True)
    cold() if "--cold" in sys.argv[1:] else recorded()
