"""``aftershock run --dry-run`` and ``--confirm``: the plan shown before a fault, and the y/N.

The runner asks its ``preview`` (when it has one) once the target is resolved and the fault
has something to act on, before any load starts:

- :class:`DryRun` shows the plan and raises :class:`NotRun`: the experiment ends there,
  nothing is started, injected or recorded (the pytest plugin reports the test skipped);
- :class:`Confirm` shows the plan and asks the person at the terminal; anything but "y"
  (or "yes"), an empty line and end of input included, declines: the experiment is then
  inconclusive with :data:`DECLINED` as its reason, and no load or fault was started.

The question is read from the controlling terminal (``/dev/tty``), past pytest's capture of
stdin and stdout, as the progress lines are written past it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from aftershock.checks.slo import SLO
from aftershock.faults.base import Fault
from aftershock.faults.plan import describe, plan_of
from aftershock.seams import Target


class Mode(StrEnum):
    """How ``aftershock run`` treats each experiment."""

    RUN = "run"
    DRY_RUN = "dry-run"  # show the plan, run nothing
    CONFIRM = "confirm"  # show the plan, ask before each experiment


#: The fixtures through which an experiment reaches the runner (and so its preview). A dry
#: run does not run a test that uses none of them and declares no fault (``fault`` marker,
#: which says it injects through the runner, as the shipped Chaos Toolkit experiment does
#: with a fixture it asks for only when configured): it could not say what that test does.
RUNNER_FIXTURES = frozenset({"runner", "run", "arun"})

#: The reason a ``--confirm`` experiment the operator declined is inconclusive.
DECLINED = "skipped by the operator at the --confirm prompt: no load, nothing injected"

#: ``preview(experiment, fault, target)``: None to go on, or why the experiment stops here.
Preview = Callable[[str, Fault, Target], str | None]


class NotRun(BaseException):
    """A dry run planned the experiment and ran nothing: there is nothing to record.

    A BaseException, as pytest's own skip is: the runner's error handling (which records
    an errored run as inconclusive) lets it through."""


def ask_terminal(question: str, tty: str = "/dev/tty") -> bool:
    """Ask a y/N question at the controlling terminal; True only for "y" or "yes"."""
    try:
        fd = os.open(tty, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    # Unbuffered bytes: a terminal cannot seek, which a text "r+" file would need.
    with open(fd, "r+b", buffering=0) as terminal:
        terminal.write(question.encode())
        answer = terminal.readline()  # b"" at end of input: no
    return answer.decode(errors="replace").strip().lower() in ("y", "yes")


@dataclass
class DryRun:
    """Show each experiment's plan and run nothing (``not_run`` makes what is raised)."""

    show: Callable[[str], None]
    slo: SLO
    not_run: Callable[[str], BaseException] = NotRun

    def __call__(self, experiment: str, fault: Fault, target: Target) -> str | None:
        self.show(describe(experiment, plan_of(fault, target), self.slo, target))
        raise self.not_run(f"dry run: planned {experiment}, nothing injected")


@dataclass
class Confirm:
    """Show each experiment's plan and ask before anything starts."""

    show: Callable[[str], None]
    slo: SLO
    ask: Callable[[str], bool] = ask_terminal

    def __call__(self, experiment: str, fault: Fault, target: Target) -> str | None:
        self.show(describe(experiment, plan_of(fault, target), self.slo, target))
        if self.ask(f"Run {experiment} (load, then this fault)? [y/N] "):
            return None
        self.show(f"{experiment}: {DECLINED}")
        return DECLINED
