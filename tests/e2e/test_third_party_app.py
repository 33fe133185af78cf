"""A third-party app, not ours: go-httpbin built from its Go module and deployed from its own
manifest (testbed/thirdparty/httpbin/deploy). It sends no pod header, has no /work path, listens on
8080 and probes /status/200. `aftershock init` writes the config; `aftershock run` takes it
unchanged, and the pod kill, rollout, drain and PDB experiments pass against it. The new-pods
probe check, which needs to know which pod answered, is inconclusive and says how to add a
source (not-ready traffic needs a dependency, and init found no evidence of one here).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import AFTERSHOCK, KUBECONFIG, ROOT, RunAftershock, Scratch, kubectl

pytestmark = pytest.mark.e2e

DEPLOY = ROOT / "testbed" / "thirdparty" / "httpbin" / "deploy"
DISRUPTIONS = ["experiments/test_pod_kill.py", "experiments/test_rolling_update.py",
               "experiments/test_node_drain.py", "experiments/test_pdb.py"]


@pytest.fixture(scope="module")
def httpbin(scratch: Scratch) -> Scratch:
    kubectl("apply", "-n", scratch.name, "-k", str(DEPLOY))
    scratch.wait_rollouts()
    return scratch


@pytest.fixture(scope="module")
def config(httpbin: Scratch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("httpbin") / "aftershock.yaml"
    proc = subprocess.run(
        [AFTERSHOCK, "init",
         "--namespace", httpbin.name, "--deployment", "httpbin", "--kubeconfig",
         str(KUBECONFIG), "-o", str(out)], capture_output=True, text=True, timeout=120,
        check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"


def _results(results: Path) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((results / "results.json").read_text())
    return {e["name"]: e for e in data["experiments"]}


def test_init_finds_the_service_and_no_pod_header(httpbin: Scratch, config: Path) -> None:
    text = config.read_text()
    data = yaml.safe_load(text)
    assert data["target"] == {"namespace": httpbin.name, "deployment": "httpbin",
                              "service": "httpbin", "paths": ["/"]}
    assert "pod_header" not in (data.get("load") or {}), text
    assert "no response header named the answering pod" in text
    assert "HPA httpbin: 3-6 replicas on cpu" in text
    assert "PodDisruptionBudget httpbin: maxUnavailable: 1" in text
    print(f"\ninit wrote for go-httpbin:\n{text}")


def test_pod_kill_rollout_drain_and_pdb_pass_with_the_config_as_written(
        config: Path, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    results = tmp_path / "results"
    proc = run_aftershock("run", "--config", str(config), "--results", str(results),
                          *DISRUPTIONS, timeout=900)
    entries = _results(results)
    summary = {name: (e["verdict"], e.get("reason", "")) for name, e in entries.items()}
    assert proc.returncode == 0, f"{summary}\n{_show(proc)}"
    assert len(entries) >= 4 and all(v == "pass" for v, _ in summary.values()), summary
    for name, e in entries.items():
        phases = e.get("phases") or {}
        print(f"\n{name}: {e['verdict']}; " + ", ".join(
            f"{p} {ph['requests']} req {ph['errors']} failed" for p, ph in phases.items()))


def test_pod_attribution_checks_are_inconclusive_and_say_how_to_add_a_source(
        config: Path, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    results = tmp_path / "results"
    proc = run_aftershock("run", "--config", str(config), "--results", str(results),
                          "experiments/test_probes.py", "-k", "new_pods",
                          timeout=600)
    entries = _results(results)
    assert proc.returncode == 3, _show(proc)
    e = entries["probes-new-pods"]
    assert e["verdict"] == "inconclusive", (e["verdict"], e.get("reason"))
    assert "pod_header" in e["reason"], e["reason"]
    print(f"\nprobes-new-pods: {e['reason']}")
