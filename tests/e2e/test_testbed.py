"""The testbed itself (issue 2): nodes, Services, DNS, drains, PDBs, metrics, HPA, probes, Jobs.

Each test works in a namespace of its own and deletes it afterwards. Traffic goes only to
testbed addresses (ClusterIPs and pod IPs in 198.18.0.0/15) and every load loop is bounded
in count and time. `make testbed-down` is proven in test_zz_testbed_down.py, which runs last.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import KUBECONFIG, MANIFESTS, Scratch, kubectl, kubectl_json

pytestmark = pytest.mark.e2e

K8S_VERSION = "v1.35.8"
NODES = ["node-1", "node-2", "node-3"]
WEB = "app.kubernetes.io/name=web"
# Nothing in the host's environment (proxies) may redirect a probe away from the testbed.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def ns(testbed: object) -> Iterator[Scratch]:
    """A namespace for one test, deleted (without waiting) when it ends."""
    scratch = Scratch(f"e2e-testbed-{secrets.token_hex(3)}")
    kubectl("create", "namespace", scratch.name)
    try:
        yield scratch
    finally:
        kubectl("delete", "namespace", scratch.name, "--wait=false", check=False)


def wait_until(what: str, probe: Callable[[], Any], timeout: float, interval: float = 1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not true after {timeout:.0f}s (last: {last!r})")


def http_get(url: str, timeout: float = 2) -> tuple[int, str]:
    try:
        with HTTP.open(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError as err:
        return 0, str(err)


def cluster_ip(scratch: Scratch, service: str) -> str:
    return str(scratch.get("service", service)["spec"]["clusterIP"])


def in_pod(scratch: Scratch, *cmd: str, timeout: float = 30) -> str:
    return kubectl("exec", "-n", scratch.name, "deploy/toolbox", "--", *cmd,
                   timeout=timeout).stdout


def ready_pods(scratch: Scratch, selector: str) -> list[dict[str, Any]]:
    return [p for p in scratch.pods(selector)
            if p["metadata"].get("deletionTimestamp") is None
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions", []))]


def test_three_nodes_ready(testbed: object) -> None:
    nodes = kubectl_json("get", "nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == NODES
    for node in nodes:
        conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conds["Ready"] == "True", node["metadata"]["name"]
        assert node["status"]["nodeInfo"]["kubeletVersion"] == K8S_VERSION
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == K8S_VERSION
    assert version["clientVersion"]["gitVersion"] == K8S_VERSION


def test_service_answers_from_host_and_pod_and_resolves(ns: Scratch) -> None:
    ns.apply("web", "toolbox")
    ip = cluster_ip(ns, "web")
    assert ip.startswith("198.19."), ip
    # kube-proxy programs a new Service's endpoints a moment after the rollout finishes.
    wait_until("web answers on its ClusterIP from the host",
               lambda: http_get(f"http://{ip}/")[0] == 200, 30, 0.5)
    assert http_get(f"http://{ip}/")[1].startswith("ok")
    # busybox wget: no -T (Debian's 1.35 static build crashes with it); timeout bounds it.
    out = in_pod(ns, "timeout", "10", "wget", "-qO-", "http://web/")
    assert out.startswith("ok"), out
    fqdn = f"web.{ns.name}.svc.cluster.local"
    out = in_pod(ns, "nslookup", fqdn)
    assert fqdn in out and ip in out, out


def test_drain_moves_pods_and_service_keeps_answering(ns: Scratch) -> None:
    ns.apply("web")
    ip = cluster_ip(ns, "web")
    wait_until("web answers", lambda: http_get(f"http://{ip}/")[0] == 200, 30, 0.5)
    victim = ready_pods(ns, WEB)[0]["spec"]["nodeName"]
    results: list[tuple[float, int]] = []
    stop = threading.Event()

    def probe() -> None:  # at most 10 requests a second, for at most 180 s
        end = time.monotonic() + 180
        while not stop.is_set() and time.monotonic() < end:
            results.append((time.monotonic(), http_get(f"http://{ip}/", timeout=1)[0]))
            time.sleep(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        # Evict only this test's pods: whatever other namespaces left on the node (bare
        # pods, blocking PDBs) must not make this drain fail or hang.
        mark = f"e2e-drain={ns.name}"
        kubectl("label", "pods", "-n", ns.name, "-l", WEB, mark)
        kubectl("drain", victim, f"--pod-selector={mark}", "--ignore-daemonsets",
                "--delete-emptydir-data", "--timeout=150s", timeout=170)

        def moved() -> bool:
            pods = ready_pods(ns, WEB)
            return len(pods) >= 3 and all(p["spec"]["nodeName"] != victim for p in pods)

        wait_until(f"web pods off {victim}", moved, 120)
        time.sleep(2)
    finally:
        stop.set()
        prober.join()
        kubectl("uncordon", victim, check=False)
    codes = [code for _, code in results]
    ok = codes.count(200)
    assert ok / len(codes) >= 0.98, f"{len(codes) - ok} of {len(codes)} probes failed"
    answered = [t for t, code in results if code == 200]
    longest = max(b - a for a, b in itertools.pairwise(answered))
    assert codes[-1] == 200 and longest < 3, f"the Service went silent for {longest:.1f}s"
    assert not kubectl_json("get", "node", victim)["spec"].get("unschedulable")


def test_eviction_refused_with_429_when_pdb_allows_none(ns: Scratch) -> None:
    ns.apply("toolbox")
    kubectl("apply", "-n", ns.name, "-f", "-", stdin=json.dumps({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "toolbox"},
        "spec": {"minAvailable": 1,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "toolbox"}}},
    }))

    def settled() -> bool:
        pdb = ns.get("pdb", "toolbox")
        st = pdb.get("status", {})
        return bool(st.get("observedGeneration") == pdb["metadata"]["generation"]
                    and st.get("currentHealthy") == 1 and st.get("disruptionsAllowed") == 0)

    wait_until("PDB status", settled, 60)
    pod = ns.pods("app.kubernetes.io/name=toolbox")[0]["metadata"]["name"]
    api = client.CoreV1Api(config.new_client_from_config(str(KUBECONFIG)))
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=ns.name))
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_pod_eviction(pod, ns.name, body)
    assert refused.value.status == 429, refused.value
    assert "disruption budget" in str(refused.value.body)
    assert ns.get("pod", pod)["metadata"].get("deletionTimestamp") is None


def _pod_cpu(ns: Scratch) -> dict[str, str]:
    proc = kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns.name}/pods",
                   check=False)
    if proc.returncode != 0:
        return {}
    return {item["metadata"]["name"]: item["containers"][0]["usage"]["cpu"]
            for item in json.loads(proc.stdout)["items"] if item["containers"]}


def test_metrics_and_hpa_scale_up_under_cpu_load(ns: Scratch) -> None:
    ns.apply("web")
    ip = cluster_ip(ns, "web")
    cpu = wait_until("pod CPU from metrics.k8s.io", lambda: len(_pod_cpu(ns)) >= 3 and _pod_cpu(ns),
                     150, 3)
    assert all(v.endswith(("n", "u", "m")) or v.isdigit() for v in cpu.values()), cpu
    top = kubectl("top", "pods", "-n", ns.name, "-l", WEB).stdout
    assert "web-" in top, top

    stop = threading.Event()
    sent = [0]

    def load() -> None:  # bounded: 4 workers, at most 2400 requests each, at most 180 s
        end = time.monotonic() + 180
        for _ in range(2400):
            if stop.is_set() or time.monotonic() > end:
                return
            http_get(f"http://{ip}/work?ms=40", timeout=5)
            sent[0] += 1

    workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        def scaled() -> int:
            st = ns.get("hpa", "web").get("status", {})
            return int(st.get("desiredReplicas", 0)) > 3 and int(st["desiredReplicas"])

        replicas = wait_until("HPA replicas above 3", scaled, 170, 3)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert replicas > 3 and sent[0] > 0


def test_hung_liveness_restarts_container(ns: Scratch) -> None:
    kubectl("apply", "-n", ns.name, "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hang"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
            "name": "app", "image": _image("web", "sampleapp"), "imagePullPolicy": "IfNotPresent",
            "env": [{"name": "DRAIN_SECONDS", "value": "0"}],
            "ports": [{"containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                              "periodSeconds": 2, "timeoutSeconds": 1, "failureThreshold": 2},
        }]},
    }))
    kubectl("wait", "-n", ns.name, "--for=condition=Ready", "pod/hang", "--timeout=60s",
            timeout=70)
    pod_ip = ns.get("pod", "hang")["status"]["podIP"]
    req = urllib.request.Request(f"http://{pod_ip}:8080/admin/hang-liveness", method="POST")
    with HTTP.open(req, timeout=5) as resp:
        assert resp.status == 200

    def restarted() -> int:
        st = ns.get("pod", "hang")["status"].get("containerStatuses", [{}])[0]
        return int(st.get("restartCount", 0))

    assert wait_until("liveness restart", restarted, 60) >= 1
    events = kubectl("get", "events", "-n", ns.name, "--field-selector",
                     "involvedObject.name=hang").stdout
    assert "Liveness probe failed" in events, events


def _image(manifests: str, name: str) -> str:
    """The image a manifests directory uses, so tests follow the image helper's tags."""
    rendered = kubectl("kustomize", str(MANIFESTS / manifests)).stdout
    for line in rendered.splitlines():
        if "image:" in line and name in line:
            return line.split("image:", 1)[1].strip()
    raise AssertionError(f"no {name} image in testbed/manifests/{manifests}")


def test_job_runs_to_completion(ns: Scratch) -> None:
    image = _image("toolbox", "toolbox")
    kubectl("apply", "-n", ns.name, "-f", "-", stdin=json.dumps({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 120, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "once", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", "echo job-done"]}]}}},
    }))
    kubectl("wait", "-n", ns.name, "--for=condition=complete", "job/once", "--timeout=90s",
            timeout=100)
    assert "job-done" in kubectl("logs", "-n", ns.name, "job/once").stdout
