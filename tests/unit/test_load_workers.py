"""Worker pods for the load (load.worker_pods): the driver's seam, the pods' manifest, and
their exclusion from the drain. The cluster run is tests/e2e/test_load_workers.py."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from aftershock.config import Config
from aftershock.errors import UsageError
from aftershock.faults.drain import plan_drain, skip_reason
from aftershock.kube.cluster import Cluster
from aftershock.kube.load_workers import ROLE_LABEL, ROLE_LOAD_WORKER, WorkerPods
from aftershock.load.driver import ENV_PARENT_PID, ENV_RECORDS, LoadDriver, LoadSpec


class FakeRemote:
    def __init__(self, fail: bool = False) -> None:
        self.started: list[tuple[int, list[str], dict[str, str]]] = []
        self.stops = 0
        self.fail = fail

    def start(self, count: int, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.started.append((count, list(args), dict(env)))
        if self.fail:
            raise RuntimeError("no pods today")

    def stop(self) -> None:
        self.stops += 1


def _config(**load: Any) -> Config:
    target = {"namespace": "shop", "deployment": "web", "service": "web",
              "url": "http://web.shop"}
    return Config.model_validate({"target": target, "load": load})


def test_worker_pods_make_locust_a_master_and_workers_fetch_the_locustfile(
        tmp_path: Path) -> None:
    spec = LoadSpec(host="http://x", worker_pods=2, master_host="10.0.0.7", master_port=6000)
    d = LoadDriver(spec, tmp_path, remote_workers=FakeRemote())
    cmd = d.command()
    assert cmd[cmd.index("--expect-workers") + 1] == "2"
    assert "--master" in cmd and "--processes" not in cmd
    assert cmd[cmd.index("--master-bind-port") + 1] == "6000"
    assert d.worker_command()[:5] == ["--worker", "--master-host", "10.0.0.7",
                                      "--master-port", "6000"]
    assert d.worker_command()[5:7] == ["-f", "-"]
    env = d.worker_environment()
    assert ENV_RECORDS not in env and ENV_PARENT_PID not in env
    assert "AFTERSHOCK_LOCUST_FAILURE_STATUSES" in env


def test_worker_pods_need_a_seam_an_address_and_no_local_workers(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nothing can start worker pods"):
        LoadDriver(LoadSpec(host="http://x", worker_pods=1, master_host="h"), tmp_path)
    with pytest.raises(UsageError, match="cannot be combined"):
        LoadDriver(LoadSpec(host="http://x", worker_pods=1, workers=2, master_host="h"),
                   tmp_path, remote_workers=FakeRemote())
    with pytest.raises(UsageError, match="master_host"):
        LoadDriver(LoadSpec(host="http://x", worker_pods=1), tmp_path,
                   remote_workers=FakeRemote())


def test_the_master_address_comes_from_the_config_or_the_pod_ip(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_IP", raising=False)
    assert LoadSpec.from_config(_config()).worker_pods == 0
    with pytest.raises(UsageError, match=r"load\.master_host"):
        LoadSpec.from_config(_config(worker_pods=2))
    assert LoadSpec.from_config(_config(worker_pods=2, master_host="h")).master_host == "h"
    monkeypatch.setenv("POD_IP", "10.1.2.3")
    spec = LoadSpec.from_config(_config(worker_pods=2))
    assert (spec.master_host, spec.master_port, spec.worker_pods) == ("10.1.2.3", 5557, 2)


def test_remote_workers_are_stopped_when_their_start_fails(tmp_path: Path) -> None:
    remote = FakeRemote(fail=True)
    d = LoadDriver(LoadSpec(host="http://127.0.0.1:9", worker_pods=1, master_host="h",
                            master_port=0), tmp_path, remote_workers=remote)
    with pytest.raises(RuntimeError, match="no pods today"):
        d.start()
    assert remote.stops >= 1 and not d.running


class _Core:
    pass


def _pods(image: str = "img:1") -> WorkerPods:
    cluster = Cluster.__new__(Cluster)
    cluster.namespaces = frozenset({"shop"})
    cluster.core = _Core()  # type: ignore[assignment]
    return WorkerPods(cluster, "shop", image, "Exp 1", max_duration_s=100)


def test_a_worker_pod_runs_the_suites_image_restricted_and_bounded() -> None:
    m = _pods().manifest(0, ["--worker"], {"A": "1"})
    assert m["metadata"]["labels"][ROLE_LABEL] == ROLE_LOAD_WORKER
    assert m["metadata"]["name"] == "aftershock-load-exp-1-0"
    spec = m["spec"]
    c = spec["containers"][0]
    assert c["image"] == "img:1" and c["command"] == ["python", "-m", "locust"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["activeDeadlineSeconds"] >= 100 and spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False


def test_worker_pods_need_an_image_and_an_allowed_namespace() -> None:
    with pytest.raises(UsageError, match=r"load\.worker_image"):
        _pods(image="")
    cluster = Cluster.__new__(Cluster)
    cluster.namespaces = frozenset({"other"})
    with pytest.raises(Exception, match="shop"):
        WorkerPods(cluster, "shop", "img", "r")


def test_the_drain_never_evicts_a_load_worker() -> None:
    worker = {"metadata": {"namespace": "shop", "name": "aftershock-load-r-0", "uid": "u",
                           "labels": {ROLE_LABEL: ROLE_LOAD_WORKER},
                           "ownerReferences": [{"kind": "ReplicaSet", "controller": True}]}}
    assert "load worker" in (skip_reason(worker) or "")
    plan = plan_drain([worker], frozenset({"shop"}), set())
    assert not plan.evict and [p.name for p, _ in plan.skipped] == ["aftershock-load-r-0"]


def test_each_workers_requests_are_counted_from_the_records_it_sent(tmp_path: Path) -> None:
    """results.json's load.requests_per_worker: the evidence that every worker sent its share."""
    from aftershock.checks.codec import request_line
    d = LoadDriver(LoadSpec(host="http://x"), tmp_path)
    d.records_dir.mkdir(parents=True)
    files = {"requests-w-aftershock-load-r-0_ab12.jsonl": [1.0, 1.2, 1.4],
             "requests-w-aftershock-load-r-1_cd34.jsonl": [1.1, 1.3],
             "requests-4242.jsonl": [1.05]}
    for name, starts in files.items():
        (d.records_dir / name).write_text("".join(
            request_line(s, 5.0, 200, "", None, "/") + "\n" for s in starts))
    reqs = d.requests()
    assert len(reqs) == 6 and list(reqs.starts) == sorted(reqs.starts)
    assert d.result(reqs).per_worker == {"aftershock-load-r-0_ab12": 3,
                                      "aftershock-load-r-1_cd34": 2}


class _Pods:
    """A namespace's pods as a fake core API: list by selector, delete by name."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.deleted: list[str] = []

    def list_namespaced_pod(self, **kw: Any) -> Any:
        key, value = kw["label_selector"].split("=")
        items = [p for p in self.pods if p["metadata"]["labels"].get(key) == value]
        return type("Resp", (), {"data": json.dumps({"items": items, "metadata": {}})})

    def delete_namespaced_pod(self, name: str, namespace: str, **kw: Any) -> None:
        self.deleted.append(name)
        self.pods = [p for p in self.pods if p["metadata"]["name"] != name]


def _worker(name: str, owner_uid: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {ROLE_LABEL: ROLE_LOAD_WORKER},
                         "ownerReferences": [{"kind": "Pod", "uid": owner_uid}]}}


def test_job_run_deletes_the_worker_pods_its_jobs_pod_owns_and_no_others() -> None:
    from aftershock.kube.job_api import delete_load_workers
    cluster = Cluster.__new__(Cluster)
    core = _Pods([_worker("aftershock-load-a-0", "job-pod"),
                  _worker("aftershock-load-a-1", "job-pod"),
                  _worker("aftershock-load-other-0", "another-suite")])
    cluster.core = core  # type: ignore[assignment]
    assert delete_load_workers(cluster, "shop", {"job-pod"}, timeout_s=5) == []
    assert sorted(core.deleted) == ["aftershock-load-a-0", "aftershock-load-a-1"]
    assert [p["metadata"]["name"] for p in core.pods] == ["aftershock-load-other-0"]
