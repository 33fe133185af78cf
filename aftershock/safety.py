"""Rollback that survives Ctrl-C and SIGTERM.

A deleted Job sends SIGTERM; Python's default for it is to die without running
``finally`` blocks, which would leave nodes cordoned and objects patched. So
SIGTERM is turned into :class:`Terminated` (a KeyboardInterrupt, so pytest
stops the session the way it does on Ctrl-C), and every active rollback is
shielded: a signal that arrives while one runs is held until it is done.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_lock = threading.Lock()
_shield_depth = 0
_held: list[int] = []
_installed = False


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM; unwinding runs every rollback on the way out."""


def _handle(signum: int, frame: FrameType | None) -> None:
    if _shield_depth:
        _held.append(signum)
        return
    raise Terminated(f"received {signal.Signals(signum).name}")


def install_signal_handlers() -> None:
    """Route SIGTERM (and SIGINT) through :func:`_handle`. Main thread only; idempotent."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    _installed = True


@contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGTERM/SIGINT while the body runs; re-raise one afterwards if any arrived."""
    global _shield_depth
    with _lock:
        _shield_depth += 1
    try:
        yield
    finally:
        with _lock:
            _shield_depth -= 1
            pending = _held[:] if _shield_depth == 0 else []
            if pending:
                _held.clear()
        if pending:
            raise Terminated(f"received {signal.Signals(pending[0]).name} during rollback")


@contextmanager
def rolled_back(rollback: Callable[[], Any]) -> Iterator[None]:
    """Run the body; run ``rollback`` afterwards whatever happened, shielded from signals."""
    try:
        yield
    finally:
        with shielded():
            rollback()
