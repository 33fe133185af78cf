"""The pytest plugin: options, markers, fixtures, and inconclusive-by-default experiments."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

CONFIG = "target:\n  namespace: shop\n  deployment: web\n  service: web\n"


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    # An ini of its own keeps pytester from finding the project's pytest settings.
    pytester.makeini("[pytest]\n")


def test_options_are_in_a_named_group_with_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert "aftershock: resilience experiments against Kubernetes:" in out
    for opt in ("--aftershock-config=FILE", "--aftershock-set=PATH=VALUE",
                "--aftershock-namespace=NS", "--aftershock-results=DIR"):
        assert opt in out


def test_markers_are_registered_with_signatures(pytester: pytest.Pytester) -> None:
    out = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.experiment(name=None):" in out
    assert "@pytest.mark.fault(kind):" in out


def test_unrelated_tests_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "results").exists()


def test_plugin_fixtures_are_available(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", aftershock=CONFIG)
    pytester.makepyfile("""
        from aftershock.config import Config
        from aftershock.load import LoadDriver
        from aftershock.checks.timeline import Timeline

        def test_fixtures(aftershock_config, slo, target, timeline, load, results):
            assert isinstance(aftershock_config, Config)
            assert target.namespace == "cli-ns"
            assert slo.during.max_outage_ms == 250
            assert isinstance(timeline, Timeline) and len(timeline.requests) == 0
            driver = load(host="http://127.0.0.1:9", rate=5.0)
            assert isinstance(driver, LoadDriver) and driver.spec.rate == 5.0
            assert not driver.running
            assert results.dir.name == "out"
    """)
    result = pytester.runpytest("--aftershock-namespace=cli-ns",
                                "--aftershock-set=slo.during.max_outage_ms=250",
                                "--aftershock-results=out")
    result.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "out" / "results.json").read_text())
    assert data == {**data, "schema": 1, "experiments": [], "verdict": None}


def test_bad_config_is_a_usage_error_naming_the_field(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", aftershock=CONFIG + "slo:\n  during:\n    p99: 3\n")
    pytester.makepyfile("def test_x(slo):\n    pass\n")
    result = pytester.runpytest()
    assert "slo.during.p99: unknown key" in result.stdout.str() + result.stderr.str()
    assert result.ret != 0


def test_experiments_record_verdicts_and_errors_become_inconclusive(
        pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", aftershock=CONFIG)
    pytester.makepyfile("""
        import pytest
        from aftershock.checks.timeline import (
            ErrorKind, Marker, MarkerKind, Request, Requests, Timeline)
        from aftershock.checks.verdict import evaluate
        from aftershock.plugin import assert_verdict

        def timeline_with(fail):
            t0 = 1_700_000_000.0
            rs = [Request(t0 + i / 100, 5.0, 200) for i in range(3000)]
            if fail:
                rs[1500] = Request(t0 + 15, 0.3, 0, ErrorKind.CONNECT)
            tl = Timeline(requests=Requests.of(rs))
            tl.markers += [Marker(t0 + 10, MarkerKind.FAULT_START, "pod kill"),
                           Marker(t0 + 20, MarkerKind.FAULT_END)]
            return tl

        @pytest.mark.experiment("kills pods")
        @pytest.mark.fault("pod_kill")
        def test_pass(results, slo):
            tl = timeline_with(False)
            v = evaluate(tl, slo)
            results.record("kills pods", v, slo, timeline=tl)
            assert_verdict(v)

        @pytest.mark.experiment()
        def test_fail(results, slo):
            tl = timeline_with(True)
            v = evaluate(tl, slo)
            results.record("breaks", v, slo, timeline=tl)
            assert_verdict(v)

        @pytest.mark.experiment(name="crashes")
        def test_crash():
            raise RuntimeError("cluster went away")

        @pytest.mark.experiment(name="forgets")
        def test_forgets():
            pass
    """)
    result = pytester.runpytest("--aftershock-results=res")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert "fail: 1 outage window during pod kill" in out
    data = json.loads((pytester.path / "res" / "results.json").read_text())
    got = {e["name"]: (e["verdict"], e["reason"]) for e in data["experiments"]}
    assert got["kills pods"][0] == "pass"
    assert got["breaks"][0] == "fail"
    assert got["crashes"] == ("inconclusive", "the experiment errored in call before a verdict"
                              ": cluster went away")
    assert got["forgets"][0] == "inconclusive"
    assert data["verdict"] == "fail"
    nodeids = {e["name"]: e["nodeid"] for e in data["experiments"]}
    assert nodeids["breaks"].endswith("::test_fail")
    assert (pytester.path / "res" / "timelines" / "breaks.jsonl").is_file()
    # The session ends with the HTML report of the same results.
    page = (pytester.path / "res" / "report.html").read_text()
    assert 'data-name="breaks" data-outages="1"' in page


def test_an_experiment_skipped_by_its_fixture_is_not_recorded(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", aftershock=CONFIG)
    pytester.makepyfile("""
        import pytest

        @pytest.fixture
        def needs_setting():
            pytest.skip("probes.dependency is not set")

        @pytest.mark.experiment(name="skipped")
        def test_skipped(needs_setting):
            pass
    """)
    result = pytester.runpytest("--aftershock-results=res")
    result.assert_outcomes(skipped=1)
    data = json.loads((pytester.path / "res" / "results.json").read_text())
    assert data["experiments"] == []


def test_a_setup_error_leaves_an_entry_and_a_section_is_a_verdict(
        pytester: pytest.Pytester) -> None:
    # Like experiments/test_posture.py: its verdict is a results.json section, and an error
    # in its fixtures (no cluster) must still leave an inconclusive entry saying so.
    pytester.makefile(".yaml", aftershock=CONFIG)
    pytester.makepyfile("""
        import pytest

        @pytest.fixture
        def cluster():
            raise RuntimeError("no kubeconfig")

        @pytest.mark.experiment("posture")
        def test_posture_without_cluster(cluster, results):
            results.set_section("posture", {"verdict": "pass"})

        @pytest.mark.experiment("posture-fails")
        def test_posture_fails(results):
            results.set_section("posture", {"verdict": "fail"})
            pytest.fail("2 findings", pytrace=False)
    """)
    result = pytester.runpytest("--aftershock-results=res")
    result.assert_outcomes(failed=1, errors=1)
    data = json.loads((pytester.path / "res" / "results.json").read_text())
    got = {e["name"]: (e["verdict"], e["reason"]) for e in data["experiments"]}
    assert got == {"posture": ("inconclusive", "the experiment errored in setup before a "
                                               "verdict: no kubeconfig")}
    assert data["posture"]["verdict"] == "fail"
    assert data["verdict"] == "fail"


def test_experiments_run_cheapest_first_and_the_hpa_last(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order="""
        import pytest

        @pytest.mark.fault("hpa_ramp")
        def test_a_hpa(): pass

        def test_b_posture(): pass

        @pytest.mark.fault("rollout")
        def test_c_rollout(): pass

        @pytest.mark.fault("pod_kill")
        def test_d_kill(): pass
    """)
    result = pytester.runpytest("-v", "-p", "no:locust")
    order = [line.split("::")[1].split()[0] for line in result.outlines
             if "::test_" in line and "PASSED" in line]
    assert order == ["test_b_posture", "test_d_kill", "test_c_rollout", "test_a_hpa"]


def test_the_run_and_record_fixtures_record_every_check_on_every_exit_path(
        pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", aftershock=CONFIG + "load:\n  rate: 100\n  steady_seconds: 5\n"
                                                   "  after_seconds: 3\n")
    pytester.makeconftest("""
        import pytest
        from aftershock import experiment
        from aftershock.experiment import Runner
        from aftershock.testing import FakeClock, FakeLoads, FakeSite

        @pytest.fixture(scope="session")
        def runner(aftershock_config, results):
            # The fake cluster and load in place of the session's real ones.
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(experiment, "install_signal_handlers", lambda: None)
                clock = FakeClock()
                yield Runner(aftershock_config, FakeSite(clock), results, FakeLoads(clock),
                             clock, lambda text: None)
    """)
    pytester.makepyfile("""
        import pytest
        from aftershock.checks.check import result
        from aftershock.conclusion import Check
        from aftershock.faults.base import FaultKind
        from aftershock.testing import FakeFault

        @pytest.mark.experiment("survives")
        @pytest.mark.fault(FaultKind.POD_KILL)
        def test_survives(run):
            run(FakeFault())

        @pytest.mark.experiment("api-down")
        def test_api_down(run):
            run(FakeFault(raises=RuntimeError("the API went away")))

        @pytest.fixture(scope="module")
        def shared(runner):
            return runner.conclude(FakeFault(), [
                Check("restarts", lambda tl: result("restarts", [], [], "none")),
                Check("endpoints", lambda tl: result("endpoints", [], ["not measured"],
                                                     "not measured"))])

        @pytest.mark.experiment("restarts")
        def test_restarts(shared, record):
            record(shared)

        @pytest.mark.experiment("endpoints")
        def test_endpoints(shared, record):
            record(shared)
    """)
    result = pytester.runpytest("--aftershock-results=res", "-p", "no:locust")
    result.assert_outcomes(passed=2, failed=2)
    data = json.loads((pytester.path / "res" / "results.json").read_text())
    got = {e["name"]: (e["verdict"], e["nodeid"].split("::")[1]) for e in data["experiments"]}
    assert got == {"survives": ("pass", "test_survives"),
                   "api-down": ("inconclusive", "test_api_down"),
                   "restarts": ("pass", "test_restarts"),
                   "endpoints": ("inconclusive", "test_endpoints")}
    [down] = [e for e in data["experiments"] if e["name"] == "api-down"]
    assert down["reason"] == "errored before a verdict: RuntimeError: the API went away"
    assert "the API went away" in result.stdout.str()  # the exception still propagated


def test_the_shared_experiment_fixtures_reach_a_directory_of_its_own_once(
        pytester: pytest.Pytester) -> None:
    # A team's experiment directory, outside this repository: the fixtures of the top-level
    # conftest.py come from the plugin (aftershock.fixtures), registered once.
    pytester.makefile(".yaml", aftershock=CONFIG + "load:\n  timeout_s: 3\n")
    pytester.makepyfile("""
        import httpx
        import pytest

        @pytest.mark.asyncio
        async def test_shared(http_client, http_timeout, request):
            assert isinstance(http_client, httpx.AsyncClient) and http_timeout == 3
            assert http_client.timeout.read == 3
            where = [p for p in request.config.pluginmanager.get_plugins()
                     if getattr(p, "__name__", "") == "aftershock.fixtures"]
            assert len(where) == 1
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    listed = pytester.runpytest("--fixtures", "-p", "no:cacheprovider").stdout.str()
    for name in ("arun --", "http_client --", "http_timeout [session scope] --"):
        assert listed.count(f"\n{name}") == 1, listed


def test_in_a_checkout_the_root_conftest_is_the_one_registered(
        pytestconfig: pytest.Config) -> None:
    # This session runs in the repository: pytest read conftest.py itself, and the plugin
    # did not register the same file again as aftershock.fixtures.
    from pathlib import Path

    from aftershock import fixtures
    root = Path(__file__).resolve().parents[2] / "conftest.py"
    assert Path(fixtures.__file__).resolve() == root
    same = [p for p in pytestconfig.pluginmanager.get_plugins()
            if getattr(p, "__file__", None) and Path(p.__file__).resolve() == root]
    assert len(same) == 1 and same[0] is not fixtures, same
