"""aftershock's pytest plugin (registered by the ``pytest11`` entry point).

Options (group "aftershock"): ``--aftershock-config``, ``--aftershock-set``,
``--aftershock-namespace``, ``--aftershock-deployment``, ``--aftershock-service``,
``--aftershock-url``, ``--aftershock-results``, ``--aftershock-no-restore`` (for plain
``pytest``; ``aftershock run`` hands its already-loaded Config and Results to the session
as a :class:`Loaded` plugin).

Markers: ``experiment(name=None)`` and ``fault(kind)``.

Fixtures (all lazy: a test that requests none of them is untouched, so the plugin
never gets in the way of unrelated test suites):

``aftershock_config``  the validated :class:`aftershock.config.Config` (session)
``slo`` / ``target``   its ``slo`` and ``target`` sections (session)
``cluster``            ``aftershock.kube.connect(config)`` (session); connecting first
                       looks for what killed runs left and restores it
                       (:mod:`aftershock.faults.ledger`)
``load``               a factory ``load(host=None, **spec_overrides) -> LoadDriver``,
                       not yet started; every driver it made is stopped at teardown
``timeline``           a fresh :class:`aftershock.checks.timeline.Timeline` per test
``results``            the session's :class:`aftershock.results.Results`; results.json
                       is written after every record and at session end
``runner``             the :class:`aftershock.experiment.Runner` (session)
``run``                ``run(fault, checks=())``: one experiment, every check recorded,
                       the test failed unless all passed
``record``             ``record(conclusion)``: record this test's check of a shared run

An ``experiment``-marked test that ends without recording a verdict (it raised, or
returned without calling ``results.record``) is recorded as inconclusive with the
reason, so a broken experiment never reads as a pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import pytest

if TYPE_CHECKING:
    from aftershock.checks.slo import SLO
    from aftershock.checks.timeline import Timeline
    from aftershock.checks.verdict import Verdict
    from aftershock.conclusion import Check, Conclusion
    from aftershock.config import Config, TargetConfig
    from aftershock.experiment import Runner
    from aftershock.faults.base import Fault
    from aftershock.load import LoadDriver
    from aftershock.progress import Progress
    from aftershock.results import Results


class RunExperiment(Protocol):
    """The ``run`` fixture: ``run(fault, checks=())``."""

    def __call__(self, fault: Fault, checks: Sequence[Check] = ()) -> Conclusion: ...


#: The ``record`` fixture: ``record(conclusion)``.
Record = Callable[["Conclusion"], None]

_RESULTS_KEY = pytest.StashKey["Results"]()
_CONFIG_KEY = pytest.StashKey["Config"]()
_SKIPPED_KEY = pytest.StashKey[bool]()
_PROGRESS_KEY = pytest.StashKey["Progress"]()
_NO_RESTORE_KEY = pytest.StashKey[bool]()
_CLUSTER_KEY = pytest.StashKey[Any]()
_MODE_KEY = pytest.StashKey[str]()  # aftershock.faults.preview.Mode; absent: run

EXPERIMENT_MARKER = ("experiment(name=None): an aftershock experiment. Its verdict goes to "
                     "results.json under NAME (default: the test's node id); if it ends "
                     "without a recorded verdict it is recorded as inconclusive.")
FAULT_MARKER = ("fault(kind): the fault family the experiment injects, one of "
                "aftershock.faults.base.FaultKind (pod_kill, rollout, drain, pdb, "
                "dependency_outage, chaostoolkit, custom, hpa_ramp); sessions run them in "
                "that order.")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("aftershock", "aftershock: resilience experiments against Kubernetes")
    g.addoption("--aftershock-config", metavar="FILE", default=None,
                help="YAML config file (default: $AFTERSHOCK_CONFIG, else ./aftershock.yaml "
                     "if present). Precedence: file < AFTERSHOCK_* env < these options.")
    g.addoption("--aftershock-set", metavar="PATH=VALUE", action="append", default=[],
                help="override one config field, e.g. slo.during.max_outage_ms=250 "
                     "(repeatable)")
    g.addoption("--aftershock-namespace", metavar="NS", default=None,
                help="target.namespace")
    g.addoption("--aftershock-deployment", metavar="NAME", default=None,
                help="target.deployment")
    g.addoption("--aftershock-service", metavar="NAME", default=None, help="target.service")
    g.addoption("--aftershock-url", metavar="URL", default=None,
                help="target.url (default: the Service's ClusterIP)")
    g.addoption("--aftershock-results", metavar="DIR", default=None,
                help="results directory (results_dir; default ./results). When given, "
                     "results.json is written even if no experiment ran.")
    g.addoption("--aftershock-no-restore", action="store_true", default=False,
                help="report what killed runs left in the cluster (a cordoned node, a "
                     "patched template, a scaled dependency, worker pods) without "
                     "restoring it")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", EXPERIMENT_MARKER)
    config.addinivalue_line("markers", FAULT_MARKER)
    _share_fixtures(config)


def _share_fixtures(config: pytest.Config) -> None:
    """Register the experiment fixtures of the repository's conftest.py, which the package
    ships as aftershock.fixtures, unless pytest already read that file as a conftest (a
    session in a checkout): a team's own experiment directory gets them either way."""
    from aftershock import fixtures
    shipped = Path(str(fixtures.__file__)).resolve()
    for plugin in config.pluginmanager.get_plugins():
        where = getattr(plugin, "__file__", None)
        if where and plugin is not fixtures and Path(where).resolve() == shipped:
            return
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "aftershock.fixtures")


#: This plugin's options; ``aftershock run`` has its own for each (--config, ...).
OPTIONS = ("--aftershock-config", "--aftershock-set", "--aftershock-namespace",
           "--aftershock-deployment", "--aftershock-service", "--aftershock-url",
           "--aftershock-results", "--aftershock-no-restore")


def _overrides(config: pytest.Config) -> dict[str, Any]:
    from aftershock.config import shortcuts
    return shortcuts(**{k: config.getoption(f"--aftershock-{k}")
                        for k in ("namespace", "deployment", "service", "url", "results")})


def _load(config: pytest.Config) -> Config:
    """The session's Config: the one ``aftershock run`` handed over (:class:`Loaded`), else
    loaded once from this plugin's options (plain ``pytest``)."""
    if _CONFIG_KEY not in config.stash:
        from aftershock.config import load_config
        from aftershock.errors import ConfigError
        try:
            config.stash[_CONFIG_KEY] = load_config(
                config.getoption("--aftershock-config"), overrides=_overrides(config),
                set_options=config.getoption("--aftershock-set"))
        except ConfigError as e:
            raise pytest.UsageError(f"aftershock: {e}") from None
    return config.stash[_CONFIG_KEY]


class Loaded:
    """The Config and Results ``aftershock run`` built, handed to its pytest session as
    objects (``pytest.main(args, plugins=[Loaded(config, results)])``): nothing is loaded
    twice, and the run reads its verdicts from ``results`` afterwards. ``mode`` "dry-run" or
    "confirm" (``run --dry-run`` / ``--confirm``) gives the runner its preview
    (:mod:`aftershock.faults.preview`); a dry run also writes nothing at session end."""

    def __init__(self, config: Config, results: Results, restore: bool = True,
                 mode: str = "run") -> None:
        self.config = config
        self.results = results
        self.restore = restore
        self.mode = mode  # aftershock.faults.preview.Mode: run, dry-run, confirm

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        given = [opt for opt in OPTIONS if config.getoption(opt, default=None)]
        if given:
            raise pytest.UsageError(
                f"aftershock: {', '.join(given)} given to `aftershock run`, which has its "
                "own options\n  fix: use --config, --set, --namespace, ... instead")
        config.stash[_CONFIG_KEY] = self.config
        config.stash[_RESULTS_KEY] = self.results
        config.stash[_NO_RESTORE_KEY] = not self.restore
        config.stash[_MODE_KEY] = self.mode


def _results(config: pytest.Config) -> Results:
    if _RESULTS_KEY not in config.stash:
        from aftershock.results import Results
        d = config.getoption("--aftershock-results")
        config.stash[_RESULTS_KEY] = Results(Path(d) if d else _load(config).results_dir)
    return config.stash[_RESULTS_KEY]


def _terminal(config: pytest.Config) -> TextIO:
    """The session's real stdout, past pytest's capture: progress is for the person watching
    the run (or the Job's log), not for a failed test's report."""
    capman = config.pluginmanager.getplugin("capturemanager")
    try:
        if capman is None:
            fd = os.dup(sys.stdout.fileno())
        else:
            with capman.global_and_fixture_disabled():
                sys.stdout.flush()
                fd = os.dup(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout with no file (an embedding host)
        return sys.stdout
    return open(fd, "w", buffering=1, encoding="utf-8", errors="replace")


def _progress(config: pytest.Config) -> Progress:
    if _PROGRESS_KEY not in config.stash:
        from aftershock.progress import Progress
        stream = _terminal(config)
        config.stash[_PROGRESS_KEY] = progress = Progress(stream,
                                                          close_stream=stream is not sys.stdout)
        progress.begin_line()  # made in a test's setup: pytest's "file.py " is on the line
    return config.stash[_PROGRESS_KEY]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def aftershock_config(pytestconfig: pytest.Config) -> Config:
    """The validated configuration (file < AFTERSHOCK_* env < --aftershock-* options)."""
    return _load(pytestconfig)


@pytest.fixture(scope="session")
def slo(aftershock_config: Config) -> SLO:
    """The SLO thresholds per phase."""
    return aftershock_config.slo


@pytest.fixture(scope="session")
def target(aftershock_config: Config) -> TargetConfig:
    """What is disrupted: namespace, Deployment, Service, URL, paths."""
    return aftershock_config.target


@pytest.fixture(scope="session")
def cluster(aftershock_config: Config, pytestconfig: pytest.Config) -> Any:
    """The cluster connection: ``aftershock.kube.connect(config)``. Before any experiment
    uses it, what killed runs left is reported and restored (not with --no-restore)."""
    from aftershock import kube
    from aftershock.experiment import say
    from aftershock.kube.ledger import look_at_start
    connect: Callable[[Config], Any] = kube.connect
    connected = connect(aftershock_config)
    pytestconfig.stash[_CLUSTER_KEY] = connected  # the history files the run's cluster facts
    no_restore = pytestconfig.stash.get(_NO_RESTORE_KEY, False) or \
        pytestconfig.getoption("--aftershock-no-restore", default=False) or \
        _dry_run(pytestconfig)  # a dry run changes nothing: leftovers are only reported
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    # Said past pytest's capture: a leftover is news for the person running the suite.
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        look_at_start(connected, not no_restore, say)
    return connected


@pytest.fixture
def timeline() -> Timeline:
    """A fresh, empty timeline for this test."""
    from aftershock.checks.timeline import Timeline
    return Timeline()


@pytest.fixture
def load(aftershock_config: Config, request: pytest.FixtureRequest
         ) -> Iterator[Callable[..., LoadDriver]]:
    """Factory for load drivers: ``load(host=None, **LoadSpec fields) -> LoadDriver``.

    The driver is not started; use it as a context manager or call ``start()``. Records
    and the locust log go to ``<results_dir>/load/<test>/``. Every driver made here is
    stopped when the test ends, whatever happened.
    """
    from aftershock.load import LoadDriver, LoadSpec
    from aftershock.results import safe_name
    made: list[LoadDriver] = []

    def make(host: str | None = None, **overrides: Any) -> LoadDriver:
        spec = LoadSpec.from_config(aftershock_config, host=host)
        if overrides:
            spec = dataclasses.replace(spec, **overrides)
        workdir = (Path(aftershock_config.results_dir) / "load"
                   / f"{safe_name(request.node.nodeid)}-{len(made) + 1}")
        remote = None
        if spec.worker_pods:  # locust worker pods in the target's namespace
            from aftershock.kube.site import KubeSite
            site = KubeSite(request.getfixturevalue("cluster"), aftershock_config,
                            _progress(request.config).note)
            remote = site.workers(spec, safe_name(request.node.name))
        driver = LoadDriver(spec, workdir, remote_workers=remote)
        made.append(driver)
        return driver

    try:
        yield make
    finally:
        for d in made:
            d.stop()


@pytest.fixture(scope="session")
def results(pytestconfig: pytest.Config) -> Results:
    """The session's results collector: ``results.record(name, verdict, slo, timeline=...)``."""
    return _results(pytestconfig)


@pytest.fixture(scope="session")
def runner(aftershock_config: Config, cluster: Any, results: Results,
           pytestconfig: pytest.Config) -> Runner:
    """The experiment runner against ``target`` in ``cluster``, recording into ``results``.

    ``runner.conclude(fault, checks)`` runs one experiment and judges each check without
    recording; for a run whose checks are several tests (see :func:`record`). Its progress
    goes past pytest's capture: a live line per experiment at a terminal, else a timestamped
    line per change (:mod:`aftershock.progress`).
    """
    from aftershock.experiment import Runner
    from aftershock.kube.site import KubeSite
    progress = _progress(pytestconfig)
    return Runner(aftershock_config, KubeSite(cluster, aftershock_config, progress.note),
                  results, say=progress.note, progress=progress,
                  preview=_preview(pytestconfig, progress, aftershock_config))


def _dry_run(config: pytest.Config) -> bool:
    return config.stash.get(_MODE_KEY, "run") == "dry-run"


def _preview(config: pytest.Config, progress: Progress, aftershock_config: Config) -> Any:
    """The runner's preview for ``aftershock run --dry-run`` / ``--confirm``, else None."""
    from _pytest.outcomes import Skipped  # pytest.skip.Exception, by a name mypy knows

    from aftershock.faults.preview import Confirm, DryRun, Mode, NotRun
    mode = config.stash.get(_MODE_KEY, Mode.RUN)
    if mode == Mode.DRY_RUN:
        class Planned(NotRun, Skipped):
            """Nothing ran, and pytest reports the test skipped with the reason."""

        Planned.__module__, Planned.__qualname__ = "builtins", "Skipped"  # "SKIPPED ...: reason"
        return DryRun(progress.show, aftershock_config.slo, not_run=Planned)
    if mode == Mode.CONFIRM:
        return Confirm(progress.show, aftershock_config.slo)
    return None


@pytest.fixture
def run(runner: Runner, request: pytest.FixtureRequest) -> RunExperiment:
    """``run(fault, checks=())``: run one experiment, record every check, and fail the test
    unless every check passed. No checks: the request SLO verdict alone, named after the
    test's ``experiment`` marker. Whatever the run raised propagates once it is recorded
    (an interrupt included)."""
    from aftershock.conclusion import Check

    def run_(fault: Fault, checks: Sequence[Check] = ()) -> Conclusion:
        checks = checks or (Check(_experiment_name(request.node)),)
        conclusion, failures = runner.run(fault, checks)
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)
        return conclusion

    return run_


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    """``record(conclusion)``: record this test's check of a shared run (the check named
    after the test's ``experiment`` marker) and fail the test unless it passed."""
    def record_(conclusion: Conclusion) -> None:
        failure = conclusion.record(_experiment_name(request.node), nodeid=request.node.nodeid)
        if failure:
            pytest.fail(failure, pytrace=False)

    return record_


def assert_verdict(verdict: Verdict) -> None:
    """Fail the test unless the verdict passed, with the full human-readable report.

    An inconclusive verdict fails the test too (its message starts "inconclusive:");
    ``aftershock run`` still exits 3 for it: its exit code comes from the recorded verdicts.
    """
    from aftershock.checks import report
    from aftershock.checks.verdict import Outcome
    if verdict.outcome is not Outcome.PASS:
        pytest.fail(report.explain(verdict), pytrace=False)


# ---------------------------------------------------------------- hooks


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # pytest's "experiments/test_x.py " is on the line: progress starts on its own line (a
    # shared run progresses in its fixture's setup).
    if _PROGRESS_KEY in item.config.stash:
        item.config.stash[_PROGRESS_KEY].begin_line()
    if _dry_run(item.config) and not _previewable(item):
        # No fault through the runner, so no plan to show (posture reads only), or a fault
        # the test would inject by its own hand, which a dry run must not do: not run.
        pytest.skip("dry run: this test injects no fault through the experiment runner, "
                    "so there is no plan to show; not run")


def _previewable(item: pytest.Item) -> bool:
    """Whether a dry run may run ``item``: it reaches the experiment runner through a
    fixture (its preview stops it before anything is injected), or it is a shipped
    experiment with a fault marker (the Chaos Toolkit one takes ``run`` by name, once it
    knows it is configured). A team's test with a fault marker and no runner would inject
    by its own hand."""
    from aftershock.faults.preview import RUNNER_FIXTURES
    from aftershock.resources import experiments_dir
    if RUNNER_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    shipped = experiments_dir().resolve()
    return item.get_closest_marker("fault") is not None and \
        Path(item.path).resolve().is_relative_to(shipped)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    # Lets results.record() default its nodeid to the running test.
    if _RESULTS_KEY in item.config.stash:
        item.config.stash[_RESULTS_KEY].current_nodeid = item.nodeid


def _fault_rank(item: pytest.Item) -> int:
    """Run order of the fault families in one session: posture (no fault) first, then in
    :class:`aftershock.faults.base.FaultKind`'s order; an unknown kind last."""
    from aftershock.faults.base import FaultKind
    m = item.get_closest_marker("fault")
    if m is None or not m.args:
        return 0
    kinds = {k.value: k for k in FaultKind}
    kind = kinds.get(str(m.args[0]))
    return kind.order if kind is not None else len(FaultKind) + 1


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("fault") for item in items):
        items.sort(key=_fault_rank)  # stable: the order within a family is kept


def _experiment_name(item: pytest.Item) -> str:
    m = item.get_closest_marker("experiment")
    if m is not None:
        name = m.kwargs.get("name") or (m.args[0] if m.args else None)
        if name:
            return str(name)
    return item.nodeid


#: The name a test's verdict is recorded under (its ``experiment`` marker's, else its node
#: id), for the shared fixtures (conftest.py) too.
experiment_name = _experiment_name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.skipped:
        # A skip in setup (a fixture calling pytest.skip) is followed by a passing teardown
        # report: remember it, so that teardown does not record the test as inconclusive.
        item.stash[_SKIPPED_KEY] = True
    if item.get_closest_marker("experiment") is None or item.stash.get(_SKIPPED_KEY, False):
        return rep
    if not (rep.when == "teardown" or rep.failed):
        return rep
    try:
        res = _results(item.config)
    except pytest.UsageError:
        return rep  # the config is invalid: the test already errored saying so
    if res.has(item.nodeid):
        return rep
    if rep.failed:
        text = str(call.excinfo.value) if call.excinfo is not None else rep.longreprtext
        first = text.strip().splitlines()[0] if text.strip() else "unknown error"
        reason = f"the experiment errored in {rep.when} before a verdict: {first}"
    else:
        reason = "the experiment ended without recording a verdict"
    res.record_inconclusive(_experiment_name(item), reason, nodeid=item.nodeid)
    return rep


def _write_dashboards(config: pytest.Config) -> None:
    """results/metrics.prom and results/annotations.json, labelled with the target."""
    from aftershock.dashboards.write import write
    res = config.stash[_RESULTS_KEY]
    target = config.stash[_CONFIG_KEY].target if _CONFIG_KEY in config.stash else None
    write(res.dir, res.to_json(), target.namespace if target else "",
          target.deployment if target else "")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _PROGRESS_KEY in config.stash:
        config.stash[_PROGRESS_KEY].close()
    if _dry_run(config):
        return  # a dry run writes nothing: no results, no history, no report
    if _RESULTS_KEY in config.stash:
        written = config.stash[_RESULTS_KEY].write()
        if _CONFIG_KEY in config.stash:  # every run appends its results to the history
            from aftershock.history.session import record_session
            record_session(config.stash[_CONFIG_KEY], config.stash[_RESULTS_KEY],
                           config.stash.get(_CLUSTER_KEY, None))
        _write_dashboards(config)
    elif config.getoption("--aftershock-results", default=None):
        from aftershock.results import Results
        written = Results(Path(config.getoption("--aftershock-results"))).write()
    else:
        return
    from aftershock.html_report import write_session_report
    write_session_report(written.parent)
