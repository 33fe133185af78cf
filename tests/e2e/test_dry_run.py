"""``aftershock run --dry-run`` and ``--confirm`` on the testbed: a plan that changes nothing.

One dry run of every shipped experiment (the dependency, a Chaos Toolkit experiment and a
team's own custom fault included) against the sample app in a scratch namespace. Every
object it could touch is read before and after: the target's and the dependency's
Deployments, ReplicaSets and pods, the PDBs, the HPA and the nodes must be as they were,
results/ must hold the earlier run's file untouched, and the printed plan must name the
real pods and node. Then ``--confirm`` under a pseudo-terminal, answered "n": the plan is
shown, nothing is injected and the experiment is inconclusive with the operator's reason;
and ``--confirm`` without a terminal is refused with exit 2.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.e2e.conftest import (
    AFTERSHOCK,
    ROOT,
    RunAftershock,
    Scratch,
    kubectl_json,
    write_config,
)

pytestmark = pytest.mark.e2e

LOAD = {"rate": 100, "steady_seconds": 5, "after_seconds": 3}
EVERYTHING = ["--experiments", "examples/experiments/test_delete_oldest_pod.py"]


@pytest.fixture(scope="module")
def app(scratch: Scratch) -> Scratch:
    scratch.apply("web")  # web, its PDB and HPA, and dep (another app in the namespace)
    return scratch


def _config(path: Path, ns: str) -> Path:
    return write_config(path, ns, "web", load=LOAD,
                        probes={"dependency": "dep", "dependency_outage_s": 5},
                        faults={"chaostoolkit": {
                            "experiment": str(ROOT / "examples/chaostoolkit/pod-kill.json")}})


def _items(kind: str, ns: str | None) -> list[dict[str, Any]]:
    where = ["-n", ns] if ns else []
    return list(kubectl_json("get", kind, *where)["items"])


def snapshot(ns: str) -> dict[str, Any]:
    """What a dry run must leave as it was. resourceVersion for the objects only a change
    of ours would touch here; for nodes and the HPA, whose status their own controllers
    rewrite every few seconds, the spec, labels and annotations (a cordon, the restore
    ledger's marks, a scale of the target)."""
    seen: dict[str, Any] = {}
    for kind in ("deployments", "replicasets", "pods", "poddisruptionbudgets"):
        for o in _items(kind, ns):
            seen[f"{kind}/{o['metadata']['name']}"] = o["metadata"]["resourceVersion"]
    for o in _items("horizontalpodautoscalers", ns):
        seen[f"hpa/{o['metadata']['name']}"] = (o["metadata"].get("generation"), o["spec"],
                                                o["metadata"].get("annotations"))
    for o in _items("nodes", None):
        seen[f"nodes/{o['metadata']['name']}"] = (o["spec"], o["metadata"].get("labels"),
                                                  o["metadata"].get("annotations"))
    return seen


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-8000:]}\n--- stderr\n" \
           f"{proc.stderr[-4000:]}"


def _drained_node(pods: list[dict[str, Any]]) -> str:
    """The node running the most web pods, ties by name: what the drain chooses."""
    counts = Counter(p["spec"]["nodeName"] for p in pods)
    return min(counts, key=lambda n: (-counts[n], n))


def test_dry_run_changes_nothing_and_names_the_real_objects(
        app: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = _config(tmp_path / "web.yaml", app.name)
    earlier = tmp_path / "results" / "results.json"
    earlier.parent.mkdir()
    earlier.write_text('{"experiments": [], "earlier": true}\n')
    web = app.pods("app.kubernetes.io/name=web")
    before = snapshot(app.name)

    proc = run_aftershock("run", "--config", str(cfg), "--dry-run", *EVERYTHING, timeout=300)

    after = snapshot(app.name)
    assert proc.returncode == 0, _show(proc)
    changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
               if before.get(k) != after.get(k)}
    assert not changed, f"the dry run changed {json.dumps(changed, default=str)[:3000]}"
    assert earlier.read_text() == '{"experiments": [], "earlier": true}\n'
    assert sorted(p.name for p in earlier.parent.iterdir()) == ["results.json"]

    out = proc.stdout
    names = {p["metadata"]["name"] for p in web}
    killed = re.search(r"pod-kill: .*\n\s+would: delete pod\(s\) (\S+) of (\d+) running", out)
    assert killed and killed.group(1) in names and int(killed.group(2)) == len(web), _show(proc)
    node = _drained_node(web)
    assert f"would: cordon node {node}, then evict" in out, _show(proc)
    on_node = [p for p in _items("pods", app.name) if p["spec"]["nodeName"] == node]
    for pod in on_node:  # web's and dep's: every pod of the namespace on that node
        assert f"evict {app.name}/{pod['metadata']['name']}" in out, _show(proc)
    assert f"then uncordon node {node}" in out, _show(proc)
    assert re.search(r"would: evict \S+ \(\d allowed by PodDisruptionBudget web\)", out) \
        or "PodDisruptionBudget web allows no disruption" in out, _show(proc)
    assert "would: rolling restart of deployment web" in out, _show(proc)
    assert re.search(r"would: drive HPA web \(\d+-\d+ replicas\)", out), _show(proc)
    assert "send a second load of the steady traffic" in out, _show(proc)  # no work_path
    assert f"scale dependency deployment {app.name}/dep from" in out, _show(proc)
    assert "pod-kill.json" in out and "cannot be previewed in detail" in out, _show(proc)
    assert "custom fault delete_oldest_pod" in out, _show(proc)
    assert "SLO during: error rate <= 0, outage <= 0 ms" in out, _show(proc)
    assert "nothing was changed or written; exit 0" in proc.stderr, _show(proc)
    print(f"\ndry run plan ({len(out.splitlines())} lines); drained node {node}")


def test_confirm_answered_no_injects_nothing(app: Scratch, tmp_path: Path) -> None:
    cfg = _config(tmp_path / "web.yaml", app.name)
    before = snapshot(app.name)
    child = pexpect.spawn(AFTERSHOCK, ["run", "--config", str(cfg), "--confirm",
                                       "experiments/test_pod_kill.py"],
                          cwd=str(ROOT), encoding="utf-8", timeout=120, dimensions=(50, 200))
    child.expect(r"would: delete pod\(s\) (\S+) of")
    victim = child.match.group(1)
    child.expect(r"\[y/N\] ")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    shown = child.before or ""
    assert child.exitstatus == 3, shown[-4000:]
    assert snapshot(app.name) == before, "--confirm answered n changed the cluster"
    assert victim in {p["metadata"]["name"] for p in app.pods("app.kubernetes.io/name=web")}
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    [entry] = [e for e in results["experiments"] if e["name"] == "pod-kill"]
    assert entry["verdict"] == "inconclusive", entry
    assert "skipped by the operator" in entry["reason"], entry


def test_confirm_without_a_terminal_is_refused(app: Scratch, tmp_path: Path,
                                               run_aftershock: RunAftershock) -> None:
    cfg = _config(tmp_path / "web.yaml", app.name)
    proc = subprocess.run([AFTERSHOCK, "run", "--config", str(cfg), "--confirm"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60, check=False, cwd=ROOT)
    assert proc.returncode == 2, _show(proc)
    assert "--confirm asks y/N before each experiment, and stdin is not a terminal" \
        in proc.stderr
    assert not (tmp_path / "results").exists()
