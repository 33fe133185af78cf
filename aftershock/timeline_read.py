"""Reading a timeline file, on two cores when it is large.

``aftershock verdict --timeline`` spends most of its time parsing a million request
lines, and the rest importing and judging, one core at a time. :class:`TimelineRead`
forks one child, before the command's heavier imports, that decodes the tail of the file
(from a block boundary of the serial reader on) and sends its part back through a pipe;
the parent imports meanwhile, decodes the head, and appends the tail. The result is the
serial reader's, timeline and errors alike: the tail is cut exactly where the serial
reader cuts a block, so every block is decoded the same way; a bad line at the end of
the head (fatal unless it is the file's last) makes the parent read on serially, as does
a child that fails in any way. One CPU, no ``os.fork`` or a small file: serial only.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

# The codec (msgspec, the timeline types) is imported where it is used: the CLI forks the
# tail's reader before, and both processes import it at once.
if TYPE_CHECKING:
    from aftershock.checks.timeline import Timeline

#: The longest line a timeline may have (a request is ~150 bytes; an endpoints record of
#: a thousand pods some 50 KB). A longer one is refused before it fills memory.
MAX_TIMELINE_LINE = 8 << 20
#: The serial reader's read size; block boundaries (and so how a block with a bad line
#: is halved and which error comes first) follow from it.
CHUNK = 1 << 20
#: Files smaller than this are read serially: a fork and a pipe cost more than they save.
MIN_PARALLEL_BYTES = 32 << 20
#: The parent's share of the file. It also imports the command's modules meanwhile, but
#: the child's part costs as much more again: pickled and unpickled, and decoded a little
#: slower (measured with benchmarks/verdict_speed.py on 1M requests, 143 MB).
HEAD_SHARE = 0.5


def line_blocks(f: BinaryIO, source: str, lines_before: Callable[[], int],
                carry: bytes = b"") -> Iterator[bytes]:
    """A binary file, from its current position, as blocks of whole lines of about
    CHUNK bytes (the last is what follows the last newline). ``carry``: bytes already
    read before the position, the start of the first block. A line longer than
    MAX_TIMELINE_LINE raises TimelineFormatError naming it: ``lines_before()`` is the
    number of lines the caller has taken in so far (the reader need not count them)."""
    from aftershock.checks.codec import TimelineFormatError
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            carry += chunk
            if len(carry) > MAX_TIMELINE_LINE:
                raise TimelineFormatError(f"{source}:{lines_before() + 1}: line longer than "
                                          f"{MAX_TIMELINE_LINE >> 20} MiB")
            continue
        block, carry = carry + chunk[:cut], chunk[cut:]
        yield block
        if len(carry) > MAX_TIMELINE_LINE:
            raise TimelineFormatError(f"{source}:{lines_before() + 1}: line longer than "
                                      f"{MAX_TIMELINE_LINE >> 20} MiB")
    if carry:
        yield carry


def read_serial(f: BinaryIO, source: str) -> tuple[Timeline, dict[str, Any]]:
    """The timeline in ``f`` and its header metadata, one block after the other."""
    from aftershock.checks.codec import TimelineDecoder
    meta: dict[str, Any] = {}
    dec = TimelineDecoder(source, meta.update)
    for block in line_blocks(f, source, lambda: dec.lines):
        dec.feed(block)
    return dec.finish(), meta


def can_fork() -> bool:
    """os.fork exists and this process may run on two or more CPUs."""
    if not hasattr(os, "fork"):
        return False
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) >= 2
    return (os.cpu_count() or 1) >= 2


def split_point(f: BinaryIO, size: int, head: int) -> int:
    """Where the serial reader ends the block that ends nearest after ``head`` bytes (the
    last newline of a chunk), or 0 when there is none before the end of the file."""
    for k in range(max(head // CHUNK, 0), size // CHUNK):
        f.seek(k * CHUNK)
        cut = f.read(CHUNK).rfind(b"\n") + 1
        if cut and k * CHUNK + cut < size:
            return k * CHUNK + cut
        if not cut:
            return 0  # inside a long line: rare, not worth a search
    return 0


class TimelineRead:
    """A timeline file being read: ``with TimelineRead(path) as r: ...; r.result()``.
    Entering forks the tail's reader when that pays (``min_bytes``: see
    MIN_PARALLEL_BYTES; tests force small files through it, the child's part starting
    about ``head`` bytes in, HEAD_SHARE of the file by default);
    leaving kills and reaps it, whatever happened meanwhile."""

    def __init__(self, path: Path, *, min_bytes: int | None = None,
                 head: int | None = None) -> None:
        self.path = path
        self.min_bytes = MIN_PARALLEL_BYTES if min_bytes is None else min_bytes
        self.head = head
        self.split = 0  # where the child's tail starts; 0: no child
        self.pid = 0
        self.rfd = -1

    def __enter__(self) -> TimelineRead:
        try:
            if not can_fork():
                return self
            size = os.stat(self.path).st_size
            if size < self.min_bytes:
                return self
            with open(self.path, "rb") as f:
                head = int(size * HEAD_SHARE) if self.head is None else self.head
                split = split_point(f, size, head)
        except OSError:
            return self  # result() reads serially and says what is wrong
        if not split:
            return self
        rfd, wfd = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(rfd)
            _child(self.path, split, wfd, parent)
        os.close(wfd)
        self.split, self.pid, self.rfd = split, pid, rfd
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1
        if self.pid:
            with contextlib.suppress(ProcessLookupError):  # it may have ended already
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: reaped already
                os.waitpid(self.pid, 0)
            self.pid = 0

    def _tail(self) -> Any:
        """The child's answer, or None when it has none (it failed or was killed)."""
        size = int.from_bytes(self._read(8) or b"\0", "big")
        data = self._read(size) if size else None
        status = 0  # when SIGCHLD is ignored, the whole answer is what tells it went well
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        if status != 0 or data is None:
            return None
        return pickle.loads(data)

    def _read(self, size: int) -> bytearray | None:
        """Exactly ``size`` bytes from the child, into one buffer (no copies of a
        payload of tens of megabytes), or None when it ended sooner."""
        buf = bytearray(size)
        view, got = memoryview(buf), 0
        while got < size:
            n = os.readv(self.rfd, [view[got:]])
            if not n:
                return None
            got += n
        view.release()
        return buf

    def result(self, while_waiting: Callable[[dict[str, Any]], None] | None = None
               ) -> tuple[Timeline, dict[str, Any]]:
        """The timeline and its header metadata, exactly as the serial reader gives them.
        ``while_waiting``: called with the head's metadata when the head is read well and
        the child still reads the tail (only then), to do work that would wait for it."""
        from aftershock.checks.codec import TimelineDecoder, TimelineFormatError
        source = str(self.path)
        with open(self.path, "rb") as f:
            if not self.split:
                return read_serial(f, source)
            meta: dict[str, Any] = {}
            dec = TimelineDecoder(source, meta.update)
            blocks = line_blocks(f, source, lambda: dec.lines)
            at = 0
            for block in blocks:
                dec.feed(block)
                at += len(block)
                if at >= self.split:
                    break
            tail = None
            if at == self.split and dec.pending_error is None:
                if while_waiting is not None:
                    while_waiting(meta)
                tail = self._tail()
            self._stop()
            if tail is None:  # read on serially: the same blocks, the same verdict
                for block in blocks:
                    dec.feed(block)
                return dec.finish(), meta
            if tail[0] == "error":
                raise TimelineFormatError(tail[1])
            _, columns, in_order, observations, markers, metas = tail
            req = dec.tl.requests
            starts = columns[0]
            if not in_order or (req.starts and starts and starts[0] < req.starts[-1]):
                req._sorted = False
            del tail
            for name, col in zip(_COLUMNS, columns, strict=True):
                col[:0] = getattr(req, name)  # one copy of the head, none of the tail
                setattr(req, name, col)
            dec.tl.observations.extend(observations)
            dec.tl.markers.extend(markers)
            for m in metas:
                meta.update(m)
            return dec.finish(), meta


_COLUMNS = ("starts", "latency_ms", "statuses", "errors", "new_connection", "names", "pods")


def _child(path: Path, split: int, wfd: int, parent: int) -> None:
    """Decode the file from ``split`` on, send the part (or its error) to ``wfd``, exit."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent cleans up
        _die_with(parent)
        from aftershock.checks.codec import TimelineFormatError
        source = str(path)
        try:
            answer: tuple[Any, ...] = _decode_tail(path, source, split, 0)
        except TimelineFormatError:
            # Its message names a line: count the head's lines, only now, and read again.
            with open(path, "rb") as f:
                head = _count_lines(f, split)
            try:
                answer = _decode_tail(path, source, split, head)
            except TimelineFormatError as e:
                answer = ("error", str(e))
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(wfd, "wb") as w:
            w.write(len(data).to_bytes(8, "big"))
            w.write(data)
        code = 0
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Have Linux kill this process when the parent dies, even of SIGKILL (which leaves
    it no ``finally``); elsewhere a write to the closed pipe ends it."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before that took effect
        os._exit(1)


def _count_lines(f: BinaryIO, end: int) -> int:
    n, at = 0, 0
    while at < end:
        chunk = f.read(min(CHUNK, end - at))
        if not chunk:
            break
        n += chunk.count(b"\n")
        at += len(chunk)
    return n


def _decode_tail(path: Path, source: str, split: int, lines_before: int) -> tuple[Any, ...]:
    from aftershock.checks.codec import TimelineDecoder
    metas: list[dict[str, Any]] = []
    dec = TimelineDecoder(source, metas.append)
    dec.lines = lines_before
    with open(path, "rb") as f:
        # The serial reader reads CHUNK at a time from 0: the same reads from here on.
        f.seek(split)
        carry = f.read(-split % CHUNK)
        for block in line_blocks(f, source, lambda: dec.lines, carry):
            dec.feed(block)
    tl, req = dec.tl, dec.tl.requests
    return ("ok", tuple(getattr(req, name) for name in _COLUMNS), req._sorted,
            tl.observations, tl.markers, metas)
