"""``aftershock history``: the trend per experiment; ``aftershock history import DIR...``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aftershock.errors import EXIT_PASS, UsageError

if TYPE_CHECKING:
    from aftershock.history.store import TrendRow

# The store (SQLAlchemy) is imported by the functions that use it, not here: every
# command builds this parser, and `aftershock verdict` must not pay for SQLAlchemy.


def add_parser(sub: Any, epilog: str, config_options: Any) -> None:
    h = sub.add_parser(
        "history", help="the run history: trend per experiment, or import old results",
        description="Show the last runs of every experiment from the history store (verdict, "
                    "longest outage, error rate and p99 during the fault), or seed the store "
                    "from old results directories. Exit 2 when the store is missing or its "
                    "schema is newer than this aftershock.",
        epilog=epilog + "\nexamples:\n  aftershock history --last 20 --experiment pod-kill\n"
                        "  aftershock history import nightly-*/results --target shop",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    config_options(h)
    _store_option(h)
    h.add_argument("--target", help="only this target (history.target, or namespace/"
                                    "deployment)")
    h.add_argument("--experiment", help="only this experiment")
    h.add_argument("--profile", help="only this profile (history.profile)")
    h.add_argument("--last", type=int, default=10, metavar="N",
                   help="runs per experiment (default 10)")
    hsub = h.add_subparsers(dest="history_command", metavar="ACTION")
    imp = hsub.add_parser(
        "import", help="seed the store from old results directories",
        description="Append the runs of results directories (each with a results.json) to "
                    "the store. A directory written by a run that kept a history says its "
                    "own target and profile; for an older one give --target (and "
                    "--profile). A run already in the store is not added twice.")
    imp.add_argument("dirs", nargs="+", metavar="DIR", help="results directories")
    _store_option(imp)
    imp.add_argument("--target", dest="import_target",
                     help="the target of directories that do not say theirs")
    imp.add_argument("--profile", dest="import_profile", default=None,
                     help="the profile of directories that do not say theirs (default: "
                          "history.profile)")


def _store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="PATH|URL", default=argparse.SUPPRESS,
                   help="the store: a SQLite file or a postgresql:// URL (default: "
                        "history.url / history.path of the config, else "
                        "./aftershock-history.sqlite)")


def _config(ns: argparse.Namespace, load: Any) -> Any:
    """The config when one is given (file, AFTERSHOCK_CONFIG, ./aftershock.yaml), else None."""
    from aftershock.config import DEFAULT_CONFIG_FILE, ENV_CONFIG_FILE
    if ns.config or os.environ.get(ENV_CONFIG_FILE) or Path(DEFAULT_CONFIG_FILE).exists():
        return load(ns)
    return None


def _url(ns: argparse.Namespace, config: Any) -> str:
    store = getattr(ns, "store", None)
    if store:
        return str(store)
    from aftershock.history.store import sqlite_url, store_url
    if config is not None:
        return store_url(config)
    from aftershock.config.history import DEFAULT_HISTORY_FILE
    return sqlite_url(Path(DEFAULT_HISTORY_FILE))


def _cell(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "%":
        return f"{x * 100:.3g} %"
    return f"{x:.0f} {unit}" if unit == "ms" else f"{x:.1f} {unit}"


def trend_table(rows: list[TrendRow]) -> str:
    """One block per (target, experiment, profile), one line per run, oldest first."""
    out: list[str] = []
    key = None
    header = f"  {'run':>6}  {'finished':<20}  {'verdict':<12}  {'longest outage':>14}  " \
             f"{'error rate':>10}  {'p99':>8}  {'recovery':>8}"
    for r in rows:
        if (r.target, r.experiment, r.profile) != key:
            key = (r.target, r.experiment, r.profile)
            if out:
                out.append("")
            out += [f"{r.experiment}  (target {r.target}, profile {r.profile})", header]
        verdict = f"{r.verdict} (aborted)" if r.aborted else r.verdict
        out.append(f"  {r.run_id:>6}  {(r.finished or '-'):<20}  {verdict:<12}  "
                   f"{_cell(r.longest_outage_ms, 'ms'):>14}  {_cell(r.error_rate, '%'):>10}  "
                   f"{_cell(r.p99_ms, 'ms'):>8}  {_cell(r.recovery_s, 's'):>8}")
    return "\n".join(out)


def cmd_history(ns: argparse.Namespace, load: Any) -> int:
    from aftershock.history.store import HistoryStore, shown
    config = _config(ns, load)
    url = _url(ns, config)
    if ns.history_command == "import":
        return _import(ns, config, url)
    if ns.last < 1:
        raise UsageError(f"--last must be at least 1, not {ns.last}")
    with HistoryStore.open(url, create=False) as store:
        rows = store.trend(target=ns.target, experiment=ns.experiment, profile=ns.profile,
                           last=ns.last)
    if not rows:
        print(f"no runs in {shown(url)} match")
        return EXIT_PASS
    print(trend_table(rows))
    return EXIT_PASS


def _import(ns: argparse.Namespace, config: Any, url: str) -> int:
    from aftershock.history.record import SECTION, experiment_row, run_row
    from aftershock.history.store import HistoryStore, shown
    from aftershock.results import RESULTS_FILE, load_results
    docs = []
    for d in ns.dirs:
        path = Path(d) / RESULTS_FILE
        if not path.is_file():
            raise UsageError(f"no {RESULTS_FILE} in {d}", "give results directories of runs")
        doc = load_results(path)  # UsageError naming what is wrong -> exit 2
        section: dict[str, Any] = doc[SECTION] if isinstance(doc.get(SECTION), dict) else {}
        target = section.get("target") or ns.import_target
        if not target:
            raise UsageError(f"{path} does not say which target it ran against",
                             "give --target NAME (history.target, or namespace/deployment)")
        profile = (section.get("profile") or ns.import_profile
                   or (config.history.profile if config is not None else "default"))
        docs.append((d, doc, str(target), str(profile), section))
    added = 0
    with HistoryStore.open(url, create=True) as store:
        for d, doc, target, profile, section in docs:
            run_id = store.append(
                run_row(doc, source=str(Path(d).absolute()), target=target, profile=profile,
                        facts=section),
                [experiment_row(e) for e in doc["experiments"]])
            added += run_id is not None
            print(f"{d}: {'added as run ' + str(run_id) if run_id else 'already in the store'}"
                  f" ({len(doc['experiments'])} experiments, target {target}, profile "
                  f"{profile})")
    print(f"{added} of {len(docs)} runs added to {shown(url)}")
    return EXIT_PASS
