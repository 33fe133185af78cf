"""A team's own experiments (examples/experiments/) on the testbed, through `aftershock run`.

- The sync example deletes the oldest pod with the Kubernetes client; run with
  ``--experiments DIR`` next to the shipped pod kill, in one session, both are judged.
- A SIGTERM while an async fault holds a pod not Ready (a deleted Job) cancels the
  coroutine, runs its undo (the pod is Ready again) and records the run as interrupted.
- The async example calls ``POST /admin/outage?ms=300`` on every pod with httpx from the
  test's event loop: the outage window measured from the load must be the app's 300 ms,
  within 10 ms, and start when the app says it started.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    AFTERSHOCK,
    ROOT,
    RunAftershock,
    Scratch,
    kubectl_json,
    results_of,
    write_config,
)

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "examples" / "experiments"
OUTAGE_MS = 300
WEB = "app.kubernetes.io/name=web"
TOLERANCE_MS = 10


@pytest.fixture(scope="module")
def apps(scratch: Scratch) -> Scratch:
    scratch.apply("web")
    return scratch


def _experiment(results: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in results["experiments"] if e["name"] == name]
    assert len(found) == 1, json.dumps(results, indent=2)[:3000]
    return found[0]


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n" \
           f"{proc.stderr[-4000:]}"


def _by_age(pods: list[dict[str, Any]]) -> list[str]:
    """Running pods, oldest first (ties by name), as both pod kills choose."""
    alive = [p for p in pods if p["status"].get("phase") == "Running"
             and not p["metadata"].get("deletionTimestamp")]
    alive.sort(key=lambda p: (datetime.fromisoformat(p["metadata"]["creationTimestamp"]),
                              p["metadata"]["name"]))
    return [p["metadata"]["name"] for p in alive]


def test_experiments_dir_runs_with_the_shipped_ones_and_deletes_the_oldest_pod(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    # The shipped pod kill takes the oldest pod first (faults.pod_kill.selection); the
    # example then deletes the oldest that is left: the second oldest of the pods now.
    before = _by_age(apps.pods(WEB))
    assert len(before) >= 2, before
    cfg = write_config(tmp_path / "web.yaml", apps.name, "web",
                       load={"rate": 200, "steady_seconds": 8, "after_seconds": 8},
                       faults={"pod_kill": {"selection": "oldest"}})
    proc = run_aftershock("run", "--config", str(cfg), "--experiments", str(EXAMPLES),
                          "-k", "test_pod_kill or test_delete_oldest_pod")
    assert proc.returncode == 0, _show(proc)
    results = results_of(cfg)
    assert {e["name"] for e in results["experiments"]} == {"pod-kill", "delete-oldest-pod"}
    shipped, mine = _experiment(results, "pod-kill"), _experiment(results, "delete-oldest-pod")
    assert shipped["verdict"] == "pass" and shipped["fault"] == "pod_kill", shipped["message"]
    assert mine["verdict"] == "pass", mine["message"]
    assert mine["fault"] == "custom" and mine["injected"] is True
    assert mine["steady_state"] == "pass"
    assert f"deleted the oldest pod, {before[1]}" in mine["actions"], mine["actions"]
    assert before[0] in " ".join(shipped["actions"]), shipped["actions"]
    assert mine["phases"]["during"]["requests"] > 0
    assert all(mine["phases"][p]["errors"] == 0 for p in ("before", "during", "after"))
    left = {p["metadata"]["name"] for p in apps.pods(WEB)}
    assert not left & set(before[:2]), left
    apps.wait_rollouts()


def test_async_admin_outage_on_every_pod_is_measured_to_within_10_ms(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = write_config(tmp_path / "outage.yaml", apps.name, "web",
                       load={"rate": 500, "steady_seconds": 8, "after_seconds": 5})
    proc = run_aftershock("run", "--config", str(cfg), str(EXAMPLES / "test_admin_outage.py"))
    # The default SLO allows no outage window: the 300 ms outage fails the run, with numbers.
    assert proc.returncode == 1, _show(proc)
    exp = _experiment(results_of(cfg), "admin-outage")
    assert exp["verdict"] == "fail" and exp["fault"] == "custom", exp["message"]
    assert any(v["threshold"] == "max_outage_ms" for v in exp["violations"]), exp["violations"]
    # The app's own record of each pod's outage, as the coroutine noted it.
    spans = [(int(a), int(b)) for a, b in
             (re.search(r"outage from (\d+) to (\d+)", x).groups()  # type: ignore[union-attr]
              for x in exp["actions"] if "outage from" in x)]
    pods = len(_by_age(apps.pods(WEB)))
    assert len(spans) == pods, exp["actions"]
    skew_ms = (max(s for s, _ in spans) - min(s for s, _ in spans)) / 1e6
    windows = exp["outages"]
    print(f"outage windows: {[(round(w['duration_ms'], 1), w['phase']) for w in windows]}; "
          f"the {pods} pods' outages started within {skew_ms:.1f} ms of each other")
    assert len(windows) == 1, windows
    window = windows[0]
    assert window["phase"] == "during" and not window["open"], window
    assert abs(window["duration_ms"] - OUTAGE_MS) <= TOLERANCE_MS, window
    # and it is the app's outage: it starts when the first pod's began
    assert abs(window["start"] - min(s for s, _ in spans) / 1e9) * 1000 <= TOLERANCE_MS, \
        (window, spans)


# A fault that holds one pod not Ready until it is undone, and says when it holds.
HOLD = textwrap.dedent("""
    import asyncio
    from pathlib import Path

    import pytest

    from aftershock.custom import CustomFault, serving_pods

    @pytest.mark.asyncio
    @pytest.mark.experiment("unready")
    async def test_unready(arun, http_client):
        held = []

        async def unready(scene):
            held.append(serving_pods(scene)[0])
            answer = await http_client.post(f"{held[0].url}/admin/readiness",
                                             params={"ready": "false"})
            answer.raise_for_status()
            Path(__file__).with_name("holding").write_text(held[0].name)
            await asyncio.sleep(600)

        async def ready_again():
            answer = await http_client.post(f"{held[0].url}/admin/readiness",
                                             params={"ready": "true"})
            answer.raise_for_status()
            return f"{held[0].name}: ready again"

        await arun(CustomFault(unready, ready_again))
""")


def _ready(namespace: str, pod: str) -> bool:
    conditions = kubectl_json("get", "pod", pod, "-n", namespace)["status"]["conditions"]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_sigterm_during_an_async_fault_cancels_it_and_runs_its_undo(
        apps: Scratch, tmp_path: Path) -> None:
    experiment = tmp_path / "mine" / "test_unready.py"
    experiment.parent.mkdir()
    experiment.write_text(HOLD)
    cfg = write_config(tmp_path / "unready.yaml", apps.name, "web",
                       load={"rate": 100, "steady_seconds": 5, "after_seconds": 3})
    proc = subprocess.Popen([AFTERSHOCK, "run", "--config", str(cfg), str(experiment)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    holding = experiment.with_name("holding")
    try:
        deadline = time.monotonic() + 120
        while not holding.exists():
            assert proc.poll() is None, proc.communicate()[0][-4000:]
            assert time.monotonic() < deadline, "the fault was never injected"
            time.sleep(0.2)
        pod = holding.read_text()
        deadline = time.monotonic() + 30
        while _ready(apps.name, pod):  # the kubelet's probe sees it
            assert time.monotonic() < deadline, f"{pod} never turned not Ready"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out[-4000:]  # interrupted: inconclusive
    exp = _experiment(results_of(cfg), "unready")
    assert exp["verdict"] == "inconclusive", exp
    assert str(exp["reason"]).startswith("interrupted before a verdict: Terminated"), exp
    deadline = time.monotonic() + 60
    while not _ready(apps.name, pod):  # undone: the probe passes again
        assert time.monotonic() < deadline, f"{pod} stayed not Ready: the undo did not run"
        time.sleep(0.5)
