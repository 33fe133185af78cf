"""Stale NAT after a Service returns from no endpoints: how many connections hang, and why.

Needs the testbed (make testbed-up) and root (it reads the host's conntrack table). In a
scratch namespace it deploys the sample app (web, whose readiness follows dep) and:

1. opens a new TCP connection per request to web's ClusterIP, RATE per second, each
   sending one GET with a 2 s timeout, and records the client port and the outcome;
2. scales dep to 0, waits until web has no ready endpoints, then scales dep back;
3. keeps the load up for AFTER seconds after web's endpoints return, then lists the
   conntrack entries for the ClusterIP that are unanswered and untranslated (reply source
   still the ClusterIP: no DNAT);
4. proves what such an entry does: a connection bound to its client port times out, and
   one from any other port, sent right after it, is answered.

It prints the counts: refused while dark, unanswered during the switch, unanswered (or
unreachable) later, and whether their client ports are ones that went unanswered during
the switch.
The load is bounded (at most RATE * (AFTER + 120) connections) and goes only to the
testbed's Service range.

    sudo .venv/bin/python benchmarks/stale_nat.py [--rate 200] [--after 60]
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TB = ROOT / ".testbed"
KUBECTL = [str(TB / "kubectl"), "--kubeconfig", str(TB / "kubeconfig")]
NS = "aftershock-stale-nat"
CLIENT_IP = "198.19.128.1"  # the source address of the host's route to the Service range
TIMEOUT_S = 2.0


@dataclass
class Attempt:
    start: float
    port: int
    outcome: str  # ok | refused | unanswered | unreachable | no_response | other


def kubectl(*args: str, check: bool = True) -> str:
    return subprocess.run([*KUBECTL, *args], capture_output=True, text=True,
                          check=check).stdout


def ready_endpoints() -> int:
    out = json.loads(kubectl("get", "endpointslices", "-n", NS, "-l",
                             "kubernetes.io/service-name=web", "-o", "json"))
    return sum(1 for s in out["items"] for e in s.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready"))


async def attempt(ip: str, bind_port: int = 0) -> Attempt:
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setblocking(False)
        sock.bind((CLIENT_IP, bind_port))
        port = sock.getsockname()[1]
        start = time.time()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (ip, 80)), TIMEOUT_S)
        except TimeoutError:
            return Attempt(start, port, "unanswered")
        except ConnectionRefusedError:
            return Attempt(start, port, "refused")
        except OSError as e:
            # An untranslated SYN queued behind a failing ARP for the ClusterIP (the testbed
            # routes the Service range onto a bridge nobody answers on) ends unreachable.
            unreachable = e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
            return Attempt(start, port, "unreachable" if unreachable else "other")
        try:
            await loop.sock_sendall(
                sock, b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            left = TIMEOUT_S - (time.time() - start)
            data = await asyncio.wait_for(loop.sock_recv(sock, 64), max(left, 0.01))
            return Attempt(start, port, "ok" if data.startswith(b"HTTP/1.1 200") else "other")
        except (TimeoutError, OSError):
            return Attempt(start, port, "no_response")


async def load(ip: str, rate: float, stop: asyncio.Event, out: list[Attempt],
               limit: int) -> None:
    pending: set[asyncio.Task[Attempt]] = set()

    def done(task: asyncio.Task[Attempt]) -> None:
        pending.discard(task)
        out.append(task.result())

    t0 = time.monotonic()
    n = 0
    while not stop.is_set() and n < limit:
        task = asyncio.create_task(attempt(ip))
        pending.add(task)
        task.add_done_callback(done)
        n += 1
        await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    await asyncio.gather(*pending)


async def wait_for(cond: Callable[[], bool], what: str, limit_s: float = 180.0) -> float:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(cond):
            return time.time()
        await asyncio.sleep(0.05)
    raise SystemExit(f"gave up waiting for {what} after {limit_s:.0f} s")


def untranslated(ip: str) -> list[int]:
    """Client ports of unanswered conntrack entries to ip:80 that were never DNATed."""
    out = subprocess.run(["conntrack", "-L", "-p", "tcp", "--orig-dst", ip,
                          "--orig-port-dst", "80"], capture_output=True, text=True).stdout
    ports = []
    for line in out.splitlines():  # original tuple first, then the reply tuple
        kv = [t.split("=", 1) for t in line.split() if "=" in t]
        srcs = [v for k, v in kv if k == "src"]
        sports = [v for k, v in kv if k == "sport"]
        if "SYN_SENT" in line and len(srcs) == 2 and srcs[1] == ip:
            ports.append(int(sports[0]))
    return sorted(ports)


async def main(rate: float, after: float) -> int:
    if not (TB / "kubeconfig").is_file():
        raise SystemExit("no testbed: run `make testbed-up` first")
    if os.geteuid() != 0:
        raise SystemExit("needs root, to read the conntrack table")
    for _ in range(60):  # a previous run's namespace may still be terminating
        if kubectl("get", "namespace", NS, "--ignore-not-found", "-o", "name") == "":
            break
        time.sleep(2)
    kubectl("create", "namespace", NS)
    try:
        kubectl("apply", "-n", NS, "-k", str(ROOT / "testbed/manifests/web"))
        for d in ("dep", "web"):
            kubectl("rollout", "status", "-n", NS, f"deployment/{d}", "--timeout=240s")
        ip = kubectl("get", "service", "web", "-n", NS, "-o", "jsonpath={.spec.clusterIP}")
        print(f"web's ClusterIP {ip}; load {rate:.0f} new connections/s", flush=True)
        stop, out = asyncio.Event(), list[Attempt]()
        runner = asyncio.create_task(load(ip, rate, stop, out, int(rate * (after + 120))))
        await asyncio.sleep(5)
        started = time.time()
        kubectl("scale", "-n", NS, "deployment/dep", "--replicas=0")
        dark = await wait_for(lambda: ready_endpoints() == 0, "web's endpoints to empty")
        print(f"web has no ready endpoints ({dark - started:.1f} s after the scale to 0)",
              flush=True)
        await asyncio.sleep(3)
        kubectl("scale", "-n", NS, "deployment/dep", "--replicas=2")
        back = await wait_for(lambda: ready_endpoints() > 0, "web's endpoints to return")
        print(f"web's endpoints are back; load for {after:.0f} s more", flush=True)
        await asyncio.sleep(after)
        stop.set()
        await runner
        stale = untranslated(ip)
        first_ok = min((a.start for a in out if a.outcome == "ok" and a.start > back - 5),
                       default=back)
        lost = [a for a in out if a.outcome in ("unanswered", "unreachable")]
        switch = [a for a in lost if a.start < first_ok + 1]
        later = [a for a in lost if a.start >= first_ok + 1]
        switch_ports = {a.port for a in switch}
        print(f"attempts {len(out)}; refused while dark "
              f"{sum(a.outcome == 'refused' for a in out)}; connected but no response "
              f"{sum(a.outcome == 'no_response' for a in out)}")
        print(f"unanswered during the switch (within 1 s of the first answer): {len(switch)}, "
              f"client ports {sorted(switch_ports)}")
        print(f"unanswered or unreachable later: {len(later)}, at "
              + ", ".join(f"+{a.start - first_ok:.1f} s port {a.port} {a.outcome}"
                          + (" (a port unanswered during the switch)"
                             if a.port in switch_ports else "") for a in later))
        print(f"untranslated SYN_SENT conntrack entries now: {len(stale)}, client ports {stale}")
        if stale:
            reused = await attempt(ip, bind_port=stale[0])
            fresh = await attempt(ip)
            print(f"a connection from stale port {stale[0]}: {reused.outcome}; "
                  f"one from port {fresh.port} right after: {fresh.outcome}")
        return 0
    finally:
        kubectl("scale", "-n", NS, "deployment/dep", "--replicas=2", check=False)
        kubectl("delete", "namespace", NS, "--wait=false", check=False)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--after", type=float, default=60.0)
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.rate, a.after)))
