"""results.json, timeline files, offline verdicts and the CLI's exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from verdict_helpers import experiment

from aftershock import cli
from aftershock.checks.slo import SLO
from aftershock.checks.verdict import Outcome, evaluate
from aftershock.load import LoadResult
from aftershock.results import Results, overall, read_timeline, run_exit_code, safe_name

FIXTURE = Path(__file__).parent / "fixtures" / "recorded_outage.jsonl"
TARGET = "target:\n  namespace: shop\n  deployment: web\n  service: web\n"


def test_results_json_format(tmp_path: Path) -> None:
    res = Results(tmp_path)
    slo = SLO()
    tl = experiment([(13.0, 13.2)])
    v = evaluate(tl, slo)
    res.record("pod kill", v, slo, timeline=tl, nodeid="experiments/test_x.py::test_a",
               load=LoadResult(100.0, 99.5, len(tl.requests), 0, 30.0))
    res.record("rolling update", evaluate(experiment(), slo), slo, timeline=experiment())
    res.record_inconclusive("drain", "target web not found in namespace shop")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["schema"] == 1 and data["verdict"] == "fail"
    a, b, c = data["experiments"]
    assert (a["name"], a["verdict"], b["verdict"], c["verdict"]) == (
        "pod kill", "fail", "pass", "inconclusive")
    assert a["reason"].startswith("fail: 1 outage window during rollout, 200 ms")
    assert set(a["phases"]) == {"before", "during", "after"}
    during = a["phases"]["during"]
    assert during["requests"] == 1000 and during["errors"] == 20
    assert during["violations"][0]["threshold"] == "max_outage_ms"
    [o] = a["outages"]
    assert o["duration_ms"] == 200.0 and o["phase"] == "during"
    assert o["explanation"] == "starting 3000 ms after the fault (rollout) started"
    assert a["load"] == {"target_rate": 100.0, "achieved_rate": 99.5, "requests": 3000}
    assert a["violations"][0] == {"phase": "during", "threshold": "max_outage_ms",
                                  "measured": 200.0, "limit": 0.0} or \
        a["violations"][0]["threshold"] == "max_outage_ms"
    assert a["timeline"] == "timelines/pod_kill.jsonl"
    assert b["reason"] == "" and b["recovery_s"] is None
    assert c["reason"] == "target web not found in namespace shop" and c["phases"] == {}
    # the timeline can be read back and gives the same verdict
    tl2, meta = read_timeline(tmp_path / a["timeline"])
    assert meta["experiment"] == "pod kill" and meta["slo"]["during"]["max_outage_ms"] == 0
    assert evaluate(tl2, SLO()).outcome is Outcome.FAIL


def test_overall_and_names() -> None:
    assert overall([]) is None
    assert overall(["pass", "pass"]) is Outcome.PASS
    assert overall(["pass", "inconclusive"]) is Outcome.INCONCLUSIVE
    assert overall(["inconclusive", "fail"]) is Outcome.FAIL
    assert safe_name("experiments/test_pod_kill.py::test_kill[3]") == \
        "experiments_test_pod_kill.py_test_kill_3"


def test_verdict_command_recomputes_offline(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    assert cli.main(["verdict", "--timeline", str(FIXTURE)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("fail: 1 outage window during outage")
    # a looser SLO from --set: 200 ms outages allowed, 5 % errors
    code = cli.main(["verdict", "--timeline", str(FIXTURE), "--set",
                     "slo.during.max_outage_ms=300", "--set", "slo.during.max_error_rate=0.5"])
    assert code == 0
    assert capsys.readouterr().out.startswith("pass: 1,0")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TARGET + "slo:\n  during: {max_outage_ms: 300, max_error_rate: 0.5}\n")
    assert cli.main(["verdict", "--timeline", str(FIXTURE), "--config", str(cfg), "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["verdict"] == "pass" and len(entry["outages"]) == 1


def test_verdict_command_names_the_check_it_does_not_recompute(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    res = Results(tmp_path)
    slo = SLO()
    tl = experiment()
    check = {"name": "drain", "outcome": "fail", "summary": "Ready fell to 0",
             "findings": [], "measurements": {}}
    res.record("node-drain", evaluate(tl, slo), slo, timeline=tl, extra={"check": check})
    path = str(tmp_path / "timelines" / "node-drain.jsonl")
    assert cli.main(["verdict", "--timeline", path]) == 0  # the requests alone pass
    out = capsys.readouterr().out
    assert ("note: this is the request verdict against the SLO; the experiment's own check "
            "'drain' (recorded verdict: fail) is not recomputed offline") in out
    assert cli.main(["verdict", "--timeline", path, "--json"]) == 0
    assert "'drain'" in json.loads(capsys.readouterr().out)["not_recomputed"]


def test_verdict_command_usage_errors(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    assert cli.main(["verdict", "--timeline", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["verdict", "--timeline", str(FIXTURE), "--set",
                     "slo.during.max_outage=3"]) == 2
    assert "did you mean 'slo.during.max_outage_ms'" in capsys.readouterr().err
    assert cli.main(["verdict", "--timeline", str(FIXTURE), "--set", "target.namespace=x"]) == 2
    assert ("target: unknown key (from --set target.namespace=x)\n"
            "    fix: aftershock verdict takes only slo.* overrides") in capsys.readouterr().err


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for line in ("0  all experiments passed", "1  an SLO failed",
                 "2  usage or configuration error", "3  inconclusive"):
        assert line in out
    for cmd in ("run", "verdict", "config", "check", "job"):
        assert cmd in out
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--help"])
    assert "--namespace" in capsys.readouterr().out


def test_run_with_bad_config_exits_2_before_pytest(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TARGET + "slo:\n  durng: {}\n")
    assert cli.main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "slo.durng: unknown key" in err and "did you mean 'slo.during'" in err
    assert not (tmp_path / "results").exists()


def test_config_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["config", "example"]) == 0
    assert "namespace: shop" in capsys.readouterr().out
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TARGET)
    assert cli.main(["config", "show", "--config", str(cfg), "--namespace", "other"]) == 0
    assert "namespace: other" in capsys.readouterr().out


def test_pytest_args_carry_no_config_and_exit_code_mapping(tmp_path: Path) -> None:
    ns = cli.build_parser().parse_known_args(
        ["run", "--config", "c.yaml", "--set", "a.b=1", "--namespace", "shop", "-k", "kill"])
    args = cli.pytest_args(ns[0], ns[1], tmp_path)
    assert args[:5] == ["-p", "no:locust", f"--junitxml={tmp_path / 'junit.xml'}", "-W",
                        cli.QUIET_LOOP_SCOPE]
    # the session is handed the loaded Config itself, not its options to load again
    assert not [a for a in args if a.startswith("--aftershock-")]
    assert args[5:] == ["-k", "kill", str(cli.EXPERIMENTS_DIR)]
    # --experiments adds a team's own directory to the shipped experiments; a path given
    # the way pytest takes one replaces them, and --experiments still adds to it
    ns = cli.build_parser().parse_known_args(["run", "--experiments", "mine", "-q"])
    assert cli.pytest_args(ns[0], ns[1], tmp_path)[5:] == ["-q", str(cli.EXPERIMENTS_DIR),
                                                           "mine"]
    ns = cli.build_parser().parse_known_args(["run", str(tmp_path), "--experiments", "mine"])
    assert cli.pytest_args(ns[0], ns[1], tmp_path)[5:] == [str(tmp_path), "mine"]
    # pytest's --co must not be read as --config (no abbreviations)
    ns = cli.build_parser().parse_known_args(["run", "--co"])
    assert ns[0].config is None and ns[1] == ["--co"]

    passed, failed, inconclusive = Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE
    assert run_exit_code(0, passed) == 0
    assert run_exit_code(1, failed) == 1
    assert run_exit_code(1, inconclusive) == 3
    assert run_exit_code(2, passed) == 3  # interrupted
    assert run_exit_code(2, failed) == 1
    assert run_exit_code(4, None) == 2
    assert run_exit_code(5, None) == 2
    assert run_exit_code(1, None) == 1
    assert run_exit_code(0, None) == 0


EXPERIMENT = """
import pytest
from aftershock.checks.slo import SLO
from aftershock.checks.verdict import evaluate
from verdict_helpers import experiment

@pytest.mark.experiment(name="kill")
def test_kill(aftershock_config, results):
    assert aftershock_config.target.namespace == "from-cli"
    # 200 ms outage: a fail verdict, unless the SLO allows it
    results.record("kill", evaluate(experiment([(13.0, 13.2)]), aftershock_config.slo),
                   aftershock_config.slo)

@pytest.mark.experiment(name="broken")
def test_broken(aftershock_config):
    raise RuntimeError("no verdict")
"""


def test_run_hands_the_loaded_config_to_the_session_and_exits_from_its_verdicts(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # verdict_helpers
    monkeypatch.chdir(tmp_path)
    (tmp_path / "test_exp.py").write_text(EXPERIMENT)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TARGET)
    run = ["run", "--config", str(cfg), "--namespace", "from-cli", "--results", "out",
           str(tmp_path / "test_exp.py"), "-p", "no:cacheprovider", "-q"]
    assert cli.main(run) == 1  # the fail wins over the inconclusive
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [e["verdict"] for e in data["experiments"]] == ["fail", "inconclusive"]
    # a looser SLO: the outage passes; then the experiment without a verdict makes it 3
    looser = [*run, "--set", "slo.during.max_outage_ms=300", "--set",
              "slo.during.max_error_rate=0.5"]
    assert cli.main([*looser, "-k", "kill"]) == 0
    assert cli.main(looser) == 3
    # the exit code comes from the session's Results, not from reading results.json back
    shutil.rmtree(tmp_path / "out")
    monkeypatch.setattr(Results, "write", lambda self: self.path)
    assert cli.main(run) == 1 and not (tmp_path / "out" / "results.json").exists()
    capsys.readouterr()
    # the plugin's own options would be a second source of config: refused, exit 2
    assert cli.main([*run, "--aftershock-namespace=other"]) == 2
    assert "--aftershock-namespace given to `aftershock run`" in capsys.readouterr().err


def test_a_posture_section_is_kept_and_counts_in_the_overall_verdict(tmp_path: Path) -> None:
    res = Results(tmp_path)
    slo = SLO()
    res.record("rolling update", evaluate(experiment(), slo), slo)
    res.set_section("posture", {"verdict": "fail", "counts": {"high": 1}, "findings": []})
    res.record("pod kill", evaluate(experiment(), slo), slo)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["posture"]["verdict"] == "fail"
    assert [e["verdict"] for e in data["experiments"]] == ["pass", "pass"]
    assert data["verdict"] == "fail"


def test_report_command_prints_each_verdict_and_exits_with_the_overall(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    res = Results(tmp_path)
    slo = SLO()
    res.record("pod kill", evaluate(experiment([(13.0, 13.2)]), slo), slo)
    res.record("rolling update", evaluate(experiment(), slo), slo)
    check = {"name": "probes-dependency-outage", "outcome": "pass",
             "summary": "dependency down 20 s: 3/3 pods turned not Ready",
             "findings": ["1 connection attempt(s) after the target served again reached no "
                          "host"], "measurements": {}}
    res.record("probes", evaluate(experiment(), slo), slo, extra={"check": check})
    assert cli.main(["report", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "pod kill: fail: 1 outage window" in out
    assert "rolling update: pass" in out
    assert ("check probes-dependency-outage: pass: dependency down 20 s: 3/3 pods turned not "
            "Ready\n  1 connection attempt(s) after the target served again reached no host\n"
            ) in out
    assert out.rstrip().endswith("overall: fail")
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_a_session_without_a_loop_scope_setting_prints_no_pytest_asyncio_notice(
        tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")

    def session(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              check=True)
        return proc.stdout + proc.stderr

    notice = 'The configuration option "asyncio_default_fixture_loop_scope" is unset'
    assert notice in session()  # what the filter takes away
    assert notice not in session("-W", cli.QUIET_LOOP_SCOPE)
