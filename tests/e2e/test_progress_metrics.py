"""Live progress and dashboard outputs of a real `aftershock run` on the testbed: a pod kill
watched from a pseudo-terminal (the live line moves during the run), the same through a pipe
(one timestamped line per change, none swallowed by pytest's capture), metrics.prom and
annotations.json written, and the metrics pushed to a real Pushgateway and read back."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from itertools import pairwise
from pathlib import Path

import pexpect
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.e2e.conftest import AFTERSHOCK, ROOT, Scratch, results_of, write_config
from tests.unit.pushgateway_server import pushed, running_pushgateway

pytestmark = pytest.mark.e2e

LOAD = {"rate": 100, "steady_seconds": 6, "after_seconds": 6}
POD_KILL = ["experiments/test_pod_kill.py"]
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[aftershock\] "
ENV = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"}


@pytest.fixture(scope="module")
def app(scratch: Scratch) -> Scratch:
    scratch.apply("web")
    return scratch


def test_at_a_terminal_the_live_line_moves_and_the_metrics_reach_the_gateway(
        app: Scratch, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "web.yaml", app.name, "web", load=LOAD)
    with running_pushgateway(tmp_path) as gateway:
        child = pexpect.spawn(AFTERSHOCK, ["run", "--config", str(cfg), "--push-gateway",
                                           gateway, *POD_KILL],
                              cwd=str(ROOT), env=ENV, encoding="utf-8", dimensions=(50, 200),
                              timeout=300)
        child.logfile_read = shown = io.StringIO()
        seen = []
        for _ in range(3):
            child.expect(r"pod-kill: steady state (\d+)/6 s, (\d+) req/s")
            seen.append(int(child.match.group(1)))
        assert len(set(seen)) >= 2 and seen == sorted(seen), seen
        child.expect(r"pod-kill: fault \d+/\d+ s")
        child.expect(r"\[aftershock\] pod-kill: killed ")
        child.expect(r"pod-kill: after the fault \d+/6 s")
        child.expect(r"pod-kill: done \(pass\)")
        child.expect(r"pushed the metrics to ")
        child.expect(pexpect.EOF)
        child.close()
        text = shown.getvalue()
        assert child.exitstatus == 0, text[-4000:]
        assert text.count("\x1b[2K") >= 10  # redrawn in place
        got = pushed(gateway)
    states = {m["labels"]["aftershock_verdict"]: float(m["value"])
              for m in got["aftershock_verdict"] if m["labels"]["experiment"] == "pod-kill"}
    assert states == {"pass": 1.0, "fail": 0.0, "inconclusive": 0.0}
    [requests] = [m for m in got["aftershock_requests"]
                  if m["labels"]["experiment"] == "pod-kill"]
    assert requests["labels"]["namespace"] == app.name
    assert requests["labels"]["deployment"] == "web"
    assert requests["labels"]["fault"] == "pod_kill"
    results = results_of(cfg)
    [entry] = [e for e in results["experiments"] if e["name"] == "pod-kill"]
    assert float(requests["value"]) == entry["load"]["requests"] > 0


def test_through_a_pipe_each_change_is_one_line_and_the_dashboard_files_are_written(
        app: Scratch, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "web.yaml", app.name, "web", load=LOAD)
    proc = subprocess.run([AFTERSHOCK, "run", "--config", str(cfg), *POD_KILL], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    ours = [re.sub(STAMP, "", x) for x in proc.stdout.splitlines() if re.match(STAMP, x)]
    assert "\x1b[" not in proc.stdout
    assert ours[0].startswith("pod-kill: watching "), ours
    assert all(a != b for a, b in pairwise(ours)), ours
    stages = [m.group(1) for x in ours if (m := re.match(
        r"pod-kill: (steady state|fault|recovery|after the fault|done)[ ,]", x))]
    # Each stage begins with a line; then only changes (the fault's words, a new outage).
    firsts = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    assert firsts[0] == "steady state" and firsts[-1] == "done", ours
    assert "fault" in firsts and "after the fault" in firsts, ours
    assert len(ours) < 25, ours  # a minute of run, not a line per tick
    assert any(x.startswith("pod-kill: fault") and "killed " in x for x in ours), ours
    assert ours[-1].startswith("pod-kill: done (pass)"), ours

    results_dir = cfg.parent / "results"
    entry = next(e for e in results_of(cfg)["experiments"] if e["name"] == "pod-kill")
    prom = (results_dir / "metrics.prom").read_text()
    samples = {(s.name, s.labels.get("aftershock_verdict", "")): s.value
               for f in text_string_to_metric_families(prom) for s in f.samples
               if s.labels.get("experiment") == "pod-kill"}
    assert samples[("aftershock_verdict", "pass")] == 1.0
    assert samples[("aftershock_requests", "")] == entry["load"]["requests"]
    notes = json.loads((results_dir / "annotations.json").read_text())
    [span] = [n for n in notes if "fault" in n["tags"] and "(pod-kill)" in n["text"]]
    assert span["time"] == round(entry["markers"]["fault_start"] * 1000)
    assert span["timeEnd"] == round(entry["markers"]["fault_end"] * 1000)
    assert len([n for n in notes if "outage" in n["tags"]]) == len(entry["outages"])
