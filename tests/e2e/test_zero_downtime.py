"""Pod kill and rolling update on the testbed, through the CLI a user runs.

The well-behaved app must pass with zero failed requests; each defective variant must
fail on the check that names its defect; a failing target gets no fault at all; and a
SIGTERM in the middle of a fault leaves nothing behind.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    AFTERSHOCK,
    ROOT,
    RunAftershock,
    Scratch,
    kubectl,
    results_of,
    write_config,
)

pytestmark = pytest.mark.e2e

LOAD = {"rate": 200, "steady_seconds": 8, "after_seconds": 8}
POD_KILL = ["experiments/test_pod_kill.py"]
ROLLING = ["experiments/test_rolling_update.py"]


@pytest.fixture(scope="module")
def apps(scratch: Scratch) -> Scratch:
    scratch.apply("web", "variants/exit-fast", "variants/single-replica", "variants/failing")
    return scratch


def _experiment(results: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in results["experiments"] if e["name"] == name]
    assert len(found) == 1, json.dumps(results, indent=2)[:3000]
    return found[0]


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n" \
           f"{proc.stderr[-4000:]}"


def test_well_behaved_app_survives_pod_kill_and_rolling_restart(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "web.yaml", apps.name, "web", load=LOAD)
    proc = run_aftershock("run", "--config", str(cfg), *POD_KILL, *ROLLING)
    assert proc.returncode == 0, _show(proc)
    results = results_of(cfg)
    for name in ("pod-kill", "rolling-update"):
        exp = _experiment(results, name)
        assert exp["verdict"] == "pass", exp["message"]
        assert exp["injected"] is True
        phases = exp["phases"]
        assert all(phases[p]["errors"] == 0 for p in ("before", "during", "after")), phases
        assert phases["during"]["requests"] > 0
        assert exp["outages"] == []
    assert (Path(cfg.parent / "results" / "junit.xml")).is_file()


def test_exit_at_once_without_prestop_fails_the_rolling_update(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "exit-fast.yaml", apps.name, "web-exit-fast", load=LOAD)
    proc = run_aftershock("run", "--config", str(cfg), *ROLLING)
    assert proc.returncode == 1, _show(proc)
    exp = _experiment(results_of(cfg), "rolling-update")
    assert exp["verdict"] == "fail"
    assert exp["outages"], exp["message"]
    assert any(v["threshold"] in ("max_outage_ms", "max_error_rate")
               for v in exp["violations"]), exp["violations"]
    longest = max(o["duration_ms"] for o in exp["outages"])
    print(f"exit-fast rolling update: {len(exp['outages'])} outage windows, longest "
          f"{longest:.0f} ms; {exp['message'].splitlines()[0]}")


def test_single_replica_fails_pod_kill_with_its_outage_measured(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    # A crash, not a polite delete: with its own grace period the lone pod keeps serving
    # (kube-proxy falls back to terminating endpoints) until its replacement is ready, so
    # only grace 0 exposes the missing redundancy.
    cfg = write_config(tmp_path / "single.yaml", apps.name, "web-single", load=LOAD,
                       faults={"pod_kill": {"grace": 0}})
    proc = run_aftershock("run", "--config", str(cfg), *POD_KILL)
    assert proc.returncode == 1, _show(proc)
    exp = _experiment(results_of(cfg), "pod-kill")
    assert exp["verdict"] == "fail"
    longest = max(o["duration_ms"] for o in exp["outages"])
    # Nothing serves until the replacement is ready, which takes at least its 2 s startup.
    assert longest >= 1000, exp["outages"]
    print(f"single replica pod kill (grace 0): {len(exp['outages'])} outage windows, longest "
          f"{longest:.0f} ms; {exp['message'].splitlines()[0]}")


def test_failing_target_is_inconclusive_and_untouched(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    before = {p["metadata"]["uid"] for p in apps.pods("app.kubernetes.io/name=web-failing")}
    generation = apps.get("deployment", "web-failing")["metadata"]["generation"]
    cfg = write_config(tmp_path / "failing.yaml", apps.name, "web-failing", load=LOAD)
    proc = run_aftershock("run", "--config", str(cfg), *POD_KILL, *ROLLING)
    assert proc.returncode == 3, _show(proc)
    results = results_of(cfg)
    for name in ("pod-kill", "rolling-update"):
        exp = _experiment(results, name)
        assert exp["verdict"] == "inconclusive"
        assert "steady state" in exp["reason"]
    after = {p["metadata"]["uid"] for p in apps.pods("app.kubernetes.io/name=web-failing")}
    assert after == before, "a pod of the failing target was replaced: a fault was injected"
    assert apps.get("deployment", "web-failing")["metadata"]["generation"] == generation


def _template_env(apps: Scratch, deployment: str) -> dict[str, str]:
    dep = apps.get("deployment", deployment)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def _processes_with_env(needle: str) -> list[int]:
    """Pids whose environment mentions ``needle`` (the load's records dir is passed so)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_sigterm_mid_fault_restores_the_deployment_and_stops_the_load(
        apps: Scratch, tmp_path: Path) -> None:
    original = _template_env(apps, "web")
    cfg = write_config(tmp_path / "sigterm.yaml", apps.name, "web", load=LOAD,
                       faults={"rollout": {"mode": "env", "env": {"AFTERSHOCK_PROBE": "1"}}})
    proc = subprocess.Popen([AFTERSHOCK, "run", "--config", str(cfg), *ROLLING], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while "AFTERSHOCK_PROBE" not in _template_env(apps, "web"):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the fault was never injected"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _template_env(apps, "web") == original, out[-4000:]
    assert _processes_with_env(str(tmp_path)) == [], "load processes were left running"
    assert proc.returncode != 0
    results = results_of(cfg)
    timeline = Path(cfg.parent / "results") / _experiment(results, "rolling-update")["timeline"]
    markers = [json.loads(line) for line in timeline.read_text().splitlines()
               if '"rollback_end"' in line]
    assert markers, "the rollback was not recorded on the timeline"
    kubectl("rollout", "status", "-n", apps.name, "deployment/web", "--timeout=180s",
            timeout=200)
