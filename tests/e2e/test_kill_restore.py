"""Kill tests: a suite SIGKILLed mid-fault runs no rollback; the restore ledger it wrote on
the changed objects lets the next run (or ``aftershock restore``) put everything back.

For each fault that changes an object — the drain's cordon, the rollout's env change, the
dependency scaled to 0, the load's worker pods — ``aftershock run`` is started as a
subprocess, SIGKILLed once the change is on the cluster, the leftover is checked to be there
(with its ledger entry), then the next ``aftershock run`` / ``check`` / ``restore`` reports
and restores it: no cordoned node, the template back, dep back to 2, no worker pods, and no
ledger annotation left anywhere. Whatever happens, every node is uncordoned afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aftershock.job import RUN_LABEL as JOB_LABEL
from tests.e2e.conftest import (
    AFTERSHOCK,
    ROOT,
    RunAftershock,
    Scratch,
    kubectl,
    kubectl_json,
    write_config,
)

pytestmark = pytest.mark.e2e

LOAD = {"rate": 100, "steady_seconds": 6, "after_seconds": 5}
LEDGER = "aftershock.dev/"
CORDON = "aftershock.dev/cordon"
RUN_LABEL = "aftershock.dev/run"
KILL_TIMEOUT_S = 120
#: The host as the testbed's pods see it (the control-plane address on the bridge).
HOST_FROM_PODS = "198.19.128.1"


def _nodes() -> list[dict[str, Any]]:
    return list(kubectl_json("get", "nodes")["items"])


def _cordoned() -> set[str]:
    return {n["metadata"]["name"] for n in _nodes() if n["spec"].get("unschedulable")}


def _ledger(obj: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in (obj["metadata"].get("annotations") or {}).items()
            if k.startswith(LEDGER)}


@pytest.fixture(autouse=True)
def cluster_left_clean() -> Iterator[None]:
    """The testbed is shared: whatever the test did, no node stays cordoned by it and no
    node keeps a cordon entry. Fails the test that left one, after cleaning up."""
    before = _cordoned()
    yield
    left = _cordoned() - before
    for node in sorted(left):
        kubectl("uncordon", node, check=False)
    entries = [n["metadata"]["name"] for n in _nodes() if CORDON in _ledger(n)]
    for node in entries:
        kubectl("annotate", "node", node, f"{CORDON}-", check=False)
    assert not left, f"the test left node(s) cordoned: {sorted(left)} (uncordoned now)"
    assert not entries, f"the test left cordon entries on {entries} (removed now)"


@pytest.fixture(scope="module")
def apps(scratch: Scratch) -> Scratch:
    scratch.apply("web")  # web and dep, which web's readiness follows
    return scratch


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n" \
           f"{proc.stderr[-6000:]}"


def kill_mid_fault(cfg: Path, args: list[str], changed: Callable[[], bool]) -> str:
    """Start ``aftershock run``, SIGKILL it once ``changed()`` (the fault's change is on the
    cluster), and return what it printed. Its load subprocess dies with it; any other
    process it started is killed afterwards (its process group)."""
    proc = subprocess.Popen([AFTERSHOCK, "run", "--config", str(cfg), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + KILL_TIMEOUT_S
        while not changed():
            if proc.poll() is not None:
                raise AssertionError("the run ended before its fault changed anything:\n"
                                     + proc.communicate()[0][-6000:])
            assert time.monotonic() < deadline, "the fault never changed anything"
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)  # no rollback can run
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    return out


def _no_ledger_left(ns: Scratch) -> None:
    nodes = {n["metadata"]["name"]: _ledger(n) for n in _nodes()}
    deps = {d["metadata"]["name"]: _ledger(d)
            for d in kubectl_json("get", "deployments", "-n", ns.name)["items"]}
    pods = ns.pods(RUN_LABEL)
    assert not any(nodes.values()), nodes
    assert not any(deps.values()), deps
    assert pods == [], [p["metadata"]["name"] for p in pods]


def _wait_no_pods(ns: Scratch, selector: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while ns.pods(selector):
        assert time.monotonic() < deadline, f"pods {selector} still there"
        time.sleep(1)


def test_killed_mid_drain_the_next_run_uncordons_the_node(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    before = _cordoned()
    cfg = write_config(tmp_path / "drain.yaml", apps.name, "web", load=LOAD,
                       faults={"drain": {"timeout_s": 60}})

    def cordoned_by_the_run() -> bool:
        return any(CORDON in _ledger(n) and n["spec"].get("unschedulable") for n in _nodes())

    kill_mid_fault(cfg, ["experiments/test_node_drain.py"], cordoned_by_the_run)
    [node] = [n for n in _nodes() if CORDON in _ledger(n)]
    name = node["metadata"]["name"]
    assert node["spec"]["unschedulable"] and name not in before
    entry = json.loads(node["metadata"]["annotations"][CORDON])
    assert entry["original"] is False and entry["owner"]["pid"] > 0
    time.sleep(3)
    assert name in _cordoned(), "the killed run's node must stay cordoned until restored"

    apps.wait_rollouts()  # the evicted pods' replacements run on the other nodes
    # The story: the next run (a pod kill) used to pass without a word about it.
    cfg2 = write_config(tmp_path / "next.yaml", apps.name, "web", load=LOAD)
    proc = run_aftershock("run", "--config", str(cfg2), "-k", "pod_kill", timeout=300)
    print(f"next run:\n{proc.stderr[-3000:]}")
    assert f"leftover of a run that is gone: node {name}: cordoned (was schedulable)" \
           in proc.stderr, _show(proc)
    assert f"its process {entry['owner']['pid']} on this host has ended" in proc.stderr
    assert f"restored: uncordoned node {name}" in proc.stderr, _show(proc)
    assert proc.returncode == 0, _show(proc)
    assert _cordoned() == before
    _no_ledger_left(apps)
    apps.wait_rollouts()


def test_killed_mid_rollout_restore_puts_the_template_back(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    original = apps.get("deployment", "web")["spec"]["template"]
    cfg = write_config(tmp_path / "rollout.yaml", apps.name, "web", load=LOAD,
                       faults={"rollout": {"mode": "env", "env": {"KILL_TEST": "1"}}})

    def env_changed() -> bool:
        # Killed once the entry also holds the fingerprint of the template the run set:
        # restore must find the live template (read raw by a new process) equal to it.
        dep = apps.get("deployment", "web")
        env = dep["spec"]["template"]["spec"]["containers"][0].get("env") or []
        entry = _ledger(dep).get(f"{LEDGER}template")
        return entry is not None and bool(json.loads(entry).get("changed_to")) and any(
            e["name"] == "KILL_TEST" for e in env)

    kill_mid_fault(cfg, ["experiments/test_rolling_update.py"], env_changed)
    assert env_changed(), "the killed run's template change must stay until restored"

    proc = run_aftershock("restore", "--config", str(cfg), timeout=120)
    print(f"restore:\n{proc.stdout}{proc.stderr[-2000:]}")
    assert proc.returncode == 0, _show(proc)
    assert f"restored: restored the pod template of deployment {apps.name}/web" \
           in proc.stdout, _show(proc)
    now = apps.get("deployment", "web")["spec"]["template"]
    assert now == original
    _no_ledger_left(apps)
    apps.wait_rollouts()
    # Nothing left: a second restore has nothing to do.
    again = run_aftershock("restore", "--config", str(cfg), timeout=120)
    assert again.returncode == 0 and "nothing to restore" in again.stdout, _show(again)


def test_killed_mid_dependency_outage_check_scales_dep_back(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    assert apps.get("deployment", "dep")["spec"]["replicas"] == 2
    cfg = write_config(tmp_path / "dep.yaml", apps.name, "web", load=LOAD,
                       probes={"dependency": "dep", "dependency_outage_s": 60})

    def dep_down() -> bool:
        dep = apps.get("deployment", "dep")
        return f"{LEDGER}scale" in _ledger(dep) and dep["spec"]["replicas"] == 0

    kill_mid_fault(cfg, ["experiments/test_probes.py", "-k", "dependency"], dep_down)
    time.sleep(2)
    assert dep_down(), "the killed run's scale to 0 must stay until restored"

    # `aftershock check` (posture, no fault) looks first too; its own verdict is not this
    # test's business.
    proc = run_aftershock("check", "--config", str(cfg), timeout=180)
    print(f"check:\n{proc.stderr[-2000:]}")
    assert f"restored: scaled deployment {apps.name}/dep back to 2" in proc.stderr, _show(proc)
    assert apps.get("deployment", "dep")["spec"]["replicas"] == 2
    _no_ledger_left(apps)
    apps.wait_rollouts()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def test_killed_with_worker_pods_restore_deletes_them(
        apps: Scratch, suite_image: str, tmp_path: Path,
        run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "workers.yaml", apps.name, "web",
                       load=LOAD | {"worker_pods": 2, "worker_image": suite_image,
                                    "master_host": HOST_FROM_PODS,
                                    "master_port": _free_port()})

    def workers_made() -> bool:
        return len(apps.pods(RUN_LABEL)) == 2

    kill_mid_fault(cfg, ["-k", "pod_kill"], workers_made)
    time.sleep(2)
    left = apps.pods(RUN_LABEL)
    assert len(left) == 2, "the killed run's worker pods must stay until restored"
    assert all(f"{LEDGER}worker" in _ledger(p) for p in left)

    proc = run_aftershock("restore", "--config", str(cfg), timeout=120)
    print(f"restore:\n{proc.stdout}{proc.stderr[-2000:]}")
    assert proc.returncode == 0, _show(proc)
    for pod in left:
        assert f"restored: deleted load worker pod {apps.name}/{pod['metadata']['name']}" \
               in proc.stdout, _show(proc)
    _wait_no_pods(apps, RUN_LABEL)
    _wait_no_pods(apps, "aftershock.io/role=load-worker")
    _no_ledger_left(apps)


# ------------------------------------------------------------------ the Job's pod, grace 0


def _suite_pid(pod: str) -> int:
    """The host pid of the suite process in the Job's pod ``pod`` (the testbed's nodes run on
    this host): the process whose environment names the pod and whose command is the suite."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"POD_NAME={pod}\0".encode() in environ and b"job\0suite\0" in cmdline:
            found.append(int(proc.name))
    assert found, f"no suite process of pod {pod} on this host"
    return min(found)


def test_job_suite_killed_and_pod_deleted_with_grace_0_next_job_run_reports_restore_restores(
        apps: Scratch, suite_image: str, tmp_path: Path,
        run_aftershock: RunAftershock) -> None:
    """The suite in the Job's pod is SIGKILLed (as the OOM killer or a lost node would) and
    its pod deleted with --grace-period=0: no rollback runs. (A force delete alone still
    gives the suite the kubelet's 2 s minimum grace and SIGTERM, in which it rolls back.)"""
    apps.wait_rollouts()
    original = apps.get("deployment", "web")["spec"]["template"]
    cfg = write_config(tmp_path / "job.yaml", apps.name, "web", load=LOAD,
                       faults={"rollout": {"mode": "env", "env": {"JOB_KILL_TEST": "1"}}})

    def env_changed() -> bool:
        dep = apps.get("deployment", "web")
        env = dep["spec"]["template"]["spec"]["containers"][0].get("env") or []
        return f"{LEDGER}template" in _ledger(dep) and any(
            e["name"] == "JOB_KILL_TEST" for e in env)

    proc = subprocess.Popen([AFTERSHOCK, "job", "run", "--config", str(cfg), "--image",
                             suite_image, "experiments/test_rolling_update.py"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not env_changed():
            assert proc.poll() is None, proc.communicate()[0][-6000:]
            assert time.monotonic() < deadline, "the Job's suite never changed the template"
            time.sleep(0.2)
        [pod] = [p["metadata"]["name"] for p in apps.pods(JOB_LABEL)]
        entry = json.loads(apps.get("deployment", "web")["metadata"]["annotations"][
            f"{LEDGER}template"])
        assert entry["owner"]["pod"] == f"{apps.name}/{pod}", entry
        os.kill(_suite_pid(pod), signal.SIGKILL)
        kubectl("delete", "pod", "-n", apps.name, pod, "--grace-period=0", "--force")
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    print(f"job run after the kill (exit {proc.returncode}):\n{out[-2500:]}")
    assert proc.returncode == 3, out[-6000:]  # inconclusive, never a pass
    assert env_changed(), "no rollback could run: the change must be left for the ledger"

    # The next `job run` looks first (outside the cluster, before applying its Job); with
    # --no-restore it reports and touches nothing.
    nxt = write_config(tmp_path / "next.yaml", apps.name, "web", load=LOAD)
    again = run_aftershock("job", "run", "--config", str(nxt), "--image", suite_image,
                           "--no-restore", "--timeout", "1", timeout=300)
    print(f"next job run:\n{again.stderr[-2500:]}")
    assert f"leftover: deployment {apps.name}/web: pod template changed" in again.stderr, \
        _show(again)
    assert f"not restored (--no-restore): its Job pod {apps.name}/{pod} no longer exists" \
        in again.stderr, _show(again)
    assert env_changed(), "--no-restore must touch nothing"

    proc2 = run_aftershock("restore", "--config", str(nxt), timeout=120)
    print(f"restore:\n{proc2.stdout}")
    assert proc2.returncode == 0, _show(proc2)
    assert f"restored: restored the pod template of deployment {apps.name}/web" \
           in proc2.stdout, _show(proc2)
    assert apps.get("deployment", "web")["spec"]["template"] == original
    _no_ledger_left(apps)
    apps.wait_rollouts()
