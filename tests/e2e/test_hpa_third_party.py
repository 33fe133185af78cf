"""The HPA experiment against a third-party app with no CPU-heavy path: go-httpbin, deployed from
its own manifest (testbed/thirdparty/httpbin/deploy) and given an HPA a team could run.

No ``hpa.work_path``: the ramp sends the steady load's own requests (GET /) at a multiple of
its rate, sized from the CPU per request the steady phase measured through metrics.k8s.io
and the HPA's target. The HPA's scale-down stabilization window is 15 s, within
``hpa.scale_down_max_wait_s``, so the experiment also waits for the replicas to come back
down and judges the requests while the extra pod leaves. One run; its result is checked for
the scale-up, the scale-down, no failed request in any phase, and the sizing it reports.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from tests.e2e.conftest import (
    AFTERSHOCK,
    ROOT,
    Scratch,
    kubectl,
    kubectl_json,
    results_of,
    write_config,
)

pytestmark = pytest.mark.e2e

DEPLOY = ROOT / "testbed" / "thirdparty" / "httpbin" / "deploy"
# 2 -> 3 replicas. 40m requested at a 50 % target: 20m per pod. A few req/s of GET / cost a
# few millicores, well below it, so the HPA stays at 2 until the ramp.
HPA_PATCH = {"spec": {"minReplicas": 2, "maxReplicas": 3, "metrics": [
    {"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 50}}}],
    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 15,
                               "policies": [{"type": "Pods", "value": 1,
                                             "periodSeconds": 15}]}}}}
RESOURCES = [{"op": "replace", "path": "/spec/template/spec/containers/0/resources",
              "value": {"requests": {"cpu": "40m", "memory": "32Mi"}}}]
LOAD = {"rate": 20, "steady_seconds": 20, "after_seconds": 5}
RAMP = {"ramp_steps": 2, "step_seconds": 10, "scale_up_deadline_s": 120}


def _hpa_metric(ns: str, timeout_s: float = 150) -> None:
    """Until the HPA has computed its CPU metric at its minimum: metrics-server knows the pods."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = kubectl_json("get", "hpa", "httpbin", "-n", ns).get("status", {})
        if status.get("desiredReplicas") == 2 and status.get("currentReplicas") == 2 and any(
                m.get("resource", {}).get("current", {}).get("averageUtilization") is not None
                for m in status.get("currentMetrics") or []):
            return
        time.sleep(3)
    raise AssertionError(f"HPA httpbin never settled at 2 replicas with its CPU metric within "
                         f"{timeout_s:.0f} s: {status}")


@pytest.fixture(scope="module")
def httpbin(scratch: Scratch) -> Scratch:
    kubectl("apply", "-n", scratch.name, "-k", str(DEPLOY))
    kubectl("patch", "deployment", "httpbin", "-n", scratch.name, "--type=json",
            "-p", json.dumps(RESOURCES))
    kubectl("patch", "hpa", "httpbin", "-n", scratch.name, "--type=merge",
            "-p", json.dumps(HPA_PATCH))
    kubectl("scale", "deployment", "httpbin", "-n", scratch.name, "--replicas=2")
    scratch.wait_rollouts()
    _hpa_metric(scratch.name)
    return scratch


@pytest.fixture(scope="module")
def result(httpbin: Scratch, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cfg = write_config(tmp_path_factory.mktemp("hpa") / "c.yaml", httpbin.name, "httpbin",
                       load=LOAD, hpa=RAMP)
    started = time.monotonic()
    proc = subprocess.run(
        [AFTERSHOCK, "run", "--config", str(cfg),
         "experiments/test_hpa.py"], capture_output=True, text=True, timeout=400,
        check=False, cwd=ROOT)
    took = time.monotonic() - started
    show = (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n"
            f"{proc.stderr[-3000:]}")
    [entry] = results_of(cfg)["experiments"]
    return {"proc": proc, "show": show, "entry": entry, "took": took}


def test_the_generic_ramp_scales_httpbin_up_and_back_down_with_no_failed_request(
        result: dict[str, Any]) -> None:
    e, show = result["entry"], result["show"]
    assert result["proc"].returncode == 0, show
    assert e["verdict"] == "pass", (e.get("message"), e.get("reason"), show)
    m = e["check"]["measurements"]
    assert m["start_replicas"] == 2 and m["expected_replicas"] == 3
    assert m["peak_ready_replicas"] >= 3 and m["scale_up_s"] is not None
    assert m["scale_down_s"] is not None, e["check"]["findings"]
    assert m["scale_down_wait_s"] == 105  # the 15 s window plus 90 s of slack
    for phase in ("before", "during", "after"):
        assert e["phases"][phase]["errors"] == 0, e["phases"]
        assert e["phases"][phase]["requests"] > 0, e["phases"]
    print(f"\nHPA httpbin (generic ramp): {m['ramp_load']}\n"
          f"2 -> {m['peak_ready_replicas']} ready after {m['scale_up_s']} s, back to 2 "
          f"{m['scale_down_s']} s after the ramp; requests before/during/after "
          + "/".join(str(e["phases"][p]["requests"]) for p in ("before", "during", "after"))
          + f", 0 failed; whole run {result['took']:.0f} s")


def test_the_result_says_how_the_ramp_was_sized(result: dict[str, Any]) -> None:
    e = result["entry"]
    load = e["check"]["measurements"]["ramp_load"]
    assert load.startswith("the ramp adds up to "), load
    assert "ms of CPU per request" in load and "metrics.k8s.io" in load, load
    assert "50 % of 40m requested = 20m per pod" in load, load
    assert "hpa.max_rate" in load, load
    assert e["check"]["findings"][0] == load
