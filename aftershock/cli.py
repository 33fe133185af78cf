"""The ``aftershock`` command.

Exit codes (every subcommand):
  0  every experiment passed
  1  an SLO failed (or, for ``run``, a test failed)
  2  usage or configuration error: nothing touched the cluster
  3  inconclusive: the suite could not measure (target missing, too few requests,
     steady state already failing, interrupted, ...)
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aftershock.errors import (
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    EXIT_USAGE,
    AftershockError,
    CannotMeasure,
    ConfigError,
    UsageError,
)
from aftershock.resources import experiments_dir

if TYPE_CHECKING:
    from aftershock.config import Config

EXIT_CODES = """\
exit codes:
  0  all experiments passed
  1  an SLO failed (the message names the threshold, the measured value and the limit)
  2  usage or configuration error (nothing was done to the cluster)
  3  inconclusive: the suite could not measure (see results.json "reason")
"""

RESTORE_EXIT_CODES = """\
exit codes:
  0  nothing is left: every leftover was restored, or there was none
  2  usage or configuration error (nothing was done to the cluster)
  3  something is left in place: a leftover of a run still alive, one that cannot be read,
     or one whose restore failed (each is listed with why)
"""

#: The experiments shipped with aftershock (package data; experiments/ in the repository).
EXPERIMENTS_DIR = experiments_dir()


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors, which is already our usage exit code.

    No abbreviations: ``aftershock run`` passes unknown options on to pytest, and
    pytest's ``--co`` must not be taken for ``--config``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)


def _config_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (defaults < --config file < AFTERSHOCK_* env < "
                             "these options)")
    g.add_argument("--config", metavar="FILE",
                   help="YAML config file (default: $AFTERSHOCK_CONFIG, else ./aftershock.yaml "
                        "if present)")
    g.add_argument("--set", dest="set_options", action="append", default=[],
                   metavar="PATH=VALUE",
                   help="override one field, e.g. --set slo.during.max_outage_ms=250 "
                        "(repeatable)")
    g.add_argument("--namespace", help="target.namespace")
    g.add_argument("--deployment", help="target.deployment")
    g.add_argument("--service", help="target.service")
    g.add_argument("--url", help="target.url (default: the Service's ClusterIP)")
    g.add_argument("--results", metavar="DIR", help="results_dir (default ./results)")


def _overrides(ns: argparse.Namespace) -> dict[str, Any]:
    from aftershock.config import shortcuts
    return shortcuts(namespace=ns.namespace, deployment=ns.deployment, service=ns.service,
                     url=ns.url, results=ns.results)


def _no_restore_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-restore", action="store_true",
                   help="report what killed runs left in the cluster (a cordoned node, a "
                        "patched pod template, a scaled-down dependency, load worker pods) "
                        "without restoring it (default: restore what a run that is gone left)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aftershock",
        description="Prove that a Kubernetes application survives disruption: steady load, "
                    "faults, one timeline, verdicts per phase against SLOs.",
        epilog=EXIT_CODES + "\nconfiguration reference: docs/cli.md and "
                            "`aftershock config example`",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser(
        "run", help="run the experiments (pytest) and write results/",
        description="Run the experiments under pytest: load the target, inject each fault, "
                    "judge every phase. Writes results/junit.xml, results/results.json and "
                    "results/timelines/*.jsonl. Options aftershock does not know are passed "
                    "to pytest (e.g. -k pod_kill, -x, -v).",
        epilog=EXIT_CODES + "\nexamples:\n  aftershock run --config aftershock.yaml\n"
                            "  aftershock run --namespace shop --deployment web --service web "
                            "-k pod_kill",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _config_options(run)
    run.add_argument("--experiments", metavar="PATH", action="append",
                     help="your own experiment modules or directories, run after the shipped "
                          f"ones ({EXPERIMENTS_DIR}); repeatable. A path given the way "
                          "pytest takes one (without --experiments) replaces the shipped "
                          "ones, e.g. experiments/test_pod_kill.py")
    run.add_argument("--push-gateway", metavar="URL",
                     help="push the run's metrics (those of results/metrics.prom) to this "
                          "Prometheus Pushgateway, e.g. http://pushgateway:9091")
    _no_restore_option(run)
    ahead = run.add_mutually_exclusive_group()
    ahead.add_argument("--dry-run", action="store_true",
                       help="print what each selected experiment would do (pods it would "
                            "kill, the node it would drain and the pods that evicts, the "
                            "rollout, the HPA ramp, the dependency scaled to 0, the SLO) and "
                            "change nothing: only reads the cluster, starts no load, writes "
                            "no results; exit 0")
    ahead.add_argument("--confirm", action="store_true",
                       help="show each experiment's plan before its load and fault and ask "
                            "y/N at the terminal; anything but y skips it (inconclusive: "
                            "skipped by the operator). Needs a terminal (exit 2 without)")

    verdict = sub.add_parser(
        "verdict", help="recompute a verdict offline from a recorded timeline",
        description="Recompute one experiment's request verdict from its raw timeline "
                    "(results/timelines/NAME.jsonl), with the SLO recorded in the timeline or "
                    "the one from --config/--set. Needs no cluster. An experiment's own check "
                    "(drain, PDB, probes, HPA) is not recomputed; the output says so.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    verdict.add_argument("--timeline", required=True, metavar="FILE",
                         help="a timeline JSON-lines file")
    verdict.add_argument("--config", metavar="FILE",
                         help="take the slo section from this config file instead of the "
                              "SLO recorded in the timeline")
    verdict.add_argument("--set", dest="set_options", action="append", default=[],
                         metavar="slo.PATH=VALUE",
                         help="override one SLO field, e.g. --set slo.during.max_outage_ms=250")
    verdict.add_argument("--json", action="store_true",
                         help="print the results.json entry instead of the text report")

    config = sub.add_parser("config", help="show or check the configuration",
                            description="Print the example configuration, or validate one "
                                        "and print the effective values.",
                            epilog=EXIT_CODES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    csub.add_parser("example", help="print a commented example config with every default")
    show = csub.add_parser("show", help="validate and print the effective configuration "
                                        "(file + env + options)")
    _config_options(show)

    check = sub.add_parser(
        "check", help="posture checks of the target's live objects (no load, no fault)",
        description="Read the target's Deployment, pods, Service, EndpointSlices, PDB, HPA and "
                    "NetworkPolicies and check them against the production-readiness "
                    "checklist (docs/posture.md). Prints a findings table; writes the posture "
                    "entry into results.json and posture-junit.xml. Exit 1 when an unwaived "
                    "finding is at or above posture.fail_on.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _config_options(check)
    _no_restore_option(check)

    restore = sub.add_parser(
        "restore", help="restore what killed runs left in the cluster",
        description="Look on the nodes and in the target's namespaces for the restore "
                    "ledger's entries (aftershock.dev/* annotations) a run writes before each "
                    "change and removes once it is undone. Undo each one whose run is gone "
                    "(uncordon the node, put the pod template or the replicas back, delete "
                    "load worker pods) and list what was restored. A run that is still alive "
                    "(a Job whose suite still runs, a process on this host) is reported and "
                    "left alone. Every `run`, `check` and `job run` does this first.",
        epilog=RESTORE_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _config_options(restore)

    report_cmd = sub.add_parser(
        "report", help="print the report of a results directory",
        description="Print each experiment's verdict and numbers (and its own check's summary "
                    "and findings) from RESULTS_DIR/results.json "
                    "and exit with the overall verdict's code.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    report_cmd.add_argument("results_dir", nargs="?", default="results", metavar="RESULTS_DIR",
                            help="a results directory (default: ./results)")
    report_cmd.add_argument("--html", action="store_true",
                            help="also (re)write RESULTS_DIR/report.html: every experiment's "
                                 "timeline on one page that works offline (docs/report.md)")

    init = sub.add_parser(
        "init", help="write a commented aftershock.yaml for a target from its live objects",
        description="Read the Deployment, the Services, pods, PodDisruptionBudgets and "
                    "HorizontalPodAutoscalers of its namespace, send a few GET requests to its "
                    "Service (the paths tried: / and the probes' paths; a response header "
                    "naming the answering pod is detected), and write a config that "
                    "`aftershock run` accepts, each guess named as one in a comment. "
                    "Changes nothing in the cluster.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    init.add_argument("--namespace", required=True, help="the target's namespace")
    init.add_argument("--deployment", required=True, help="the target Deployment")
    init.add_argument("--service", help="the Service in front of it (default: the one that "
                                        "selects its pods)")
    init.add_argument("--kubeconfig", metavar="FILE",
                      help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster); "
                           "written into the config when given")
    init.add_argument("--context", help="kubeconfig context (written into the config when "
                                        "given)")
    init.add_argument("-o", "--output", default="aftershock.yaml", metavar="FILE",
                      help="where to write it (default ./aftershock.yaml; - for stdout)")
    init.add_argument("--force", action="store_true", help="replace an existing file")

    _job_parsers(sub)
    from aftershock.history.command import add_parser as history_parser
    history_parser(sub, EXIT_CODES, _config_options)
    return parser


def _job_parsers(sub: Any) -> None:
    """``aftershock job run|render|suite`` (aftershock/job/; docs/job.md)."""
    job = sub.add_parser("job", help="run the suite in the cluster as a Kubernetes Job",
                         description="Run the suite as a Job (k8s-job.yaml) and get its "
                                     "results back. See docs/job.md.")
    jsub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    run = jsub.add_parser(
        "run", help="apply the Job, stream its progress, fetch results/, clean up",
        description="Apply k8s-job.yaml in the target's namespace (image and config "
                    "overridable), stream the pod's state and the suite's log, copy the "
                    "results (junit.xml, results.json, timelines/) into --results, delete "
                    "the Job's objects and exit with the suite's exit code. Options "
                    "aftershock does not know are passed to the suite's pytest (-k ...).",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    render = jsub.add_parser("render", help="print the manifests `job run` would apply")
    for p in (run, render):
        _config_options(p)
        p.add_argument("--image", help="the suite's image (default: "
                                       "aftershock.local/aftershock:<version>)")
        p.add_argument("--manifests", metavar="FILE",
                       help="the Job's manifests (default: the project's k8s-job.yaml)")
        p.add_argument("--deadline", type=int, metavar="SECONDS",
                       help="the Job's activeDeadlineSeconds (default: the manifest's)")
        p.add_argument("--hold", type=int, metavar="SECONDS",
                       help="how long the holder keeps unfetched results (default 900)")
        p.add_argument("--no-rbac-check", action="store_true",
                       help="skip the suite's check of its ServiceAccount's permissions")
        p.add_argument("--run-id", help="suffix of the objects' names (default: random)")
    _no_restore_option(run)
    run.add_argument("--timeout", type=float, metavar="SECONDS",
                     help="give up waiting after this long (default: deadline + 120)")
    run.add_argument("--keep", action="store_true",
                     help="leave the Job's objects in the cluster (for debugging)")
    suite = jsub.add_parser("suite", help="(inside the Job's pod) run the suite for the "
                                          "holder to hand over")
    _config_options(suite)
    suite.add_argument("--no-rbac-check", action="store_true")
    _no_restore_option(suite)


# ---------------------------------------------------------------- commands


def _load_config(ns: argparse.Namespace) -> Config:
    from aftershock.config import load_config
    return load_config(ns.config, overrides=_overrides(ns), set_options=ns.set_options)


def _has_path_arg(args: Sequence[str]) -> bool:
    return any(not a.startswith("-") and os.path.exists(a.split("::")[0]) for a in args)


#: pytest-asyncio warns on every session whose ini leaves this unset: every team's that has
#: no async tests of its own. Only the notice goes; the default it is about stays as it is,
#: and a team's own setting stays theirs.
QUIET_LOOP_SCOPE = ('ignore:The configuration option "asyncio_default_fixture_loop_scope" '
                    'is unset:DeprecationWarning')


def pytest_args(ns: argparse.Namespace, passthrough: Sequence[str], results_dir: Path
                ) -> list[str]:
    """The pytest command line ``aftershock run`` uses. The configuration is not in it: the
    session gets the loaded Config itself (:class:`aftershock.plugin.Loaded`)."""
    args: list[str] = ["-p", "no:locust", f"--junitxml={results_dir / 'junit.xml'}",
                       "-W", QUIET_LOOP_SCOPE]
    args += list(passthrough)
    if not _has_path_arg(passthrough):
        args.append(str(EXPERIMENTS_DIR))  # the built-ins, then the team's own
    args += ns.experiments or []
    return args


def cmd_run(ns: argparse.Namespace, passthrough: list[str], config: Config | None = None
            ) -> int:
    """Run the experiments with ``config`` (default: loaded from ``ns``), loaded once."""
    if config is None:
        config = _load_config(ns)  # ConfigError -> exit 2 before anything runs
    if getattr(ns, "confirm", False) and not sys.stdin.isatty():
        raise UsageError("--confirm asks y/N before each experiment, and stdin is not a "
                         "terminal: nothing was run",
                         "run it at a terminal, or leave out --confirm (--dry-run shows "
                         "the plan without asking)")
    if getattr(ns, "dry_run", False):
        return _dry_run(ns, passthrough, config)
    results_dir = Path(config.results_dir)
    from aftershock.results import Results, run_exit_code, usable_results_dir
    usable_results_dir(results_dir)  # UsageError -> exit 2 before anything runs
    from aftershock.plugin import Loaded
    results = Results(results_dir)
    # Each run replaces results.json, but only once it ran: a pytest usage error (an
    # unknown option) leaves the previous run's results as they were.
    previous = results.path.with_name(f".{results.path.name}.previous")
    if results.path.exists():
        os.replace(results.path, previous)
    import pytest
    try:
        code = int(pytest.main(pytest_args(ns, passthrough, results_dir),
                               plugins=[Loaded(config, results,
                                               restore=not getattr(ns, "no_restore", False),
                                               mode="confirm" if getattr(ns, "confirm", False)
                                               else "run")]))
    finally:
        ran = results.path.exists()
        if previous.exists():
            if ran:
                previous.unlink()
            else:
                os.replace(previous, results.path)
    final = run_exit_code(code, results.overall())
    if ran and getattr(ns, "push_gateway", None):
        _push(ns.push_gateway, results, config)
    if not ran and code in (4, 5):  # pytest's usage error / nothing collected
        print(f"aftershock: nothing ran; {results_dir}/ left as it was; exit {final}",
              file=sys.stderr)
    else:
        print(f"aftershock: results in {results_dir}/ (results.json, junit.xml, timelines/, "
              f"metrics.prom, annotations.json); exit {final}", file=sys.stderr)
    return final


def _dry_run(ns: argparse.Namespace, passthrough: list[str], config: Config) -> int:
    """``run --dry-run``: the same session, each experiment stopped at its plan. Whatever
    the session would write (junit.xml, an errored experiment's entry) goes to a scratch
    directory that is removed: results/ stays as it was."""
    import tempfile

    import pytest

    from aftershock.plugin import Loaded
    from aftershock.results import Results, run_exit_code
    with tempfile.TemporaryDirectory(prefix="aftershock-dry-run-") as scratch:
        results = Results(Path(scratch))
        scratch_config = config.model_copy(update={"results_dir": Path(scratch)})
        code = int(pytest.main(["-p", "no:cacheprovider",
                                *pytest_args(ns, passthrough, Path(scratch))],
                               plugins=[Loaded(scratch_config, results, restore=False,
                                               mode="dry-run")]))
        final = run_exit_code(code, results.overall())
    print(f"aftershock: dry run, nothing was changed or written; exit {final}",
          file=sys.stderr)
    return final


def _push(url: str, results: Any, config: Config) -> None:
    """A failed push is said, and leaves the run's verdict and exit code as they are."""
    from aftershock.dashboards.write import push
    try:
        push(url, results.to_json(), config.target.namespace, config.target.deployment)
        print(f"aftershock: pushed the metrics to {url}", file=sys.stderr)
    except (OSError, ValueError) as e:  # urllib: unreachable, refused, HTTP error, bad URL
        print(f"aftershock: could not push the metrics to {url}: {e}\n  fix: check the "
              "Pushgateway's URL and that it is reachable; results/metrics.prom has them",
              file=sys.stderr)


def cmd_verdict(ns: argparse.Namespace) -> int:
    from aftershock.timeline_read import TimelineRead
    path = Path(ns.timeline)
    # Entered before the heavier imports: a large file's tail is decoded meanwhile.
    with TimelineRead(path) as reading:
        from aftershock.checks import report
        from aftershock.checks.codec import TimelineFormatError
        from aftershock.checks.verdict import evaluate
        from aftershock.results import exit_code, experiment_json
        early: list[Any] = []  # [the head's metadata, its SLO, or the error making it gave]

        def slo_ahead(head_meta: dict[str, Any]) -> None:
            # While the child still reads the tail; kept unless the tail has a header, and
            # an error is raised only after the timeline read well, as when made after.
            try:
                early[:] = [dict(head_meta), _verdict_slo(ns, head_meta, path), None]
            except Exception as e:
                early[:] = [dict(head_meta), None, e]
        try:
            timeline, meta = reading.result(while_waiting=slo_ahead)
        except FileNotFoundError:
            raise ConfigError(f"timeline file {path} does not exist",
                              "pass a file from results/timelines/") from None
        except IsADirectoryError:
            raise ConfigError(f"timeline {path} is a directory, not a file",
                              "pass a file from results/timelines/") from None
        except OSError as e:
            raise ConfigError(f"timeline file {path} cannot be read: {e.strerror}",
                              "check the path and its permissions") from None
        except TimelineFormatError as e:
            raise ConfigError(str(e), "pass an aftershock timeline file") from None
    if early and early[0] == meta:
        if early[2] is not None:
            raise early[2]
        slo = early[1]
    else:
        slo = _verdict_slo(ns, meta, path)
    v = evaluate(timeline, slo)
    learned = _recorded_learned(meta, path)
    if learned is not None:  # the limits the run learned from its history, as recorded
        from aftershock.checks.learn import judge_learned
        v = judge_learned(v, slo, learned)
    check = meta.get("check") if isinstance(meta.get("check"), dict) else None
    skipped = (f"the experiment's own check {check.get('name')!r} (recorded verdict: "
               f"{check.get('verdict')}) is not recomputed offline; results.json has it"
               if check else None)
    if ns.json:
        import json
        name = str(meta.get("experiment") or path.stem)
        entry = experiment_json(name, v, slo, timeline_file=str(path),
                                extra={"learned": learned.to_json()} if learned else None)
        if skipped:
            entry["not_recomputed"] = skipped
        # Streamed (no second copy as one string), in writes of a few thousand pieces:
        # json.dump writes each of its millions of pieces on its own. The same bytes.
        out, pieces = sys.stdout, []
        for piece in json.JSONEncoder(indent=2).iterencode(entry):
            pieces.append(piece)
            if len(pieces) >= 4096:
                out.write("".join(pieces))
                pieces.clear()
        out.write("".join(pieces))
        print()
    else:
        print(report.explain(v))
        if skipped:
            print(f"note: this is the request verdict against the SLO; {skipped}")
    return exit_code(v.outcome)


def _verdict_slo(ns: argparse.Namespace, meta: dict[str, Any], path: Path) -> Any:
    """The SLO ``verdict`` judges by: --config's, else the one recorded in the timeline."""
    from aftershock.config import Layer, file_layer, load_slo, tree_layer
    if ns.config:
        base = file_layer(Path(ns.config))
    elif isinstance(meta.get("slo"), dict):
        base = tree_layer({"slo": meta["slo"]}, f"the SLO recorded in {path}")
    else:
        base = Layer()
    return load_slo(base, set_options=ns.set_options)


def _recorded_learned(meta: dict[str, Any], path: Path) -> Any:
    """The learned limits a timeline's header recorded, or None."""
    from aftershock.checks.learn import Learned
    data = meta.get("learned")
    if not isinstance(data, dict):
        return None
    try:
        return Learned.from_json(data)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: the recorded learned limits cannot be read ({e})",
                          "pass an aftershock timeline file") from None


def cmd_config(ns: argparse.Namespace) -> int:
    from aftershock.config import example_yaml
    if ns.config_command == "example":
        print(example_yaml(), end="")
        return EXIT_PASS
    config = _load_config(ns)
    import yaml  # here: `verdict` forks its reader before its imports (timeline_read)
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
    return EXIT_PASS


def cmd_check(ns: argparse.Namespace) -> int:
    """Posture checks of the target's live objects (docs/posture.md)."""
    from aftershock import kube
    from aftershock.kube.read_objects import run_check
    from aftershock.results import usable_results_dir
    config = _load_config(ns)  # ConfigError (bad posture settings, unknown waiver id) -> exit 2
    usable_results_dir(Path(config.results_dir))  # before the cluster, not after the checks
    cluster = kube.connect(config)
    try:
        from aftershock.experiment import say
        from aftershock.kube.ledger import look_at_start
        look_at_start(cluster, not ns.no_restore, say)
        return run_check(config, cluster.api_client, results_dir=Path(config.results_dir))
    finally:
        cluster.close()


def cmd_init(ns: argparse.Namespace) -> int:
    """Write a commented config for a target from its live objects."""
    from aftershock.init import InitRequest, run_init
    return run_init(InitRequest(ns.namespace, ns.deployment, ns.service, ns.kubeconfig,
                                ns.context, ns.output, ns.force))


def cmd_restore(ns: argparse.Namespace) -> int:
    """Restore what killed runs left; list it; exit 0 when nothing is left in place."""
    from aftershock import kube
    from aftershock.kube.ledger import restore_leftovers
    config = _load_config(ns)
    cluster = kube.connect(config)  # ClusterUnreachable -> exit 3
    try:
        found = restore_leftovers(cluster)
    except Exception as exc:  # a denied list or a lost connection: say it, no traceback
        raise CannotMeasure(f"could not look for leftovers: {exc}",
                            "it lists nodes, and Deployments and pods in the target's "
                            "namespaces: check the credentials' permissions") from exc
    finally:
        cluster.close()
    where = f"the nodes and namespace(s) {', '.join(config.target.namespaces)}"
    if not found.decisions:
        print(f"nothing to restore on {where}")
        return EXIT_PASS
    for did in found.done:
        print(f"restored: {did}")
    for d, why in found.failed:
        print(f"NOT restored: {d.leftover}: {why}")
    for d in found.decisions:
        if not d.undo:
            print(f"left in place: {d}")
    return EXIT_INCONCLUSIVE if found.left else EXIT_PASS


def cmd_report(ns: argparse.Namespace) -> int:
    """Print the human report of a results directory; exit with its overall verdict."""
    from aftershock.results import RESULTS_FILE, exit_code, load_results, overall
    path = Path(ns.results_dir) / RESULTS_FILE
    if not path.is_file():
        raise UsageError(f"no {RESULTS_FILE} in {ns.results_dir}",
                         "give the results directory of a run (default ./results)")
    data = load_results(path)  # UsageError naming what is wrong with it -> exit 2
    verdicts = [e["verdict"] for e in data["experiments"]]
    for e in data["experiments"]:
        print(f"{e['name']}: {e['message']}")
        check = e.get("check")
        if isinstance(check, dict):  # the experiment's own check: its summary and findings
            print(f"check {check.get('name')}: {check.get('outcome')}: {check.get('summary')}")
            print("".join(f"  {f}\n" for f in check.get("findings") or []), end="")
        print()
    posture = data.get("posture")
    if posture:
        verdicts.append(posture["verdict"])
        counts = ", ".join(f"{k} {v}" for k, v in posture["counts"].items() if v)
        print(f"posture: {posture['verdict']} ({counts or 'no findings'})")
    outcome = overall(verdicts)
    print(f"overall: {outcome.value if outcome else 'nothing ran'}")
    if ns.html:
        from aftershock.html_report import write_report
        html, took = write_report(Path(ns.results_dir))
        print(f"report: {html} ({html.stat().st_size / 1e6:.1f} MB, {took:.1f} s)")
    return exit_code(outcome)


def cmd_job(ns: argparse.Namespace, passthrough: list[str]) -> int:
    from aftershock import job
    if ns.job_command == "suite":
        config = _load_config(ns)
        ns.experiments = None
        return job.suite_main(config, Path(config.results_dir),
                              lambda: cmd_run(ns, passthrough, config),
                              rbac_check=not ns.no_rbac_check)
    config = _load_config(ns)
    if ns.job_command == "run":  # the results are fetched into it at the end: check it first
        from aftershock.results import usable_results_dir
        usable_results_dir(Path(config.results_dir))
    return job.cli(ns, passthrough, config, _overrides(ns))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # a full disk shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        # The reader went away (`aftershock verdict ... | head -1`): end quietly. Point
        # stdout at /dev/null so the interpreter's final flush does not complain again.
        _quiet_stdout()
        return EXIT_USAGE
    except OSError as e:
        if e.filename is not None or e.errno not in _OUTPUT_ERRNOS:
            raise
        # stdout itself failed (`config example > /dev/full`): say so, without a traceback.
        _quiet_stdout()
        print(f"aftershock: cannot write the output: {e.strerror}", file=sys.stderr)
        return EXIT_USAGE


#: Errors of writing to stdout that are the output's fault, not the command's.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT})


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    ns, rest = parser.parse_known_args(args)
    if rest and ns.command not in ("run", "job"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if ns.command == "run":
            return cmd_run(ns, rest)
        if ns.command == "verdict":
            return cmd_verdict(ns)
        if ns.command == "config":
            return cmd_config(ns)
        if ns.command == "check":
            return cmd_check(ns)
        if ns.command == "report":
            return cmd_report(ns)
        if ns.command == "restore":
            return cmd_restore(ns)
        if ns.command == "job":
            return cmd_job(ns, rest)
        if ns.command == "init":
            return cmd_init(ns)
        if ns.command == "history":
            from aftershock.history.command import cmd_history
            return cmd_history(ns, _load_config)
        parser.print_help()
        return EXIT_USAGE
    except AftershockError as e:
        print(f"aftershock: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
