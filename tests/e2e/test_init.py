"""``aftershock init`` against live objects: a config that ``run`` accepts unchanged, the
pod header found from the answers, the dependency found from the pod's env, and nothing in
the cluster changed (every object's resourceVersion is the same afterwards)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import KUBECONFIG, RunAftershock, Scratch, kubectl_json

pytestmark = pytest.mark.e2e

KINDS = "deployments,replicasets,services,pods,poddisruptionbudgets,horizontalpodautoscalers"


@pytest.fixture(scope="module")
def apps(scratch: Scratch) -> Scratch:
    scratch.apply("dep", "web")
    return scratch


def _versions(ns: str) -> dict[str, str]:
    items = kubectl_json("get", KINDS, "-n", ns)["items"]
    return {f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"]
            for i in items}


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"


def test_init_writes_a_config_run_accepts_and_changes_nothing(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    before = _versions(apps.name)
    out = tmp_path / "aftershock.yaml"
    proc = run_aftershock("init", "--namespace", apps.name, "--deployment", "web",
                          "--kubeconfig", str(KUBECONFIG), "-o", str(out), timeout=120)
    assert proc.returncode == 0, _show(proc)
    assert _versions(apps.name) == before, "init changed an object in the cluster"
    text = out.read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    assert data["target"] == {"namespace": apps.name, "deployment": "web", "service": "web",
                              "paths": ["/"]}
    assert data["load"]["pod_header"].lower() == "x-pod-name", text
    assert data["probes"]["dependency"] == "dep", text
    assert "READINESS_DEPENDENCY_URL=http://dep/ names Service dep" in text
    again = run_aftershock("init", "--namespace", apps.name, "--deployment", "web",
                           "-o", str(out), timeout=60)
    assert again.returncode == 2 and "exists: pass --force" in again.stderr, _show(again)
    # run accepts it as written: the posture experiment reads the live objects through it
    results = tmp_path / "results"
    proc = run_aftershock("run", "--config", str(out), "--results", str(results),
                          "experiments/test_posture.py", timeout=180)
    assert proc.returncode in (0, 1), _show(proc)
    assert (results / "results.json").exists()
    print(f"\ninit wrote:\n{text}")
