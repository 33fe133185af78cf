"""Draws the :class:`~aftershock.progress.model.Board` for a person.

At a terminal, each experiment has one live line (rich), redrawn as it goes; what the suite
says in between (a pod deleted, an eviction refused) scrolls above it. Anywhere else (a Job's
log, CI) each change the board notices is one timestamped line, and so is each saying.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from aftershock.progress.model import Board, Stage, plain_line

_STYLE = {Stage.FAULT: "bold yellow", Stage.RECOVERY: "yellow", Stage.DONE: "bold"}


class Progress:
    """Where the runner reports progress: ``update`` facts, ``note`` sayings.

    ``live`` defaults to whether ``stream`` is a terminal; ``close_stream``: :meth:`close`
    closes it (a stream opened for the progress alone).
    """

    def __init__(self, stream: TextIO, *, live: bool | None = None,
                 clock: Callable[[], float] = time.time, close_stream: bool = False) -> None:
        self.board = Board()
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.clock = clock
        self.close_stream = close_stream
        self._console = Console(file=stream, highlight=False, markup=False) if self.live \
            else None
        self._shown: Live | None = None
        self._mid_line = False
        self._lock = threading.Lock()  # a fault may say things from its own thread

    def update(self, experiment: str, **fields: Any) -> None:
        """Report facts about one experiment (see :class:`~aftershock.progress.model.Status`)."""
        with self._lock:
            update = self.board.update(experiment, **fields)
            if self._console is None:
                if update.changed:
                    self._write(update.status.line())
                return
            self._fresh_line()
            if "fault" in update.changed and update.status.fault:
                # What the fault did stays readable above the line that moves on.
                self._console.print(f"[aftershock] {experiment}: {update.status.fault}")
            if self._shown is None:
                self._shown = Live(self._render(), console=self._console, auto_refresh=False,
                                   redirect_stdout=False, redirect_stderr=False)
                self._shown.start()
            self._shown.update(self._render(), refresh=True)
            if update.status.stage is Stage.DONE:
                self._shown.stop()  # its last line stays on the screen
                self._shown = None
                self.board.statuses.pop(experiment)

    def note(self, text: str) -> None:
        """Something the suite says: above the live lines, or a timestamped line."""
        with self._lock:
            if self._console is None:
                self._write(text)
            else:
                self._fresh_line()
                self._console.print(f"[aftershock] {text}")

    def show(self, text: str) -> None:
        """A block for a person to read as it is (a dry run's plan): no timestamp, above
        the live lines."""
        with self._lock:
            self._fresh_line()
            if self._console is None:
                self.stream.write(text + "\n")
                self.stream.flush()
            else:
                self._console.print(text)

    def begin_line(self) -> None:
        """Someone else (pytest: ``experiments/test_x.py ``) may have left the cursor
        mid-line: the next output starts on a line of its own."""
        with self._lock:
            self._mid_line = True

    def _fresh_line(self) -> None:
        if self._mid_line:
            self._mid_line = False
            self.stream.write("\n")

    def close(self) -> None:
        with self._lock:
            if self._shown is not None:
                self._shown.stop()
                self._shown = None
            if self.close_stream and not self.stream.closed:
                self.stream.close()

    def _render(self) -> Group:
        # One screen line each, cut at the terminal's width: a wrapped line cannot be
        # redrawn in place.
        return Group(*(Text(s.line(), style=_STYLE.get(s.stage, ""), no_wrap=True,
                            overflow="ellipsis") for s in self.board.statuses.values()))

    def _write(self, text: str) -> None:
        self._fresh_line()
        self.stream.write(plain_line(text, self.clock()) + "\n")
        self.stream.flush()
