"""The history in a run: learned limits when a run is judged, its results appended at the
end of the session. Neither ever makes a run lose its verdict: a store that cannot be
used is said on stderr (writing) or in the result (learning), and the run goes on."""

from __future__ import annotations

import dataclasses
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from aftershock.checks.learn import Key, Learned, judge_learned, learn
from aftershock.history.record import SECTION, experiment_row, run_row
from aftershock.history.store import HistoryStore, HistoryUnusable, shown, store_url

if TYPE_CHECKING:
    from aftershock.conclusion import Conclusion
    from aftershock.config import Config
    from aftershock.results import Results


def target_key(config: Config) -> str:
    """The name runs of this target are filed under: history.target, else ns/deployment."""
    return config.history.target or f"{config.target.namespace}/{config.target.deployment}"


def aftershock_version() -> str | None:
    try:
        return version("aftershock")
    except PackageNotFoundError:
        return None


def _warn(text: str) -> None:
    print(f"[aftershock] {text}", file=sys.__stderr__, flush=True)


def record_session(config: Config, results: Results, cluster: Any = None) -> int | None:
    """Append the session's results to the history; the run's id, None when nothing was
    appended (no experiment, history disabled, or the store could not be used: said)."""
    if not config.history.enabled or not results.experiments:
        return None
    url = store_url(config)
    facts: dict[str, Any] = {"namespace": config.target.namespace,
                             "deployment": config.target.deployment,
                             "aftershock_version": aftershock_version()}
    if cluster is not None:
        from aftershock.kube.profile import cluster_facts
        facts.update(cluster_facts(cluster, config.target.namespace, config.target.deployment))
    results.set_section(SECTION, {"target": target_key(config),
                                  "profile": config.history.profile,
                                  "store": shown(url), **facts})
    doc = results.to_json()
    try:
        with HistoryStore.open(url, create=True) as store:
            return store.append(
                run_row(doc, source=str(results.dir.absolute()), target=target_key(config),
                        profile=config.history.profile, facts=facts),
                [experiment_row(e) for e in doc["experiments"]])
    except Exception as e:
        from aftershock.errors import AftershockError
        why = e.problem if isinstance(e, AftershockError) else \
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        _warn(f"the run history was not written to {shown(url)}: {why}")
        return None


def learned_for(config: Config, experiment: str) -> Learned:
    """The limits learned for one experiment of this config's target and profile."""
    settings = config.slo.learn
    assert settings is not None
    key = Key(target_key(config), experiment, config.history.profile)
    url = store_url(config)
    try:
        with HistoryStore.open(url, create=False) as store:
            past = store.past_runs(key, settings.runs)
    except HistoryUnusable as e:
        return Learned(key, 0, note=f"static SLO alone: {e.problem}")
    return learn(past, key, settings)


def with_learned(conclusion: Conclusion, config: Config) -> Conclusion:
    """``conclusion`` with every verdict also judged against limits learned from the
    history (``slo.learn``); unchanged without it. Each entry records the limits used."""
    if config.slo.learn is None:
        return conclusion
    entries = dict(conclusion.entries)
    for name, entry in conclusion.entries.items():
        if entry.verdict is None:
            continue
        learned = learned_for(config, name)
        if learned.note:
            _warn(f"{name}: {learned.note}")
        entries[name] = dataclasses.replace(
            entry, verdict=judge_learned(entry.verdict, conclusion.slo, learned),
            extra={**entry.extra, "learned": learned.to_json()})
    return dataclasses.replace(conclusion, entries=entries)
