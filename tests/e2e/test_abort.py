"""Stop conditions on the testbed: a rollout of an app that drops requests (exit-fast: it
exits on SIGTERM while still in the endpoints) is aborted by a low threshold, its pod
template put back at once, and the result says so with the numbers."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunAftershock, Scratch, kubectl, results_of, write_config

pytestmark = pytest.mark.e2e

DEPLOYMENT = "web-exit-fast"
LOAD = {"rate": 200, "steady_seconds": 6, "after_seconds": 4}
# An env change: the rollback has a template to put back (a restart has none).
ROLLOUT = {"rollout": {"mode": "env", "env": {"AFTERSHOCK_ABORT_E2E": "1"}}}


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n" \
           f"{proc.stderr[-4000:]}"


def _containers(scratch: Scratch) -> Any:
    return scratch.get("deployment", DEPLOYMENT)["spec"]["template"]["spec"]["containers"]


def test_a_rollout_that_drops_requests_is_aborted_and_rolled_back(
        scratch: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    scratch.apply("variants/exit-fast")
    before = _containers(scratch)
    # Any failed request aborts, once the window holds 20 requests (100 ms of load).
    cfg = write_config(tmp_path / "abort.yaml", scratch.name, DEPLOYMENT, load=LOAD,
                       faults={**ROLLOUT, "recovery_timeout_s": 120},
                       abort={"max_error_rate": 0, "window_s": 5, "min_requests": 20})
    proc = run_aftershock("run", "--config", str(cfg), "experiments/test_rolling_update.py")
    assert proc.returncode == 1, _show(proc)
    exp = results_of(cfg)["experiments"][0]
    aborted = exp["aborted"]
    assert aborted is not None, exp["message"]
    assert exp["verdict"] == "fail"
    assert aborted["condition"] == "abort.max_error_rate" and aborted["limit"] == 0
    assert aborted["measured"] > 0 and aborted["at_s"] > 0
    assert aborted["reason"].startswith(f"aborted at +{aborted['at_s']:.1f} s: ")
    assert "of requests failed over" in aborted["reason"]
    assert exp["violations"][0]["threshold"] == "abort.max_error_rate"
    assert aborted["reason"] in exp["message"]
    # Stopped at once: the fault ended when the breach was found, and rolled back then.
    marks = exp["markers"]
    assert marks["fault_end"] - marks["fault_start"] == pytest.approx(aborted["at_s"], abs=0.5)
    assert exp["actions"][-1] == f"restored the original pod template of deployment " \
                                 f"{DEPLOYMENT}", exp["actions"]
    # The template is back as it was (no AFTERSHOCK_ABORT_E2E), and the Deployment
    # settles on it.
    assert _containers(scratch) == before
    kubectl("rollout", "status", "-n", scratch.name, f"deployment/{DEPLOYMENT}",
            "--timeout=180s", timeout=200)
    print(f"abort e2e: {aborted['reason']}")
