"""Reads the load's records as they are written: only what is new since the last read.

:meth:`LoadDriver.requests` re-reads every records file whole, which is right once the load
has stopped but too costly every tick of a running fault. A :class:`RecordsTail` keeps,
per records file, the offset it has read to and the torn end of a line still being
written; each :meth:`RecordsTail.read_new` decodes only the complete lines appended since
(a records file only ever grows while its load runs). Files that appear later (a worker's)
are read from their start.
"""

from __future__ import annotations

import os
from pathlib import Path

from aftershock.checks.codec import TimelineFormatError, decode
from aftershock.checks.timeline import Requests

_CHUNK = 1 << 16


class RecordsTail:
    """The requests appended to ``records_dir/requests-*.jsonl`` since the last read.

    ``from_now``: skip what the files hold already (up to their last complete line), so a
    tail opened at the fault start reads only from there.
    """

    def __init__(self, records_dir: Path, *, from_now: bool = False) -> None:
        self.records_dir = Path(records_dir)
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}
        if from_now:
            for path in self._files():
                self._offsets[path] = _after_last_newline(path)

    def _files(self) -> list[Path]:
        try:
            return sorted(self.records_dir.glob("requests-*.jsonl"))
        except OSError:
            return []

    def read_new(self) -> Requests:
        """The complete records appended since the last call, sorted by start."""
        lines: list[str] = []
        for path in self._files():
            offset = self._offsets.get(path, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            if not data:
                continue
            self._offsets[path] = offset + len(data)
            data = self._partial.pop(path, b"") + data
            cut = data.rfind(b"\n") + 1
            if cut < len(data):
                self._partial[path] = data[cut:]  # a line still being written
            if cut:
                lines += data[:cut].decode("utf-8", errors="replace").splitlines()
        try:
            return decode(lines, source=str(self.records_dir)).requests
        except TimelineFormatError:
            # A corrupt record while the load runs: the verdict reads the files whole
            # afterwards and says so; a stop condition must not crash the fault's rollback.
            return Requests()


def _after_last_newline(path: Path) -> int:
    """The offset just after the last newline of a file (0 when it has none)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            pos = end
            while pos > 0:
                start = max(0, pos - _CHUNK)
                f.seek(start)
                block = f.read(pos - start)
                nl = block.rfind(b"\n")
                if nl >= 0:
                    return start + nl + 1
                pos = start
    except OSError:
        return 0
    return 0
