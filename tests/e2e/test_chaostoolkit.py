"""Chaos Toolkit interop on the testbed, through the real CLIs: ``chaos run`` with the
aftershock control, and ``aftershock run`` with a Chaos Toolkit method as the fault.

With the control, Chaos Toolkit's verdict follows aftershock's: a pod kill of the
well-behaved app completes and passes; a rolling restart of the app that exits at once on
SIGTERM deviates, ``chaos run`` exits non-zero, and results.json lists the outage windows.
As a fault, a method that scales the app's dependency to 0 fails on outages explained by
readiness (the verdict says the pods turned not Ready and left the endpoints), and its
rollback puts the dependency back, also when aftershock is stopped by SIGTERM in the middle
of the method, and the same from inside the Job (``aftershock job run``, the suite's image
built and imported in the same session).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aftershock.checks.explain import READINESS_LEFT
from tests.e2e.conftest import (
    AFTERSHOCK,
    KUBECONFIG,
    ROOT,
    RunAftershock,
    Scratch,
    results_of,
    write_config,
)

pytestmark = pytest.mark.e2e

CHAOS = str(Path(sys.executable).with_name("chaos"))
EXAMPLES = ROOT / "examples" / "chaostoolkit"
LOAD = {"rate": 200, "steady_seconds": 8, "after_seconds": 8}
CHAOSTOOLKIT = ["experiments/test_chaostoolkit.py"]


@pytest.fixture(scope="module")
def apps(scratch: Scratch) -> Scratch:
    scratch.apply("web", "variants/exit-fast")
    return scratch


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n"
            f"{proc.stderr[-6000:]}")


def _experiment(results: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in results["experiments"] if e["name"] == name]
    assert len(found) == 1, json.dumps(results, indent=2)[:3000]
    return dict(found[0])


def _chaos_run(experiment: str, cfg: Path, apps: Scratch, deployment: str
               ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``chaos run`` as a user runs it: aftershock's config from $AFTERSHOCK_CONFIG, the
    target named to the experiment's configuration through the same variables."""
    journal = cfg.parent / "journal.json"
    env = {**os.environ, "AFTERSHOCK_CONFIG": str(cfg), "KUBECONFIG": str(KUBECONFIG),
           "KUBERNETES_VERIFY_SSL": "true", "AFTERSHOCK_TARGET__NAMESPACE": apps.name,
           "AFTERSHOCK_TARGET__DEPLOYMENT": deployment}
    proc = subprocess.run([CHAOS, "--log-file", str(cfg.parent / "chaostoolkit.log"), "run",
                           "--journal-path", str(journal), str(EXAMPLES / experiment)],
                          env=env, cwd=cfg.parent, capture_output=True, text=True,
                          timeout=500, check=False)
    assert journal.is_file(), _show(proc)
    return proc, json.loads(journal.read_text())


def _dep_replicas(apps: Scratch) -> int:
    return int(apps.get("deployment", "dep")["spec"]["replicas"])


def test_chaos_run_pod_kill_of_web_completes_and_passes(apps: Scratch, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "web.yaml", apps.name, "web", load=LOAD)
    proc, journal = _chaos_run("pod-kill.json", cfg, apps, "web")
    assert proc.returncode == 0, _show(proc)
    assert journal["status"] == "completed" and journal["deviated"] is False, _show(proc)
    verdict = journal["aftershock"]
    assert verdict["verdict"] == "pass", verdict
    assert Path(verdict["results"]) == (tmp_path / "results" / "results.json").absolute()
    exp = _experiment(results_of(cfg), verdict["name"])
    assert exp["verdict"] == "pass", exp["message"]
    assert exp["injected"] is True
    assert exp["phases"]["during"]["requests"] > 0
    assert all(exp["phases"][p]["errors"] == 0 for p in ("before", "during", "after"))
    assert any("terminate-one-pod-of-the-target" in str(p.get("activity", {}).get("name"))
               for p in journal["run"]), journal["run"]
    print(f"\nchaos run pod-kill web: {verdict['message']}; "
          f"{exp['phases']['during']['requests']} requests during the method")


def test_chaos_run_rollout_of_exit_fast_deviates_with_outage_windows(
        apps: Scratch, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "exit-fast.yaml", apps.name, "web-exit-fast", load=LOAD)
    proc, journal = _chaos_run("rollout.json", cfg, apps, "web-exit-fast")
    assert proc.returncode != 0, _show(proc)
    assert journal["deviated"] is True, _show(proc)
    verdict = journal["aftershock"]
    assert verdict["verdict"] == "fail" and verdict["outages"], verdict
    exp = _experiment(results_of(cfg), verdict["name"])
    assert exp["verdict"] == "fail"
    assert exp["outages"], exp["message"]
    assert any(v["threshold"] in ("max_outage_ms", "max_error_rate")
               for v in exp["violations"]), exp["violations"]
    longest = max(o["duration_ms"] for o in exp["outages"])
    print(f"\nchaos run rollout exit-fast: {len(exp['outages'])} outage windows, longest "
          f"{longest:.0f} ms; {verdict['message']}")


def _ctk_config(tmp_path: Path, apps: Scratch, name: str) -> Path:
    # A new connection per request, as the probe experiments send: a kept-alive connection
    # stays with its pod whatever readiness says, which would hide the readiness behaviour.
    return write_config(tmp_path / name, apps.name, "web",
                        load={**LOAD, "new_connections": True},
                        faults={"chaostoolkit": {
                            "experiment": str(EXAMPLES / "scale-dep-to-0.json")}})


def _assert_names_readiness(exp: dict[str, Any], results: Path) -> None:
    """The verdict names the readiness behaviour: the longest outage is a pod that turned
    not Ready and left the endpoints, and so says the message; every other explained one
    is that too, or connects no host took after the endpoints came back from none, which
    are named as that return (kube-proxy's stale NAT, kubernetes#48719: a race of its rule
    commits that a run may or may not lose). On the timeline pods turned not Ready while
    none of them was deleted."""
    explained = [o for o in exp["outages"] if o["cause"]]
    longest = max(exp["outages"], key=lambda o: o["duration_ms"])
    assert longest["cause"] and longest["cause"]["what"] == READINESS_LEFT, exp["outages"]
    assert all(o["cause"]["what"] == READINESS_LEFT
               or (o["cause"]["kind"] == "endpoints_returned"
                   and set(o["errors_by_kind"]) <= {"connect_timeout", "unreachable"})
               for o in explained), exp["outages"]
    assert READINESS_LEFT in exp["message"], exp["message"]
    pods = [json.loads(line) for line in (results / exp["timeline"])
            .read_text().splitlines() if line.startswith('{"record": "pod"')]
    assert any(not p["ready"] and not p["deleting"] for p in pods), "no pod turned not Ready"
    assert not any(p["deleting"] or p["gone"] for p in pods), "a pod was deleted"


def test_aftershock_run_with_a_chaos_toolkit_method_names_readiness_and_rolls_back(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    assert _dep_replicas(apps) == 2
    cfg = _ctk_config(tmp_path, apps, "dep.yaml")
    proc = run_aftershock("run", "--config", str(cfg), *CHAOSTOOLKIT, timeout=500)
    assert _dep_replicas(apps) == 2, "the Chaos Toolkit rollback did not restore dep"
    exp = _experiment(results_of(cfg), "chaostoolkit")
    assert proc.returncode == 1, _show(proc)
    assert exp["verdict"] == "fail", exp["message"]
    assert exp["outages"], exp["message"]
    # Readiness, not termination: the outage is explained by pods leaving the endpoints,
    # and on the timeline they turned not Ready while none of them was deleted.
    causes = [o["cause"] for o in exp["outages"] if o["cause"]]
    assert causes and all(c["kind"] == "left_endpoints" for c in causes), exp["outages"]
    explained = [o["explanation"] for o in exp["outages"]]
    _assert_names_readiness(exp, cfg.parent / "results")
    assert any(a.startswith("Chaos Toolkit method: scale-dep-to-0 succeeded")
               for a in exp["actions"]), exp["actions"]
    assert [a for a in exp["actions"] if "scale-dep-back-to-2 succeeded" in a] == [
        "Chaos Toolkit rollbacks: scale-dep-back-to-2 succeeded",
        "nothing more to restore: the Chaos Toolkit rollbacks already ran "
        "(scale-dep-back-to-2 succeeded)"], exp["actions"]
    print(f"\naftershock run with scale-dep-to-0: {exp['message'].splitlines()[0]}; "
          f"explained: {explained[0]}")


def test_sigterm_mid_method_still_runs_the_rollback(apps: Scratch, tmp_path: Path) -> None:
    assert _dep_replicas(apps) == 2
    cfg = _ctk_config(tmp_path, apps, "sigterm.yaml")
    proc = subprocess.Popen([AFTERSHOCK, "run", "--config", str(cfg), *CHAOSTOOLKIT],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while _dep_replicas(apps) != 0:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the method never scaled dep to 0"
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _dep_replicas(apps) == 2, out[-4000:]
    assert proc.returncode != 0, out[-4000:]
    exp = _experiment(results_of(cfg), "chaostoolkit")
    assert exp["verdict"] == "inconclusive", exp
    print(f"\nSIGTERM mid-method: dep back to {_dep_replicas(apps)}; {exp['message']}")


def test_job_run_with_a_chaos_toolkit_method_names_readiness_and_restores_dep(
        apps: Scratch, tmp_path: Path, run_aftershock: RunAftershock, suite_image: str) -> None:
    """The same from inside the Job: the experiment travels in the ConfigMap, and the
    method runs with the pod's service account, TLS verified."""
    assert _dep_replicas(apps) == 2
    cfg = _ctk_config(tmp_path, apps, "job.yaml")
    t0 = time.monotonic()
    proc = run_aftershock("job", "run", "--config", str(cfg), "--image", suite_image,
                          *CHAOSTOOLKIT, timeout=600)
    assert _dep_replicas(apps) == 2, "the Chaos Toolkit rollback did not restore dep"
    assert "the experiment travels in the ConfigMap (chaostoolkit-experiment.json)" \
        in proc.stderr, _show(proc)
    assert proc.returncode == 1, _show(proc)
    results = cfg.parent / "results"
    exp = _experiment(results_of(cfg), "chaostoolkit")
    assert exp["verdict"] == "fail", exp["message"]
    assert exp["outages"], exp["message"]
    _assert_names_readiness(exp, results)
    assert any(a.startswith("Chaos Toolkit method: scale-dep-to-0 succeeded")
               for a in exp["actions"]), exp["actions"]
    assert "Chaos Toolkit rollbacks: scale-dep-back-to-2 succeeded" in exp["actions"]
    # chaosk8s in the pod: in-cluster credentials, and TLS verified (urllib3 warns on every
    # unverified request).
    method_out = (results / "chaostoolkit" / "chaostoolkit" / "method-journal.out").read_text()
    assert "InsecureRequestWarning" not in method_out, method_out[-3000:]
    print(f"\njob run with scale-dep-to-0: {time.monotonic() - t0:.0f} s; "
          f"{exp['message'].splitlines()[0]}")
