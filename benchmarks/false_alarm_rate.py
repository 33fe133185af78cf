"""False alarms: the demo's experiments against the well-behaved `web`, N times.

`web` (testbed/manifests/web) is built to pass every experiment: a preStop sleep,
readiness that follows its dependency, a PDB, an HPA. So every non-pass here is a false
alarm of the suite (or a real flaw of the app or the testbed) until explained. Runs
``aftershock run --config examples/demo.yaml`` (what ``make demo`` runs) N times, each
into its own results directory, and prints per experiment the pass rate and every
non-pass with its reason, read from each run's results.json (the posture section
included: its failing findings or its inconclusive reason).

Needs the testbed up (make testbed-up) and holds it for about five minutes a run: on a
shared testbed, run it under the lock, e.g.

    flock /work/helpers/testbed.lock .venv/bin/python benchmarks/false_alarm_rate.py -n 10

It deploys the demo app as ``make demo`` does (namespace, ``kubectl apply -k``, rollout
status), without touching the testbed itself. Exit 0 when every experiment passed every
run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "demo.yaml"
NAMESPACE = "aftershock-demo"  # examples/demo.yaml's target.namespace (demo.mk's DEMO_NS)
KUBECTL = [str(ROOT / ".testbed" / "kubectl"), "--kubeconfig", str(ROOT / ".testbed" /
                                                                    "kubeconfig")]
AFTERSHOCK = str(Path(sys.executable).parent / "aftershock")


def deploy_demo_app() -> None:
    """demo.mk's demo-app, without its testbed-up."""
    ns = subprocess.run([*KUBECTL, "create", "namespace", NAMESPACE, "--dry-run=client",
                         "-o", "yaml"], check=True, capture_output=True, text=True).stdout
    subprocess.run([*KUBECTL, "apply", "-f", "-"], input=ns, check=True, text=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*KUBECTL, "apply", "-n", NAMESPACE, "-k",
                    str(ROOT / "testbed" / "manifests" / "web")], check=True,
                   stdout=subprocess.DEVNULL)
    for dep in ("dep", "web"):
        subprocess.run([*KUBECTL, "rollout", "status", "-n", NAMESPACE, f"deployment/{dep}",
                        "--timeout=240s"], check=True, stdout=subprocess.DEVNULL)


def outcomes(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(experiment, verdict, reason) for every experiment and the posture section."""
    out = []
    for e in results.get("experiments", []):
        out.append((str(e.get("name")), str(e.get("verdict")), str(e.get("reason") or "")))
    posture = results.get("posture")
    if isinstance(posture, dict):
        failing = [f"{f.get('id')} ({f.get('severity')}): {f.get('message')}"
                   for f in posture.get("findings", []) if f.get("fails")]
        reason = str(posture.get("reason") or "") or "; ".join(failing)
        out.append(("posture", str(posture.get("verdict")), reason))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "results" / "false-alarms"),
                    help="one results directory per run goes under this")
    ap.add_argument("--no-deploy", action="store_true", help="the demo app is already there")
    a = ap.parse_args()
    if not a.no_deploy:
        deploy_demo_app()
    seen: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for i in range(1, a.runs + 1):
        d = Path(a.out) / f"run-{i:02d}"
        t = time.monotonic()
        code = subprocess.run([AFTERSHOCK, "run", "--config", str(CONFIG), "--results", str(d)],
                              cwd=ROOT, stdout=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
        path = d / "results.json"
        if not path.is_file():
            seen["(the run itself)"].append((i, "error", f"exit {code}, no results.json"))
            print(f"run {i}: exit {code} in {time.monotonic() - t:.0f} s, no results.json")
            continue
        rows = outcomes(json.loads(path.read_text()))
        for name, verdict, reason in rows:
            seen[name].append((i, verdict, reason))
        bad = sum(v != "pass" for _, v, _ in rows)
        print(f"run {i}: exit {code} in {time.monotonic() - t:.0f} s, {len(rows)} experiments, "
              f"{bad} not passing ({d})", flush=True)
    print(f"\npass rate per experiment over {a.runs} runs of the demo against `web`:")
    all_pass = True
    for name in sorted(seen):
        runs = seen[name]
        passed = sum(v == "pass" for _, v, _ in runs)
        all_pass &= passed == a.runs
        print(f"  {name}: {passed}/{a.runs} pass")
        for i, verdict, reason in runs:
            if verdict != "pass":
                print(f"      run {i}: {verdict}: {reason}")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
