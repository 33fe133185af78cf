"""A Kubernetes API outage in the middle of a pod kill: seen once, reported, not misread.

kube-apiserver is restarted (``python3 -m tb restart kube-apiserver``) one second into a
pod kill, while the load runs. The API is away for about a minute on 2 cores. The test
polls the API itself to know when it went away and when it answered again, then checks
what the suite recorded:

- the outage is one gap in results.json, and its bounds cover what the poll saw;
- no Event from before the run is on the timeline (a relist returns every stored Event);
- the verdict is pass or inconclusive and names the outage, never a silent pass;
- the watches were listed again within 5 s of the API answering.

It restarts a control-plane component, so it runs late in the e2e tier (files run in
name order; test_zz_testbed_down.py is last) and waits for the nodes to be Ready again
before it ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import AFTERSHOCK, ROOT, Scratch, kubectl, kubectl_json, write_config

pytestmark = pytest.mark.e2e

LOAD = {"rate": 200, "steady_seconds": 8, "after_seconds": 8}
POD_KILL = ["experiments/test_pod_kill.py"]
SELECTOR = "app.kubernetes.io/name=web"
RESUME_WITHIN_S = 5.0
API_BACK_WITHIN_S = 240.0
POLL_S = 0.25


@pytest.fixture(scope="module")
def web(scratch: Scratch) -> Scratch:
    scratch.apply("web")
    return scratch


def _api_answers(namespace: str) -> bool:
    """One list in the namespace, as a watch's relist makes it; True when it succeeded."""
    proc = kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/pods?limit=1",
                   "--request-timeout=2s", check=False, timeout=10)
    return proc.returncode == 0


def _wait_for_kill(web: Scratch, proc: subprocess.Popen[bytes], log: Path) -> float:
    """When a target pod was first seen terminating: the pod kill has begun."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"aftershock ended before the kill:\n{log.read_text()[-4000:]}"
        if any(p["metadata"].get("deletionTimestamp") for p in web.pods(SELECTOR)):
            return time.time()
        time.sleep(POLL_S)
    raise AssertionError(f"no pod was killed within 180 s:\n{log.read_text()[-4000:]}")


def _outage_seen_by_poll(namespace: str) -> tuple[float, float]:
    """(first failed answer, start of the first successful answer after it)."""
    down = None
    deadline = time.monotonic() + API_BACK_WITHIN_S
    while time.monotonic() < deadline:
        asked = time.time()
        ok = _api_answers(namespace)
        if not ok and down is None:
            down = asked
        elif ok and down is not None:
            return down, asked
        time.sleep(POLL_S)
    raise AssertionError(f"the API did not answer again within {API_BACK_WITHIN_S:.0f} s"
                         if down is not None else "the API never went away: no restart?")


def _records(path: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("record") == kind]


def _nodes_ready() -> bool:
    proc = kubectl("get", "nodes", "-o", "json", check=False, timeout=20)
    if proc.returncode != 0:
        return False
    return all(any(c["type"] == "Ready" and c["status"] == "True"
                   for c in n["status"].get("conditions", []))
               for n in json.loads(proc.stdout)["items"])


def test_an_api_restart_mid_pod_kill_is_one_reported_gap_and_no_stale_event(
        web: Scratch, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("restarting kube-apiserver needs root, as `make e2e` runs", pytrace=False)
    stored = kubectl_json("get", "events", "-n", web.name)["items"]
    assert stored, "the namespace has no Events yet: nothing old to be replayed"
    cfg = write_config(tmp_path / "outage.yaml", web.name, "web", load=LOAD,
                       faults={"recovery_timeout_s": 300})
    log = tmp_path / "aftershock.log"
    run_began = time.time()  # every Event of the run happened after this
    with open(log, "w") as out:
        proc = subprocess.Popen([AFTERSHOCK, "run", "--config", str(cfg), *POD_KILL],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    restart: subprocess.Popen[str] | None = None
    try:
        killed = _wait_for_kill(web, proc, log)
        time.sleep(max(0.0, killed + 1.0 - time.time()))
        restarted = time.time()
        restart = subprocess.Popen(["python3", "-m", "tb", "restart", "kube-apiserver"],
                                   cwd=ROOT / "testbed", stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        went_away, answered = _outage_seen_by_poll(web.name)
        restart_out, _ = restart.communicate(timeout=300)
        assert restart.returncode == 0, restart_out
        proc.wait(timeout=600)
    finally:
        for p in (proc, restart):
            if p is not None and p.poll() is None:
                p.kill()
        deadline = time.monotonic() + 180
        while not _nodes_ready() and time.monotonic() < deadline:
            time.sleep(2)
    output = log.read_text()
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    [exp] = [e for e in results["experiments"] if e["name"] == "pod-kill"]
    assert exp["injected"] is True, output[-4000:]

    # One outage, with bounds that cover what the poll saw.
    gaps = [g for g in exp["gaps"] if g["source"] == "kubernetes_api"]
    assert len(gaps) == 1, json.dumps(exp["gaps"], indent=2)
    [gap] = gaps
    assert not gap["open"]
    assert restarted - 3.0 <= gap["start"] <= went_away + 2.0, (restarted, went_away, gap)
    assert gap["end"] >= answered - 3.0, (answered, gap)
    assert gap["message"].startswith("Kubernetes API unreachable +"), gap

    # Recorded once per stream, however many retries: no flood of gap notes.
    timeline = tmp_path / "results" / exp["timeline"]
    stream_gaps = _records(timeline, "watch_gap")
    assert 1 <= len(stream_gaps) <= 7, stream_gaps
    assert len({g["stream"] for g in stream_gaps}) == len(stream_gaps), stream_gaps
    notes = [m for m in _records(timeline, "marker") if "watch gap" in m.get("detail", "")]
    assert notes == [], notes

    # The watches resumed within 5 s of the API answering again.
    resumed = max(g["end"] for g in stream_gaps)
    delay = resumed - answered
    print(f"API away {answered - went_away:.1f} s by the poll (restart at +0.0 s, gone at "
          f"+{went_away - restarted:.1f} s, back at +{answered - restarted:.1f} s); gap "
          f"{gap['duration_ms'] / 1000:.1f} s; watches resumed {delay:+.2f} s after the API "
          f"answered; per stream: "
          + ", ".join(f"{g['stream']} {g['end'] - answered:+.2f} s ({g['attempts']} retries)"
                      for g in stream_gaps))
    assert delay <= RESUME_WITHIN_S, delay

    # No Event from before the run; the run's own Events are there.
    events = _records(timeline, "event")
    assert events, "no Event was recorded: the events watch saw nothing"
    stale = [e for e in events if e.get("happened") is None or e["happened"] < run_began]
    assert stale == [], stale[:5]

    # pass or inconclusive, and either way the outage is named.
    assert exp["verdict"] in ("pass", "inconclusive"), exp["message"]
    assert "Kubernetes API unreachable" in exp["message"], exp["message"]
    if exp["verdict"] == "pass":
        assert "the Kubernetes API was unreachable for" in exp["message"].splitlines()[0]
    assert proc.returncode in (0, 3), output[-4000:]
    assert _nodes_ready(), "the nodes did not become Ready again after the API restart"
    web.wait_rollouts()
