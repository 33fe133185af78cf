"""`up`, `down` and `status`: the order things start and stop in."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from string import Template

from . import build, host, pki, procs, render, user_images
from . import config as c
from .components import Component, all_components
from .util import TestbedError, fail, run, say, step, wait_for, write

IMAGES_PY = c.TESTBED / "images" / "build.py"
DOWN_HINT = "`make testbed-down` removes everything; then `make testbed-up` again"


def kubectl(*args: str, check: bool = True, input_text: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run([build.bin_path("kubectl"), f"--kubeconfig={c.KUBECONFIG}", *args],
               check=check, input_text=input_text, timeout=timeout)


def _by_name() -> dict[str, Component]:
    return {comp.name: comp for comp in all_components()}


def _start(comp: Component) -> None:
    if procs.pid_of(comp.name):
        return
    pid = procs.start(comp.name, comp.argv())
    say(f"  started {comp.name} (pid {pid}, log {c.LOGS / (comp.name + '.log')})")


def _wait_healthy(comp: Component, timeout: float = 90) -> None:
    def probe() -> bool:
        if not procs.pid_of(comp.name):
            fail(f"{comp.name} exited during start-up; the end of its log:\n"
                 f"{procs.log_tail(comp.name)}",
                 f"read {c.LOGS / (comp.name + '.log')}; {DOWN_HINT}")
        return comp.healthy()
    try:
        wait_for(comp.name, probe, timeout)
    except TimeoutError:
        fail(f"{comp.name} did not become healthy in {timeout:.0f}s; the end of its log:\n"
             f"{procs.log_tail(comp.name)}",
             f"read {c.LOGS / (comp.name + '.log')}; {DOWN_HINT}")


def _nodes_ready() -> list[str]:
    proc = kubectl("get", "nodes", "-o", "json", check=False, timeout=15)
    if proc.returncode != 0:
        return []
    ready = []
    for item in json.loads(proc.stdout)["items"]:
        conds = {x["type"]: x["status"] for x in item["status"].get("conditions", [])}
        if conds.get("Ready") == "True":
            ready.append(item["metadata"]["name"])
    return ready


def _apiservice_available() -> bool:
    proc = kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    conds = json.loads(proc.stdout)["status"].get("conditions", [])
    return any(x["type"] == "Available" and x["status"] == "True" for x in conds)


def _images() -> None:
    if not IMAGES_PY.exists():
        fail(f"{IMAGES_PY} is missing", "restore testbed/images from git")
    with step("building container images (cached by input hash)"):
        proc = subprocess.run([sys.executable, str(IMAGES_PY), "all"], check=False)
        if proc.returncode != 0:
            fail("building the container images failed (output above)",
                 f"run `python3 {IMAGES_PY.relative_to(c.REPO)} all` to see the error")


def _import_images() -> None:
    def one(node: c.Node) -> tuple[c.Node, subprocess.CompletedProcess[str]]:
        return node, run([sys.executable, IMAGES_PY, "import", "--socket", node.socket],
                         check=False, timeout=600)

    with step("importing images into each node's containerd"), ThreadPoolExecutor(3) as pool:
        for node, proc in pool.map(one, c.NODES):
            if proc.returncode != 0:
                fail(f"importing images into {node.name}'s containerd failed:\n"
                     f"{proc.stderr.strip()[-1500:]}",
                     f"read {c.LOGS / f'containerd-{node.name}.log'}; {DOWN_HINT}")
        user_images.import_into_nodes(user_images.remembered())


def _apply_addons() -> None:
    text = Template((c.TESTBED / "tb" / "addons.yaml").read_text()).substitute(
        CONTROL_IP=c.CONTROL_IP, DNS_SVC_IP=c.DNS_SVC_IP,
        METRICS_SERVER_PORT=c.METRICS_SERVER_PORT,
        CA_BUNDLE=base64.b64encode((c.PKI / "ca.crt").read_bytes()).decode(),
    )
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=text)


def _write_dot() -> None:
    """The repo-side handles: admin kubeconfig, kubectl and logs links (gitignored)."""
    write(c.KUBECONFIG, render.kubeconfig("admin", embed=True), 0o600)
    for link, target in ((c.DOT / "logs", c.LOGS), (c.DOT / "kubectl",
                                                    build.bin_path("kubectl"))):
        link.unlink(missing_ok=True)
        link.symlink_to(target)


def running_state() -> tuple[list[str], list[str]]:
    """(names of live components, names of dead ones)."""
    live: list[str] = []
    dead: list[str] = []
    for comp in all_components():
        (live if procs.pid_of(comp.name) else dead).append(comp.name)
    return live, dead


def _settles_healthy(timeout: float = 30) -> bool:
    """All components answer their probes within timeout: a busy apiserver is no reason
    to tear down a running cluster."""
    try:
        wait_for("running testbed to answer", lambda: all(x.healthy() for x in all_components()),
                 timeout, 2)
        return True
    except TimeoutError:
        return False


def _leftover_state() -> bool:
    return bool(procs.ours() or c.BASE.exists() or c.RUN.exists() or host.our_links()
                or host.our_mounts())


def up() -> None:
    t0 = time.monotonic()
    host.require_root()
    with step("checking host packages and kernel features"):
        host.ensure_packages()
        host.check_kernel()
    build.all_binaries()
    _images()

    live, dead = running_state()
    if not dead and _settles_healthy():
        say("the testbed is already running; re-checking host settings and images")
        host.set_sysctls()
        host.setup_network()
        _write_dot()
        _import_images()
        _report(t0)
        return
    if _leftover_state():
        why = f"dead: {', '.join(dead)}" if live else "leftover state without processes"
        say(f"found a half-started testbed ({why}); cleaning it up first")
        down(strict=False)

    host.check_ports()
    with step("host network, sysctls and cgroups"):
        host.record_host_state()
        host.set_sysctls()
        host.setup_network()
        host.setup_cgroups()
    with step("certificates and config files"):
        pki.ensure()
        render.all_static()
        _write_dot()

    comps = _by_name()
    try:
        _boot(comps, t0)
    except TestbedError:
        say("start-up failed; the half-started testbed is left for inspection")
        raise
    _report(t0)


def _boot(comps: dict[str, Component], t0: float) -> None:
    with step("control plane and container runtimes"):
        _start(comps["etcd"])
        for n in c.NODES:
            _start(comps[f"containerd-{n.name}"])
        _wait_healthy(comps["etcd"])
        _start(comps["kube-apiserver"])
        for n in c.NODES:
            _wait_healthy(comps[f"containerd-{n.name}"])
        _import_images()
        _wait_healthy(comps["kube-apiserver"], timeout=120)
        _apply_addons()
    with step("nodes, kube-proxy, CoreDNS, metrics-server"):
        for name in ["kube-controller-manager", "kube-scheduler",
                     *[f"kubelet-{n.name}" for n in c.NODES],
                     "kube-proxy", "coredns", "metrics-server"]:
            _start(comps[name])
        for name in ["kube-controller-manager", "kube-scheduler",
                     *[f"kubelet-{n.name}" for n in c.NODES]]:
            _wait_healthy(comps[name])
        try:
            wait_for("3 nodes Ready", lambda: len(_nodes_ready()) == len(c.NODES), 120, 1)
        except TimeoutError:
            fail(f"only {_nodes_ready()} of {len(c.NODES)} nodes became Ready",
                 f"see `kubectl describe nodes` and {c.LOGS}/kubelet-*.log; {DOWN_HINT}")
        say(f"3 nodes Ready {time.monotonic() - t0:.1f}s after start")
        for name in ["kube-proxy", "coredns", "metrics-server"]:
            _wait_healthy(comps[name])
        try:
            wait_for("metrics.k8s.io APIService", _apiservice_available, 120, 1)
        except TimeoutError:
            fail("the metrics.k8s.io APIService did not become Available",
                 f"see `kubectl describe apiservice v1beta1.metrics.k8s.io` and "
                 f"{c.LOGS}/metrics-server.log; {DOWN_HINT}")


def _report(t0: float) -> None:
    say(f"testbed up in {time.monotonic() - t0:.1f}s")
    print(f"\n  export KUBECONFIG={c.KUBECONFIG}\n  {c.DOT / 'kubectl'} get nodes -o wide\n"
          f"  logs: {c.LOGS} (also {c.DOT / 'logs'})\n")


# ---------------------------------------------------------------- down


def leftovers() -> dict[str, object]:
    """Everything `down` must have removed; empty when the host is clean."""
    found: dict[str, object] = {
        "processes": {str(k): v[:120] for k, v in procs.ours().items()},
        "cgroup_processes": host.cgroup_pids(),
        "mounts": host.our_mounts(),
        "iptables": host.iptables_leftovers(),
        "links": host.our_links(),
        "routes": host.our_routes(),
        "cgroups": [str(h / c.CGROUP_PARENT) for h in host.hierarchies()
                    if (h / c.CGROUP_PARENT).exists()],
        "dirs": [str(d) for d in (c.BASE, c.RUN, c.DOT) if d.exists()],
    }
    return {k: v for k, v in found.items() if v}


def down(strict: bool = True) -> None:
    host.require_root()
    with step("stopping the testbed"):
        comps = all_components()
        # Kubelets first, so nothing restarts the containers killed next.
        for comp in [x for x in comps if x.name.startswith("kubelet-")]:
            procs.stop(comp.name)
        procs.kill(host.cgroup_pids(), timeout=5)
        for comp in reversed(comps):
            procs.stop(comp.name)
        procs.kill(list(procs.ours()), timeout=5)  # shims and anything without a pid file
        procs.kill(host.cgroup_pids(), timeout=5)
    with step("removing mounts, iptables rules, network and cgroups"):
        host.unmount_all()
        proxy = build.bin_path("kube-proxy")
        if proxy.exists() and host.iptables_leftovers():
            run([proxy, "--cleanup"], check=False, timeout=60)
        host.remove_iptables()
        host.remove_network()
        for _ in range(20):
            if not host.remove_cgroups():
                break
            time.sleep(0.25)
        host.remove_shared_leftovers()
        host.restore_sysctls()
        for d in (c.BASE, c.RUN, c.DOT):
            shutil.rmtree(d, ignore_errors=True)
    left = leftovers()
    if left:
        msg = json.dumps(left, indent=2)
        if strict:
            fail(f"`down` could not remove everything:\n{msg}",
                 "remove these by hand (or reboot), then run `make testbed-down` again")
        say(f"warning: leftovers after cleanup:\n{msg}")
    else:
        say("nothing left behind (processes, mounts, iptables, links, routes, cgroups, dirs)")


# ---------------------------------------------------------------- restart


def component_names() -> list[str]:
    return [comp.name for comp in all_components()]


def parse_restart(args: list[str]) -> tuple[str, bool]:
    """``restart COMPONENT [--no-wait]`` -> (component, wait until healthy)."""
    names = component_names()
    options = [a for a in args if a.startswith("-")]
    positional = [a for a in args if not a.startswith("-")]
    unknown = [o for o in options if o != "--no-wait"]
    if unknown or len(positional) != 1:
        problem = (f"unknown option {unknown[0]}" if unknown
                   else "restart takes exactly one component")
        fail(problem, f"run `python3 -m tb restart COMPONENT [--no-wait]`, COMPONENT one of: "
                      f"{', '.join(names)}")
    name = positional[0]
    if name not in names:
        fail(f"no testbed component {name!r}", f"name one of: {', '.join(names)}")
    return name, "--no-wait" not in options


def restart(name: str, wait: bool = True) -> None:
    """Stop one running component (SIGTERM, SIGKILL after 10 s) and start it again with the
    same command line, as a crash under a supervisor would; then wait until it is healthy.

    For tests that take a component away mid-experiment (an API server restart).
    Everything else keeps running: pods, the load and the other components.
    """
    comp = _by_name()[name]
    if not procs.pid_of(name):
        fail(f"{name} is not running, so there is nothing to restart",
             "`make testbed-status` shows the components; `make testbed-up` starts them")
    t0 = time.monotonic()
    procs.stop(name)
    say(f"stopped {name} in {time.monotonic() - t0:.1f}s")
    _start(comp)
    if wait:
        _wait_healthy(comp, timeout=180)
        say(f"{name} healthy again {time.monotonic() - t0:.1f}s after the stop began")


# ---------------------------------------------------------------- status


def status() -> int:
    live, _dead = running_state()
    if not live:
        if _leftover_state():
            print("testbed: not running, but leftovers of an earlier one exist "
                  "(`make testbed-down` removes them; `make testbed-up` does too)")
            return 1
        print("testbed: not running (make testbed-up)")
        return 0
    print(f"{'component':28} {'pid':>8}  state")
    ok = True
    for comp in all_components():
        pid = procs.pid_of(comp.name)
        state = "healthy" if pid and comp.healthy() else ("UNHEALTHY" if pid else "DEAD")
        ok = ok and state == "healthy"
        print(f"{comp.name:28} {pid or '-':>8}  {state}")
    print(f"\nkubeconfig: {c.KUBECONFIG}\nlogs:       {c.LOGS}\n")
    for args in (["get", "nodes", "-o", "wide"], ["get", "pods", "-A", "-o", "wide"]):
        proc = kubectl(*args, check=False)
        print(f"$ kubectl {' '.join(args)}\n{proc.stdout or proc.stderr}")
    return 0 if ok else 1
