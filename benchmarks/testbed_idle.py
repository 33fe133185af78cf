"""Idle footprint of the running testbed: memory (sum of RSS) and CPU, per component.

    sudo python3 benchmarks/testbed_idle.py [--seconds 60]

Counts every testbed process: the control plane, each node's containerd and kubelet,
kube-proxy, CoreDNS, metrics-server, the containerd shims and everything running in the
kubelets' cgroups (pods). Goal from issue 2: whole cluster <= 3 GiB RSS.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "testbed"))

from tb import host, procs
from tb.components import all_components

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def groups() -> dict[int, str]:
    """pid -> the component it belongs to."""
    named = {procs.pid_of(comp.name): comp.name for comp in all_components()}
    out: dict[int, str] = {}
    for pid, cmd in procs.ours().items():
        out[pid] = named.get(pid) or ("containerd-shim" if "shim" in cmd else "other")
    for pid in host.cgroup_pids():
        out.setdefault(pid, "pods (containers)")
    return out


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def main() -> None:
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv \
        else 60.0
    pids = groups()
    if not any(name.startswith("kube-apiserver") for name in pids.values()):
        raise SystemExit("the testbed is not running: make testbed-up")
    before = {pid: cpu_ticks(pid) for pid in pids}
    time.sleep(seconds)
    mem: dict[str, int] = defaultdict(int)
    cpu: dict[str, float] = defaultdict(float)
    for pid, name in pids.items():
        mem[name] += rss(pid)
        cpu[name] += (cpu_ticks(pid) - before[pid]) / TICK / seconds
    print(f"{'component':26} {'RSS MiB':>9} {'CPU %':>7}   (CPU over {seconds:.0f}s; "
          f"100% = one core of {os.cpu_count()})")
    for name in sorted(mem, key=lambda n: -mem[n]):
        print(f"{name:26} {mem[name] / 2**20:9.1f} {cpu[name] * 100:7.1f}")
    total_mem, total_cpu = sum(mem.values()), sum(cpu.values())
    print(f"{'TOTAL':26} {total_mem / 2**20:9.1f} {total_cpu * 100:7.1f}")
    print(f"idle cluster: {total_mem / 2**30:.2f} GiB RSS (goal <= 3 GiB), "
          f"{total_cpu * 100:.0f}% of one core ({total_cpu / os.cpu_count() * 100:.0f}% of "
          f"the machine)")


if __name__ == "__main__":
    main()
