"""Warm `make testbed-up`: seconds until three nodes are Ready, and until `up` returns.

    sudo python3 benchmarks/testbed_up.py [--runs N]

Warm means the binaries and images are already cached. Each run starts from a fully
stopped testbed (`make testbed-down`), so it also measures PKI, configs, network and
every component's start. Goal from issue 2: three nodes Ready within 90 s.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KUBECONFIG = ROOT / ".testbed" / "kubeconfig"
KUBECTL = ROOT / ".testbed" / "kubectl"


def ready_nodes() -> int:
    if not KUBECONFIG.exists() or not KUBECTL.exists():
        return 0
    proc = subprocess.run([str(KUBECTL), f"--kubeconfig={KUBECONFIG}", "get", "nodes", "-o",
                           "json", "--request-timeout=2s"], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return 0
    return sum(any(c["type"] == "Ready" and c["status"] == "True"
                   for c in n["status"].get("conditions", []))
               for n in json.loads(proc.stdout)["items"])


def one_run() -> tuple[float, float]:
    subprocess.run(["make", "--no-print-directory", "testbed-down"], cwd=ROOT, check=True,
                   capture_output=True)
    t0 = time.monotonic()
    up = subprocess.Popen(["make", "--no-print-directory", "testbed-up"], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes_ready = None
    while up.poll() is None or nodes_ready is None:
        if nodes_ready is None and ready_nodes() >= 3:
            nodes_ready = time.monotonic() - t0
        if up.poll() is not None and nodes_ready is None and ready_nodes() < 3:
            raise SystemExit("make testbed-up failed; run it by hand to see why")
        time.sleep(0.25)
    return nodes_ready, time.monotonic() - t0


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    ready, total = [], []
    for i in range(runs):
        r, t = one_run()
        ready.append(r)
        total.append(t)
        print(f"run {i + 1}: 3 nodes Ready after {r:.1f}s; `make testbed-up` returned after "
              f"{t:.1f}s", flush=True)
    print(f"warm testbed-up, median of {runs}: nodes Ready {statistics.median(ready):.1f}s "
          f"(goal <= 90s), up complete {statistics.median(total):.1f}s")


if __name__ == "__main__":
    main()
