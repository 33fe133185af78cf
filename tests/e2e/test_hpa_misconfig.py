"""A target set up wrong is named at once, through the CLI a user runs.

A load path the app answers with 404 measures nothing, so the run is inconclusive and the
reason names the path and the status: for the steady load (no fault injected) and for the
HPA's CPU path (the ramp stops after its first step). An HPA whose maxReplicas is below the
replicas the ramp should bring fails at once, naming maxReplicas, instead of waiting out
the scale-up deadline.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunAftershock, Scratch, kubectl, results_of, write_config

pytestmark = pytest.mark.e2e

LOAD = {"rate": 100, "steady_seconds": 6, "after_seconds": 4}
HPA = ["experiments/test_hpa.py"]
POD_KILL = ["experiments/test_pod_kill.py"]
RAMP = {"rate": 30, "ramp_steps": 2, "step_seconds": 5, "scale_up_deadline_s": 150}


@pytest.fixture(scope="module")
def apps(scratch: Scratch) -> Scratch:
    scratch.apply("web")
    return scratch


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n"
            f"{proc.stderr[-3000:]}")


def _only(results: dict[str, Any]) -> dict[str, Any]:
    [entry] = results["experiments"]
    return dict(entry)


def test_a_steady_path_answering_404_is_inconclusive_and_nothing_is_injected(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "c.yaml", apps.name, "web", load=LOAD)
    cfg.write_text(cfg.read_text().replace("service: web", "service: web\n  paths: [/nope]"))
    proc = run_aftershock("run", "--config", str(cfg), *POD_KILL, timeout=300)
    assert proc.returncode == 3, _show(proc)
    exp = _only(results_of(cfg))
    assert exp["verdict"] == "inconclusive"
    assert exp["reason"].startswith("steady state not met, no fault injected: every request "
                                    "to /nope answered 404"), exp["reason"]
    print(f"\nsteady 404: {exp['reason']}")


def test_a_wrong_hpa_work_path_is_inconclusive_with_the_404(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "h.yaml", apps.name, "web", load=LOAD,
                       hpa=RAMP | {"work_path": "/cpu-heavy"})
    proc = run_aftershock("run", "--config", str(cfg), *HPA, timeout=300)
    assert proc.returncode == 3, _show(proc)
    exp = _only(results_of(cfg))
    assert exp["verdict"] == "inconclusive"
    assert "every request to /cpu-heavy answered 404" in exp["reason"], exp["reason"]
    print(f"\nHPA work path 404: {exp['reason']}")


def test_an_hpa_capped_at_the_current_replicas_fails_at_once_naming_max_replicas(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    kubectl("patch", "hpa", "web", "-n", apps.name, "--type=merge",
            "-p", '{"spec": {"maxReplicas": 3}}')
    cfg = write_config(tmp_path / "m.yaml", apps.name, "web", load=LOAD, hpa=RAMP)
    proc = run_aftershock("run", "--config", str(cfg), *HPA, timeout=300)
    assert proc.returncode == 1, _show(proc)
    exp = _only(results_of(cfg))
    assert exp["verdict"] == "fail"
    assert "its maxReplicas is 3" in exp["message"], exp["message"]
    assert any(v["threshold"] == "hpa.expected_replicas" and v["measured"] == 3
               and v["limit"] == 4 for v in exp["violations"]), exp["violations"]
    during = exp["phases"]["during"]
    took = during["end"] - during["start"]
    assert took <= 10, f"the ramp took {took:.1f} s to fail (limit 10 s)"
    print(f"\nmaxReplicas 3: failed {took:.1f} s after the ramp began: {exp['message']}")
