"""aftershock as a Kubernetes Job, on the testbed: the image, the Job, its RBAC, its rollback.

The image is built from the project's Dockerfile here (buildah, no Docker engine, no
registry) and imported into every node; `aftershock job run` then runs the suite in the
cluster and brings the results back.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from aftershock.job import PERMISSIONS, RUN_LABEL
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

LOAD = {"rate": 200, "steady_seconds": 8, "after_seconds": 8}
NODE_SOCKETS = [f"/run/aftershock/node-{i}/containerd.sock" for i in (1, 2, 3)]
MAX_IMAGE_BYTES = 250_000_000


@pytest.fixture(scope="module")
def image(suite_image: str) -> str:
    return suite_image


@pytest.fixture(scope="module")
def apps(scratch: Scratch) -> Scratch:
    scratch.apply("web", "variants/exit-fast")
    return scratch


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stderr\n{proc.stderr[-8000:]}"


def _leftovers(namespace: str) -> list[str]:
    """Objects of any `job run` still in the namespace or the cluster."""
    left = []
    for kind in ("jobs", "configmaps", "serviceaccounts", "roles", "rolebindings"):
        items = kubectl_json("get", kind, "-n", namespace, "-l", RUN_LABEL)["items"]
        left += [f"{kind}/{i['metadata']['name']}" for i in items]
    for kind in ("clusterroles", "clusterrolebindings"):
        items = kubectl_json("get", kind, "-l", RUN_LABEL)["items"]
        left += [f"{kind}/{i['metadata']['name']}" for i in items
                 if f"-{namespace}-" in i["metadata"]["name"]]
    return left


def test_the_image_is_built_from_the_dockerfile_and_on_every_node(image: str) -> None:
    stamp = json.loads(Path(f"/var/cache/aftershock/images/"
                            f"{image.replace('/', '_').replace(':', '_')}.docker.json")
                       .read_text())
    print(f"{image}: {stamp['size'] / 1e6:.0f} MB uncompressed")
    assert stamp["size"] <= MAX_IMAGE_BYTES, stamp
    for socket in NODE_SOCKETS:
        listed = subprocess.run(["ctr", "--address", socket, "-n", "k8s.io", "images", "ls",
                                 "-q"], capture_output=True, text=True, check=True).stdout
        assert image in listed.split(), f"{image} is not in {socket}"


def test_job_run_against_the_well_behaved_app_passes_and_brings_the_results_back(
        apps: Scratch, image: str, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "web.yaml", apps.name, "web", load=LOAD)
    t0 = time.monotonic()
    proc = run_aftershock("job", "run", "--config", str(cfg), "--image", image,
                          "experiments/test_pod_kill.py", "experiments/test_rolling_update.py",
                          timeout=600)
    print(f"job run (pod-kill + rolling-update): {time.monotonic() - t0:.0f} s")
    assert proc.returncode == 0, _show(proc)
    out = tmp_path / "results"
    results = json.loads((out / "results.json").read_text())
    verdicts = {e["name"]: e["verdict"] for e in results["experiments"]}
    assert verdicts == {"pod-kill": "pass", "rolling-update": "pass"}, _show(proc)
    assert (out / "exit-code").read_text().strip() == "0"
    assert sorted(p.name for p in (out / "timelines").glob("*.jsonl")) == [
        "pod-kill.jsonl", "rolling-update.jsonl"]
    cases = ET.parse(out / "junit.xml").getroot().iter("testcase")
    assert {c.get("name") for c in cases} == {"test_pod_kill", "test_rolling_update"}
    assert "suite running" in proc.stderr  # progress was streamed ...
    assert "2 passed" in proc.stderr  # ... and so was the suite's log
    # ... with the run's progress, one timestamped line per change (the pod is no terminal)
    assert re.search(r"\| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[aftershock\] pod-kill: done \(pass\)",
                     proc.stderr), _show(proc)
    assert "\x1b[" not in proc.stderr
    assert (out / "metrics.prom").read_text().endswith("# EOF\n")
    assert json.loads((out / "annotations.json").read_text())
    assert _leftovers(apps.name) == []


def test_job_run_against_a_failing_variant_exits_1_with_the_failure_in_junit(
        apps: Scratch, image: str, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "exit-fast.yaml", apps.name, "web-exit-fast", load=LOAD)
    proc = run_aftershock("job", "run", "--config", str(cfg), "--image", image,
                          "experiments/test_rolling_update.py", timeout=600)
    assert proc.returncode == 1, _show(proc)
    root = ET.parse(tmp_path / "results" / "junit.xml").getroot()
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failed == ["test_rolling_update"], ET.tostring(root)[:3000]
    assert _leftovers(apps.name) == []


def test_an_image_that_cannot_be_pulled_fails_fast(
        apps: Scratch, image: str, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "web.yaml", apps.name, "web", load=LOAD)
    t0 = time.monotonic()
    proc = run_aftershock("job", "run", "--config", str(cfg), "--image",
                          "aftershock.local/no-such-image:0", timeout=300)
    took = time.monotonic() - t0
    assert proc.returncode == 2, _show(proc)
    assert "cannot be pulled" in proc.stderr and "no-such-image" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert took < 90, f"took {took:.0f} s: that is a timeout, not a fast failure"
    assert _leftovers(apps.name) == []


# ------------------------------------------------------------------------------ RBAC


def _can(sa: str, ns: str, verb: str, resource: str, subresource: str = "",
         namespace: str | None = None) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={sa}"]
    if namespace is not None:
        args += ["-n", namespace]
    if subresource:
        args += [f"--subresource={subresource}"]
    proc = kubectl(*args, check=False)
    assert proc.stdout.strip() in ("yes", "no"), proc.stderr
    return proc.stdout.strip() == "yes"


def test_rbac_matrix_exactly_what_the_experiments_need(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "rbac.yaml", apps.name, "web")
    proc = run_aftershock("job", "render", "--config", str(cfg), "--run-id", "rbac")
    assert proc.returncode == 0, _show(proc)
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d["kind"] not in ("Job",)]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    ns = apps.name
    sa = f"system:serviceaccount:{ns}:aftershock-rbac"
    try:
        rows: list[tuple[str, str, bool, bool]] = []
        for p in PERMISSIONS:  # everything the experiments do: allowed
            where = None if p.cluster else ns
            resource = f"{p.resource}.{p.group}" if p.group else p.resource
            rows.append((f"{p.verb} {p.resource_name}", where or "(cluster)", True,
                         _can(sa, ns, p.verb, resource, p.subresource, where)))
        denied: list[tuple[str, str, str, str | None]] = [
            ("get", "secrets", "", ns), ("list", "secrets", "", ns),
            ("list", "secrets", "", None), ("get", "configmaps", "", ns),
            ("create", "pods", "", ns), ("create", "pods", "exec", ns),
            ("update", "deployments.apps", "", ns), ("delete", "deployments.apps", "", ns),
            ("create", "deployments.apps", "", ns), ("delete", "services", "", ns),
            ("patch", "services", "", ns), ("delete", "nodes", "", None),
            ("create", "clusterrolebindings.rbac.authorization.k8s.io", "", None),
            ("create", "rolebindings.rbac.authorization.k8s.io", "", ns),
            ("list", "pods", "", "kube-system"), ("delete", "pods", "", "default"),
            ("patch", "deployments.apps", "", "kube-system"),
            ("create", "pods", "eviction", "kube-system"),
            ("list", "pods", "", None),  # all namespaces
        ]
        for verb, resource, sub, where in denied:
            name = f"{verb} {resource}{'/' + sub if sub else ''}"
            rows.append((name, where or "(cluster)", False,
                         _can(sa, ns, verb, resource, sub, where)))
        table = "\n".join(f"{'yes' if got else 'no ':4} {'ok ' if got == want else 'BAD'} "
                          f"{what:55} {where}" for what, where, want, got in rows)
        print(f"kubectl auth can-i --as={sa}\n{table}")
        assert all(got == want for _, _, want, got in rows), table
    finally:
        kubectl("delete", "-f", "-", "--wait=false", "--ignore-not-found",
                stdin=yaml.safe_dump_all(docs), check=False)


# ------------------------------------------------------------------------------ rollback


def _template_env(apps: Scratch, deployment: str) -> dict[str, str]:
    dep = apps.get("deployment", deployment)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_deleting_the_job_mid_fault_rolls_the_fault_back(
        apps: Scratch, image: str, tmp_path: Path) -> None:
    kubectl("rollout", "status", "-n", apps.name, "deployment/web", "--timeout=180s",
            timeout=200)
    original = _template_env(apps, "web")
    cfg = write_config(tmp_path / "delete.yaml", apps.name, "web", load=LOAD,
                       faults={"rollout": {"mode": "env", "env": {"AFTERSHOCK_PROBE": "1"}}})
    proc = subprocess.Popen([AFTERSHOCK, "job", "run", "--config", str(cfg), "--image", image,
                             "experiments/test_rolling_update.py"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while "AFTERSHOCK_PROBE" not in _template_env(apps, "web"):
            assert proc.poll() is None, proc.communicate()[0][-6000:]
            assert time.monotonic() < deadline, "the fault was never injected"
            time.sleep(0.2)
        jobs = kubectl_json("get", "jobs", "-n", apps.name, "-l", RUN_LABEL)["items"]
        assert len(jobs) == 1
        # What a person (or a cancelled pipeline) does: delete the Job. Its pod gets SIGTERM.
        kubectl("delete", "job", "-n", apps.name, jobs[0]["metadata"]["name"], "--wait=false")
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    assert _template_env(apps, "web") == original, out[-6000:]
    cordoned = [n["metadata"]["name"] for n in kubectl_json("get", "nodes")["items"]
                if n["spec"].get("unschedulable")]
    assert cordoned == [], f"nodes left cordoned: {cordoned}"
    assert proc.returncode == 3, out[-6000:]  # interrupted: inconclusive, never a pass
    # The suite rolled back while the pod was terminating, and the holder still handed over
    # what it wrote: the rollback is on the timeline.
    results = tmp_path / "results"
    timeline = results / "timelines" / "rolling-update.jsonl"
    assert timeline.is_file(), out[-6000:]
    assert '"rollback_end"' in timeline.read_text(), out[-6000:]
    kubectl("rollout", "status", "-n", apps.name, "deployment/web", "--timeout=180s",
            timeout=200)
    assert _leftovers(apps.name) == []


WORKER_RATE = 400.0
WORKER_LOAD = {"rate": WORKER_RATE, "steady_seconds": 10, "after_seconds": 10,
               "worker_pods": 2}
LOAD_WORKER = "aftershock.io/role=load-worker"


def test_job_run_scales_the_load_out_to_worker_pods_with_the_master_in_the_jobs_pod(
        apps: Scratch, image: str, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    """load.worker_pods from inside the Job: the suite's process in the Job's pod is the
    locust master (at POD_IP), two worker pods of the suite's own image send the load and
    their records reach it, the rate holds, and no worker pod is left afterwards."""
    cfg = write_config(tmp_path / "workers.yaml", apps.name, "web", load=WORKER_LOAD)
    t0 = time.monotonic()
    proc = run_aftershock("job", "run", "--config", str(cfg), "--image", image,
                          "-k", "pod_kill", timeout=900)
    print(f"job run (pod-kill, 2 worker pods): {time.monotonic() - t0:.0f} s")
    assert proc.returncode == 0, _show(proc)
    assert "the Job's Role grants pod create for this run" in proc.stderr
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    [exp] = results["experiments"]
    assert (exp["name"], exp["verdict"]) == ("pod-kill", "pass"), _show(proc)
    load = exp["load"]
    workers = load.get("requests_per_worker") or {}
    print(f"load: {json.dumps(load, indent=1)}")
    assert len(workers) == 2, load
    for worker in workers:  # locust's client id: <hostname = worker pod name>_<uuid>;
        # the pods the suite made from inside the Job's pod (job run itself makes none)
        assert worker.startswith("aftershock-load-pod-kill-"), workers
    # Every request came from a worker (the master runs no users), each sent its share.
    assert sum(workers.values()) == load["requests"], load
    assert min(workers.values()) >= 0.4 * load["requests"], load
    assert load["target_rate"] == WORKER_RATE
    assert abs(load["achieved_rate"] - WORKER_RATE) <= 0.02 * WORKER_RATE, load
    assert apps.pods(LOAD_WORKER) == [], "worker pods left after job run"
    assert _leftovers(apps.name) == []
