"""The progress output as a person and a log see it: a live line redrawn in place under a
pseudo-terminal (pexpect), one timestamped line per change through a pipe."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pexpect

SCRIPT = Path(__file__).with_name("progress_run.py")
ENV = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
ENV.pop("NO_COLOR", None)
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[aftershock\] "


def test_at_a_terminal_the_live_line_is_redrawn_while_the_run_goes_on() -> None:
    child = pexpect.spawn(sys.executable, [str(SCRIPT)], env=ENV, encoding="utf-8",
                          dimensions=(40, 160), timeout=60)
    child.logfile_read = shown = io.StringIO()
    seen: list[int] = []
    for _ in range(3):  # three successive redraws of the steady-state line, in order
        child.expect(r"pod-kill: steady state (\d+)/12 s")
        seen.append(int(child.match.group(1)))
    assert seen == sorted(seen) and len(set(seen)) >= 2, seen
    child.expect(r"pod-kill: fault \d+/30 s")
    child.expect(r"pod-kill: after the fault \d+/12 s")
    child.expect(r"pod-kill: done \(pass\)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    text = shown.getvalue()
    # Drawn in place: each redraw erases the line it replaces (rich's Live); no timestamps.
    assert text.count("\x1b[2K") >= 10, repr(text[:2000])
    assert not re.search(STAMP, text)


def test_through_a_pipe_each_change_is_one_timestamped_line() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          env=ENV, timeout=60, check=True)
    lines = proc.stdout.splitlines()
    assert all(re.match(STAMP, x) for x in lines), lines
    assert "\x1b" not in proc.stdout
    said = [re.sub(STAMP, "", x) for x in lines]
    assert said[0].startswith("pod-kill: watching demo/web")
    # No line repeats the one before it, and the ~70 ticks of the run are not lines.
    assert all(a != b for a, b in pairwise(said))
    stages = [m.group(1) for x in said
              if (m := re.match(r"pod-kill: (steady state|fault|after the fault|done) ", x))]
    assert stages == ["steady state", "fault", "fault", "fault", "after the fault", "done"], \
        said
    assert len(said) == 7, said
