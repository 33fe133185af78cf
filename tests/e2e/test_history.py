"""The run history on the testbed: five pod-kill runs of the well-behaved ``web`` seed it,
then a release of web whose pods start 12 s slower (STARTUP_DELAY 2 s -> 14 s) fails as
regressed on its recovery, naming the measured figure and the learned limit, though it
stays within the static SLO. (A release that exits at once on SIGTERM regresses only when
it loses the race with kube-proxy, which it did not in CI: slow start-up is deterministic.)

The seed runs write a SQLite store; ``aftershock history import`` seeds a private
PostgreSQL from the same runs' results directories, and the slow release judged against
PostgreSQL gives the same verdict. Two runs finishing together both land in PostgreSQL.
One set of seed runs and one slow release serve both stores.

Short phases (config overrides) keep each run to some 20 s.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    AFTERSHOCK,
    ROOT,
    RunAftershock,
    Scratch,
    aftershock_cli,
    kubectl,
    results_of,
    write_config,
)
from tests.pg_cluster import private_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# A new connection per request, as a user's clients would open: the seeds' figures then
# include what each new connection meets while a pod leaves.
LOAD = {"rate": 200, "steady_seconds": 4, "after_seconds": 4, "new_connections": True}
CEILING = {"max_outage_ms": 10000, "max_error_rate": 0.5}
POD_KILL = ["experiments/test_pod_kill.py"]
# A static ceiling generous enough that only the learned limits can fail these runs.
SLO = {"during": CEILING, "after": CEILING,
       "learn": {"runs": 20, "min_runs": 5, "quantile": 0.99, "margin": 1.2, "floor_ms": 50}}
SEED_RUNS = 5
USUAL_STARTUP, SLOW_STARTUP = "2s", "14s"  # web's manifest has 2s


@pytest.fixture(scope="module")
def apps(scratch: Scratch) -> Scratch:
    scratch.apply("web")
    return scratch


@contextlib.contextmanager
def _slow_release(apps: Scratch) -> Iterator[None]:
    """web released with a start-up 12 s slower; the usual release again afterwards."""
    def release(delay: str) -> None:
        kubectl("set", "env", "-n", apps.name, "deployment/web", f"STARTUP_DELAY={delay}")
        kubectl("rollout", "status", "-n", apps.name, "deployment/web", "--timeout=300s",
                timeout=330)

    release(SLOW_STARTUP)
    try:
        yield
    finally:
        release(USUAL_STARTUP)


def _config(path: Path, apps: Scratch, deployment: str, history: dict[str, Any]) -> Path:
    return write_config(path, apps.name, deployment, load=LOAD, slo=SLO,
                        history={"target": "shop", "profile": "e2e", **history})


def _pod_kill(proc: subprocess.CompletedProcess[str], cfg: Path) -> dict[str, Any]:
    found = [e for e in results_of(cfg)["experiments"] if e["name"] == "pod-kill"]
    assert len(found) == 1, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n" \
                            f"{proc.stderr[-3000:]}"
    return found[0]


@dataclass(frozen=True)
class Seeds:
    """The seed runs: the SQLite store they wrote and their results directories."""

    store: Path
    results: list[Path]


@pytest.fixture(scope="module")
def seeds(apps: Scratch, tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    tmp = tmp_path_factory.mktemp("seeds")
    store = tmp / "history.sqlite"
    history = {"path": str(store)}
    results = []
    for i in range(SEED_RUNS):
        (tmp / f"web-{i}").mkdir()
        cfg = _config(tmp / f"web-{i}" / "c.yaml", apps, "web", history)
        proc = aftershock_cli("run", "--config", str(cfg), *POD_KILL)
        exp = _pod_kill(proc, cfg)
        assert proc.returncode == 0 and exp["verdict"] == "pass", exp["message"]
        assert exp["learned"]["used"] is False
        # The first finds no history at all; the others too few runs in it.
        assert exp["learned"]["note"].startswith(
            "static SLO alone: " + (f"{i} usable past run" if i else "")), exp["learned"]
        print(f"seed {i + 1}: {exp['message'].splitlines()[0]}")
        results.append(cfg.parent / "results")
    return Seeds(store, results)


@pytest.fixture(scope="module")
def slow_web(apps: Scratch, seeds: Seeds) -> Iterator[Scratch]:
    """web released slow once the seeds are in (hence ``seeds``), for every test after."""
    with _slow_release(apps):
        yield apps


def _regressed(exp: dict[str, Any]) -> str:
    assert exp["verdict"] == "fail", exp["message"]
    assert exp["learned"]["used"] is True and exp["learned"]["usable_runs"] == SEED_RUNS
    # Within the static ceiling: the learned limits alone failed it.
    assert all(v["measured"] <= CEILING.get(v["threshold"], float("inf"))
               for v in exp["violations"]), exp["violations"]
    headline = exp["message"].splitlines()[0]
    assert headline.startswith("fail: regressed: "), headline
    assert f"of {SEED_RUNS} runs \N{MULTIPLICATION SIGN} 1.2" in headline, headline
    assert "learned limit" in headline
    for v in exp["violations"]:  # each names the measured figure and the learned limit
        assert v["measured"] > v["limit"]
    return headline


def test_a_regressed_release_fails_against_the_history_on_sqlite(
        seeds: Seeds, slow_web: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    cfg = _config(tmp_path / "c.yaml", slow_web, "web", {"path": str(seeds.store)})
    proc = run_aftershock("run", "--config", str(cfg), *POD_KILL)
    assert proc.returncode == 1, proc.stderr[-3000:]
    headline = _regressed(_pod_kill(proc, cfg))
    print(f"the slow release against the SQLite history: {headline}")
    trend = run_aftershock("history", "--store", str(seeds.store), "--experiment", "pod-kill")
    assert trend.returncode == 0, trend.stderr
    lines = trend.stdout.splitlines()
    assert lines[0] == "pod-kill  (target shop, profile e2e)"
    assert [ln.split()[2] for ln in lines[2:]] == ["pass"] * SEED_RUNS + ["fail"]
    print(trend.stdout)


def test_the_same_runs_imported_into_postgresql_and_two_runs_finishing_together(
        seeds: Seeds, slow_web: Scratch, tmp_path: Path, run_aftershock: RunAftershock) -> None:
    with private_cluster() as pg:
        url = pg.fresh_database()
        history = {"url": url}
        imported = run_aftershock("history", "import", *map(str, seeds.results),
                                  "--store", url)
        assert imported.returncode == 0, imported.stderr[-3000:]
        assert f"{SEED_RUNS} of {SEED_RUNS} runs added" in imported.stdout, imported.stdout
        (tmp_path / "slow").mkdir()
        cfg = _config(tmp_path / "slow" / "c.yaml", slow_web, "web", history)
        proc = run_aftershock("run", "--config", str(cfg), *POD_KILL)
        assert proc.returncode == 1, proc.stderr[-3000:]
        headline = _regressed(_pod_kill(proc, cfg))
        print(f"the slow release against the PostgreSQL history: {headline}")
        # Two runs finishing together: both land, each with the verdict it reported (two
        # loads at once may slow the app beyond its usual p99: the verdicts are not the
        # point here, the writes are).
        procs = {}
        for name in ("together-1", "together-2"):
            (tmp_path / name).mkdir()
            c = _config(tmp_path / name / "c.yaml", slow_web, "web", history)
            procs[name] = (c, subprocess.Popen(
                [AFTERSHOCK, "run", "--config", str(c), *POD_KILL], cwd=ROOT, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        reported = []
        for c, p in procs.values():
            out, err = p.communicate(timeout=600)
            exp = _pod_kill(subprocess.CompletedProcess(p.args, p.returncode, out, err), c)
            assert "the run history was not written" not in err, err[-3000:]
            reported.append(exp["verdict"])
        trend = run_aftershock("history", "--store", url, "--experiment", "pod-kill",
                               "--last", "100")
        assert trend.returncode == 0, trend.stderr
        verdicts = [ln.split()[2] for ln in trend.stdout.splitlines()[2:]]
        assert verdicts[:SEED_RUNS + 1] == ["pass"] * SEED_RUNS + ["fail"], trend.stdout
        assert sorted(verdicts[SEED_RUNS + 1:]) == sorted(reported), trend.stdout
        print(trend.stdout)
        print(json.dumps(results_of(cfg).get("history"), indent=2))
