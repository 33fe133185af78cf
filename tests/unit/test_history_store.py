"""The history store on SQLite (here) and on a real PostgreSQL (tests/e2e/test_history_pg.py
collects these same tests with its own ``store_url``): migrations, writes, concurrent
writers, the learning query, the session hooks and ``aftershock history``."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from aftershock import cli
from aftershock.checks.learn import Key
from aftershock.checks.slo import SLO, PhaseSLO
from aftershock.checks.verdict import evaluate
from aftershock.conclusion import Check, Conclusion
from aftershock.config import Config
from aftershock.experiment import Run
from aftershock.history.record import experiment_row, run_row
from aftershock.history.schema import VERSION_TABLE, metadata
from aftershock.history.session import record_session, with_learned
from aftershock.history.store import HistoryStore, HistoryUnusable, normalized
from aftershock.results import Results
from tests.unit.verdict_helpers import experiment

KEY = Key("shop", "pod-kill", "default")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'history.sqlite'}"


def _entry(name: str, verdict: str, outage_ms: float, *, aborted: bool = False
           ) -> dict[str, Any]:
    return {"name": name, "verdict": verdict, "fault": "pod_kill", "reason": "",
            "phases": {"during": {"longest_outage_ms": outage_ms, "error_rate": 0.0,
                                  "p99_ms": 12.5, "requests": 1000},
                       "after": {"longest_outage_ms": 0.0, "error_rate": 0.0, "p99_ms": 9.0}},
            "outages": [], "recovery_s": 3.5,
            **({"aborted": {"at_s": 7.2, "reason": "83 % failed over 5 s"}} if aborted else {})}


def _append(store: HistoryStore, n: int, entries: list[dict[str, Any]], *,
            target: str = "shop", profile: str = "default", uid: str | None = None) -> int | None:
    doc = {"started": f"2026-01-01T00:00:{n:02d}Z", "finished": f"run {n}", "verdict": "pass",
           "experiments": entries}
    row = run_row(doc, source="test", target=target, profile=profile)
    if uid:
        row["uid"] = uid
    return store.append(row, [experiment_row(e) for e in entries])


def test_the_schema_is_the_migrations_head(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    HistoryStore.open(store_url, create=True).close()
    engine = create_engine(normalized(store_url))
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(ctx, metadata) == []
    engine.dispose()


def test_runs_land_and_the_learning_query_reads_them(store_url: str) -> None:
    with HistoryStore.open(store_url, create=True) as store:
        for i in range(6):
            _append(store, i, [_entry("pod-kill", "pass", 10.0 + i)])
        _append(store, 6, [_entry("pod-kill", "inconclusive", 9000.0)])
        _append(store, 7, [_entry("pod-kill", "fail", 8000.0, aborted=True)])
        _append(store, 8, [_entry("pod-kill", "pass", 7000.0)], profile="prod")
        _append(store, 9, [_entry("pod-kill", "pass", 6000.0)], target="cart")
        _append(store, 10, [_entry("rollout", "pass", 5000.0)])
        past = store.past_runs(KEY, 4)
        assert [p.figures["during.longest_outage_ms"] for p in past] == [12.0, 13.0, 14.0, 15.0]
        assert all(p.verdict == "pass" and not p.aborted for p in past)
        assert past[0].figures["recovery_s"] == 3.5 and past[0].figures["after.p99_ms"] == 9.0
        assert store.counts() == (11, 11)
        rows = store.trend(experiment="pod-kill", target="shop", profile="default", last=3)
        assert [(r.verdict, r.aborted) for r in rows] == [
            ("pass", False), ("inconclusive", False), ("fail", True)]


def test_the_same_run_is_not_added_twice(store_url: str) -> None:
    with HistoryStore.open(store_url, create=True) as store:
        assert _append(store, 1, [_entry("pod-kill", "pass", 1.0)], uid="same") is not None
        assert _append(store, 1, [_entry("pod-kill", "pass", 1.0)], uid="same") is None
        assert store.counts() == (1, 1)


def _write_runs(url: str, writer: int, n: int) -> int:
    with HistoryStore.open(url, create=True) as store:
        for i in range(n):
            _append(store, i, [_entry("pod-kill", "pass", float(i)),
                               _entry("rollout", "pass", float(i))], uid=f"{writer}-{i}")
    return n


def test_concurrent_writers_lose_nothing(store_url: str) -> None:
    # Separate processes on a store that does not exist yet: they race on the migration
    # too. Every run lands, with both of its experiments.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        done = list(pool.map(_write_runs, [store_url] * 2, range(2), [15] * 2))
    assert done == [15] * 2
    with HistoryStore.open(store_url, create=False) as store:
        assert store.counts() == (30, 60)


def test_a_store_newer_than_the_code_is_refused(store_url: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    HistoryStore.open(store_url, create=True).close()
    engine = create_engine(normalized(store_url))
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    for create in (False, True):
        with pytest.raises(HistoryUnusable, match="schema revision 9999, newer than this"):
            HistoryStore.open(store_url, create=create)
    assert cli.main(["history", "--store", store_url]) == 2
    assert "newer than this aftershock's (0001)" in capsys.readouterr().err


def test_a_missing_store_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing.sqlite"
    assert cli.main(["history", "--store", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"no history store at {missing}" in err and "fix:" in err
    assert not missing.exists()


def _config(tmp_path: Path, store_url: str, **slo: Any) -> Config:
    history: dict[str, Any] = {"target": "shop"}
    if store_url.startswith("sqlite:///"):
        history["path"] = store_url.removeprefix("sqlite:///")
    else:
        history["url"] = store_url
    return Config.model_validate({
        "target": {"namespace": "ns", "deployment": "web", "service": "web"},
        "results_dir": str(tmp_path / "results"), "history": history,
        "slo": {"during": {"max_outage_ms": 10000, "max_error_rate": 0.5}, **slo}})


def _conclusion(config: Config, outage: tuple[float, float] | None) -> Conclusion:
    tl = experiment([outage] if outage else [])
    run = Run("pod-kill", tl, verdict=evaluate(tl, config.slo), injected=True)
    return Conclusion.of(run, [Check("pod-kill")], config.slo,
                         Results(Path(config.results_dir)))


def test_a_session_appends_and_a_later_run_is_judged_against_learned_limits(
        tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    learn = {"learn": {"runs": 20, "min_runs": 5, "quantile": 0.99, "margin": 1.2,
                       "floor_ms": 50}}
    config = _config(tmp_path, store_url, **learn)
    for i in range(5):
        # Below min_runs: the static SLO alone, and the result says so.
        c = with_learned(_conclusion(config, (12.0, 12.03)), config)
        entry = c.entries["pod-kill"]
        assert entry.verdict is not None and entry.verdict.outcome.value == "pass"
        assert entry.extra["learned"]["used"] is False
        assert entry.extra["learned"]["note"].startswith("static SLO alone")
        c.record_all()
        assert record_session(config, c.results) is not None
        assert i == 0 or f"{i} usable past run" in entry.extra["learned"]["note"]
    # The sixth run's outage is 412 ms: within the static 10 s, far beyond the usual 30 ms.
    c = with_learned(_conclusion(config, (12.0, 12.412)), config)
    entry = c.entries["pod-kill"]
    assert entry.verdict is not None and entry.verdict.outcome.value == "fail"
    failure = entry.failure()
    assert failure is not None
    assert failure.startswith("fail: regressed: longest outage during rollout 420 ms, "), failure
    assert "learned limit 50 ms (p99 of 5 runs \N{MULTIPLICATION SIGN} 1.2, floor 50 ms)" \
        in failure
    # results.json and the timeline header record the limits; `verdict` recomputes them.
    c.record_all()
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    recorded = data["experiments"][-1]
    assert recorded["verdict"] == "fail" and recorded["learned"]["used"] is True
    assert {lim["figure"] for lim in recorded["learned"]["limits"]} >= {
        "during.longest_outage_ms", "during.error_rate", "during.p99_ms"}
    timeline = tmp_path / "results" / recorded["timeline"]
    assert cli.main(["verdict", "--timeline", str(timeline)]) == 1
    assert capsys.readouterr().out.startswith("fail: regressed: longest outage")
    # The history shows the trend, and the section says what the run was filed under.
    record_session(config, c.results)
    assert json.loads((tmp_path / "results" / "results.json").read_text())["history"][
        "target"] == "shop"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(config.model_dump(mode="json")))
    assert cli.main(["history", "--config", str(cfg), "--experiment", "pod-kill",
                     "--last", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "pod-kill  (target shop, profile default)"
    assert len(out.splitlines()) == 2 + 3 and "fail" in out.splitlines()[-1]


def test_import_seeds_the_store_from_results_directories(
        tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = []
    for i in range(3):
        res = Results(tmp_path / f"nightly-{i}")
        slo = SLO(during=PhaseSLO(max_outage_ms=1000, max_error_rate=0.5))
        res.record("pod-kill", evaluate(experiment([(12.0, 12.0 + 0.01 * (i + 1))]), slo), slo)
        dirs.append(str(res.dir))
    assert cli.main(["history", "import", *dirs, "--store", store_url]) == 2
    assert "does not say which target" in capsys.readouterr().err
    assert cli.main(["history", "import", *dirs, "--store", store_url, "--target",
                     "shop"]) == 0
    assert "3 of 3 runs added to " in capsys.readouterr().out
    assert cli.main(["history", "import", dirs[0], "--store", store_url, "--target",
                     "shop"]) == 0
    assert "already in the store" in capsys.readouterr().out
    with HistoryStore.open(store_url, create=False) as store:
        past = store.past_runs(KEY, 10)
    assert [round(p.figures["during.longest_outage_ms"] or 0) for p in past] == [10, 20, 30]
    assert cli.main(["history", "--store", store_url, "--target", "nobody"]) == 0
    assert "no runs in" in capsys.readouterr().out


EXPERIMENT = """
import pytest
from aftershock.checks.verdict import evaluate
from verdict_helpers import experiment

@pytest.mark.experiment(name="kill")
def test_kill(aftershock_config, results):
    results.record("kill", evaluate(experiment([(13.0, 13.2)]), aftershock_config.slo),
                   aftershock_config.slo)
"""


def test_every_run_appends_its_results_at_session_end(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # verdict_helpers
    monkeypatch.chdir(tmp_path)
    (tmp_path / "test_history_session_exp.py").write_text(EXPERIMENT)
    (tmp_path / "c.yaml").write_text(json.dumps(
        _config(tmp_path, store_url).model_dump(mode="json")))
    run = ["run", "--config", "c.yaml", "test_history_session_exp.py", "-p",
           "no:cacheprovider", "-q"]
    assert cli.main([*run, "--set", "slo.during.max_outage_ms=100"]) == 1
    assert cli.main(run) == 0  # the config allows 10 s
    with HistoryStore.open(store_url, create=False) as store:
        rows = store.trend(target="shop", experiment="kill")
    assert [r.verdict for r in rows] == ["fail", "pass"]
    assert rows[0].longest_outage_ms == pytest.approx(200.0)
    section = json.loads((tmp_path / "results" / "results.json").read_text())["history"]
    assert section["target"] == "shop" and section["profile"] == "default"
    assert section["namespace"] == "ns" and section["deployment"] == "web"
    # A run whose history cannot be written keeps its verdict and says why.
    (tmp_path / "c.yaml").write_text(json.dumps(_config(
        tmp_path, "postgresql://nobody@127.0.0.1:1/none").model_dump(mode="json")))
    capfd.readouterr()
    assert cli.main([*run, "--set", "slo.during.max_outage_ms=100"]) == 1
    assert "the run history was not written to postgresql+psycopg://nobody@127.0.0.1:1/none" \
        in capfd.readouterr().err
