"""locust worker pods on the testbed: the suite's process (here, the host) is the locust
master, two worker pods in a scratch namespace send the load to ``web``, and their records
travel to the master over locust's messages. The pods are gone when the load stops.

From the host the master binds on the host; the pods reach it at the testbed's
control-plane address on the bridge (``load.master_host``).
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from pathlib import Path

import pytest

from aftershock.kube.cluster import connect_to, service_url
from aftershock.kube.load_workers import ROLE_LABEL, ROLE_LOAD_WORKER, WorkerPods
from aftershock.load import LoadDriver, LoadSpec
from tests.e2e.conftest import KUBECONFIG, Scratch, kubectl_json

pytestmark = pytest.mark.e2e

#: The host as the testbed's pods see it (the control-plane address on the bridge).
HOST_FROM_PODS = "198.19.128.1"
RATE = 200.0
SECONDS = 5.0


@pytest.fixture(scope="module")
def image(suite_image: str) -> str:
    return suite_image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def test_two_worker_pods_send_the_load_and_their_records_reach_the_master(
        scratch: Scratch, image: str, tmp_path: Path) -> None:
    scratch.apply("web")
    cluster = connect_to(str(KUBECONFIG), None, [scratch.name])
    url = service_url(cluster, scratch.name, "web")
    spec = LoadSpec(host=url, rate=RATE, worker_pods=2, master_host=HOST_FROM_PODS,
                    master_port=_free_port(), max_duration_s=120)
    run = f"e2e-{secrets.token_hex(3)}"
    pods = WorkerPods(cluster, scratch.name, image, run, max_duration_s=120, say=print)
    selector = f"{ROLE_LABEL}={ROLE_LOAD_WORKER}"
    driver = LoadDriver(spec, tmp_path, remote_workers=pods)
    t0 = time.monotonic()
    with driver:
        started = time.monotonic() - t0
        running = scratch.pods(selector)
        time.sleep(SECONDS)
    stopped = time.monotonic() - t0 - started - SECONDS
    print(f"first request after {started:.1f} s; stop (master + pods gone) {stopped:.1f} s")
    assert len(running) == 2
    assert not scratch.pods(selector), "worker pods left after the load stopped"

    files = sorted((tmp_path / "records").glob("requests-w-*.jsonl"))
    per_worker = {f.name: sum(1 for _ in f.open()) for f in files}
    print(json.dumps(per_worker, indent=1))
    assert len(per_worker) == 2, per_worker
    names = {p["metadata"]["name"] for p in running}
    for f in per_worker:  # locust's client id: <hostname = pod name>_<uuid>
        assert any(f.startswith(f"requests-w-{n}_") for n in names), (f, names)
    assert min(per_worker.values()) > 0.3 * RATE * SECONDS / 2, per_worker

    reqs = driver.requests()
    result = driver.result(reqs)
    print(f"requests {result.requests}, achieved {result.achieved_rate} req/s, "
          f"errors {sum(1 for e in reqs.errors if e)}")
    assert result.achieved_rate is not None
    assert abs(result.achieved_rate - RATE) <= 0.1 * RATE, result
    assert all(s == 200 for s in reqs.statuses), "web failed requests under a steady load"
    assert kubectl_json("get", "pods", "-n", scratch.name, "-l", selector)["items"] == []
