"""aftershock inside Chaos Toolkit: a control and probes for ``chaos run``.

Declare the control in an experiment's ``controls``::

    "controls": [{"name": "aftershock",
                  "provider": {"type": "python", "module": "aftershock.chaostoolkit"}}]

Before the steady-state hypothesis it starts aftershock's load and watches and waits for
aftershock's own steady-state gate; the method is aftershock's fault phase; after the
rollbacks it waits for the target to recover and the after phase, judges the run with
aftershock's verdict, writes ``results/`` as ``aftershock run`` does, and puts the verdict,
the outage windows and the path of results.json into the journal under ``aftershock``. A
failed verdict marks the journal deviated, an inconclusive one failed, so ``chaos run``
exits non-zero (:mod:`aftershock.chaostoolkit.session`).

The configuration comes from the experiment's ``configuration`` block: ``aftershock`` (the
configuration itself, as a mapping) or ``aftershock_config`` (the path of an
aftershock.yaml); with neither, ``$AFTERSHOCK_CONFIG`` or ./aftershock.yaml. ``AFTERSHOCK_*``
variables apply on top, as for ``aftershock run``. Probes for the hypothesis or the method:
:mod:`aftershock.chaostoolkit.probes`. Guide: docs/chaostoolkit.md.
"""

from __future__ import annotations

import os
from typing import Any

from chaoslib.exceptions import InterruptExecution

from aftershock.chaostoolkit import session as _state
from aftershock.chaostoolkit.session import Session, Stopped, annotate, journal_entry
from aftershock.config import Config
from aftershock.config.sources import layers, load_config, settle, tree_layer
from aftershock.errors import AftershockError
from aftershock.experiment import say

__all__ = ["after_experiment_control", "before_experiment_control", "before_method_control",
           "cleanup_control", "config_of"]


def config_of(configuration: dict[str, Any] | None) -> Config:
    """The aftershock configuration an experiment's ``configuration`` block names."""
    configuration = configuration or {}
    inline = configuration.get("aftershock")
    if isinstance(inline, dict):
        return settle(layers(tree_layer(inline, "the experiment's configuration.aftershock"),
                             os.environ))
    path = configuration.get("aftershock_config")
    return load_config(str(path) if path else None)


def _site(config: Config) -> Any:
    from aftershock import kube
    from aftershock.kube.site import KubeSite
    return KubeSite(kube.connect(config), config, say)


def before_experiment_control(context: dict[str, Any],
                              configuration: dict[str, Any] | None = None,
                              **kwargs: Any) -> None:
    """Start the load and watches; return once aftershock's steady state held."""
    try:
        config = config_of(configuration)
        _state.active = Session.of(config, _site, str(context.get("title") or "experiment"))
        _state.active.start()
    except (AftershockError, Stopped) as exc:
        raise InterruptExecution(f"aftershock: {exc}") from exc


def before_method_control(context: Any, **kwargs: Any) -> None:
    """Open the fault window: FAULT_START, then Chaos Toolkit runs the method."""
    if _state.active is None:
        raise InterruptExecution("aftershock: the control did not start (see above)")
    try:
        _state.active.method_starts()
    except Stopped as exc:
        raise InterruptExecution(f"aftershock: {exc}") from exc


def after_experiment_control(context: Any, state: dict[str, Any], **kwargs: Any) -> None:
    """Judge the run, write results/ and put the verdict into the journal (``state``).

    Chaos Toolkit swallows a control's exceptions, so any failure here marks the journal
    failed itself: a broken measurement must never read as a completed run.
    """
    session, _state.active = _state.active, None
    if session is None:
        state["status"] = "failed"
        state["aftershock"] = {"verdict": "inconclusive",
                               "reason": "the aftershock control never started"}
        return
    try:
        conclusion = session.finish(state.get("status"))
        entry = journal_entry(session, conclusion)
    except Exception as exc:  # the journal must say it, whatever it was
        state["status"] = "failed"
        state["aftershock"] = {"verdict": "inconclusive",
                               "reason": f"{type(exc).__name__}: {exc}"}
        return
    finally:
        _close(session)
    annotate(state, entry)
    say(f"{entry['name']}: {entry['verdict']}: {entry['message']} (results: "
        f"{entry['results']})")


def cleanup_control() -> None:
    """Chaos Toolkit ended without the after-experiment control: let the runner wind down."""
    session, _state.active = _state.active, None
    if session is not None:
        session.window.interrupted = "the Chaos Toolkit run ended without its last control"
        session.window.ended.set()
        _close(session)


def _close(session: Session) -> None:
    cluster = getattr(session.runner.site, "cluster", None)
    if cluster is not None and (session._thread is None or not session._thread.is_alive()):
        cluster.close()
