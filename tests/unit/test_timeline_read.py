"""The two-core timeline reader gives exactly the serial reader's timeline or error.

Small files are forced through the parallel path (a fork per case): the serial reader's
read size is made tiny so that a few kilobytes span many blocks, and the split point is
swept over the whole file, so the tail starts at a dozen block boundaries in turn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from verdict_helpers import T0

from aftershock import timeline_read
from aftershock.checks.codec import TimelineFormatError, decode, request_line
from aftershock.results import read_timeline
from aftershock.timeline_read import TimelineRead

pytestmark = pytest.mark.skipif(not timeline_read.can_fork(),
                                reason="the parallel path needs os.fork and two CPUs")

GOOD = request_line(T0, 1.5, 200, "", None, "/")
REQS = "\n".join(request_line(T0 + i / 10, 1.0 + i, 200 if i % 7 else 503,
                              "" if i % 7 else "http", None, f"/p{i % 3}")
                 for i in range(40)) + "\n"
HEADER = '{"record": "timeline", "schema": 1, "experiment": "x", "slo": {"a": 1}}\n'
POD = ('{"record": "pod", "at": 1700000000.25, "name": "web-1", "phase": "Running", '
       '"ready": true, "deleting": false, "restarts": 0}\n')
MARK = '{"record": "marker", "at": 1700000001, "kind": "fault_start", "detail": "kill"}\n'
NAN = GOOD.replace('"latency_ms":1.5', '"latency_ms":NaN') + "\n"
TORN = GOOD[:30]

CASES = {
    "well formed": HEADER + MARK + POD * 5 + REQS * 3,
    "no header": REQS * 4,
    "unsorted": REQS + GOOD.replace('"start":', '"start":-') + "\n" + REQS * 2,
    "unsorted at every seam": (REQS + GOOD + "\n") * 4,
    "tail holds observations and markers": REQS * 2 + POD * 3 + MARK + REQS,
    "second header in the tail": HEADER + REQS * 2 + HEADER.replace('"x"', '"y"') + REQS,
    "newer schema in the tail": HEADER + REQS * 2 + HEADER.replace('1,', '9,') + REQS,
    "truncated last line": REQS * 3 + TORN,
    "torn line then more": REQS * 2 + TORN + "\n" + REQS,
    "torn line at the end of the head": TORN + "\n" + REQS * 3,
    "torn line then a bad byte": REQS + TORN + "\n" + "\udcff" + REQS * 2,
    "garbage line in the tail": REQS * 3 + "garbage\n" + REQS,
    # Which error wins depends on the blocks: a block that is not UTF-8 is refused as a
    # whole, before its lines are read. The child must cut blocks where the serial does.
    "garbage line then a bad byte": (REQS + "garbage\n" + GOOD + "\n" + "\udcff\n") * 4,
    "garbage line in the head": REQS + "garbage\n" + REQS * 3,
    "not UTF-8 in the tail": REQS * 3 + GOOD.replace("/", "/\udcff") + "\n" + REQS,
    "not UTF-8 in the head": GOOD.replace("/", "/\udcff") + "\n" + REQS * 3,
    "NaN in the tail": REQS * 3 + NAN + REQS,
    "NaN last": REQS * 3 + NAN,
    "two records on one line": REQS * 2 + GOOD + "," + GOOD + "\n" + REQS,
    "blank lines": REQS + "\n\n" + REQS + "\n" + REQS,
    "no final newline": REQS * 3 + GOOD,
    "a long line": REQS * 2 + '{"x": "' + "a" * 3000 + '"}\n' + REQS,
}


def _shape(read: object) -> object:
    """What a read gave: every column, the observations, markers and metadata; or the
    error's type and text."""
    try:
        tl, meta = read()  # type: ignore[operator]
    except (TimelineFormatError, OSError) as e:
        return (type(e).__name__, str(e))
    r = tl.requests
    return ([list(getattr(r, c)) for c in timeline_read._COLUMNS], r._sorted,
            tl.observations, tl.markers, meta)


@pytest.fixture
def small_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of ~300 bytes, lines up to 2 KB: a few KB of timeline hold many blocks."""
    monkeypatch.setattr(timeline_read, "CHUNK", 300)
    monkeypatch.setattr(timeline_read, "MAX_TIMELINE_LINE", 2048)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


def _parallel(path: Path, head: int) -> tuple[object, int]:
    """The parallel read with the child's tail starting near ``head`` bytes in."""
    with TimelineRead(path, min_bytes=0, head=head) as reading:
        split = reading.split
        return _shape(reading.result), split


@pytest.mark.usefixtures("small_reads")
@pytest.mark.parametrize("name", CASES)
def test_parallel_read_is_the_serial_read_at_every_split(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, CASES[name])
    serial = _shape(lambda: read_timeline(path))
    splits = set()
    size = path.stat().st_size
    for head in range(0, size, size // 12):
        parallel, split = _parallel(path, head)
        assert parallel == serial, (name, head, split)
        splits.add(split)
    assert len(splits - {0}) >= 3  # the tail really was read by a child, from several places


@pytest.mark.usefixtures("small_reads")
@pytest.mark.parametrize("name", ["well formed", "unsorted", "NaN in the tail",
                                  "garbage line in the tail", "truncated last line"])
def test_serial_read_is_decode_of_the_lines(tmp_path: Path, name: str) -> None:
    # The reference the parallel read is held to is itself the line-by-line decoder's.
    path = _write(tmp_path, CASES[name])
    lines = CASES[name].split("\n")
    if CASES[name].endswith("\n"):
        lines.pop()

    def by_line() -> object:
        meta: dict[str, object] = {}
        return decode(lines, source=str(path), on_meta=meta.update), meta

    assert _shape(lambda: read_timeline(path)) == _shape(by_line)


@pytest.mark.usefixtures("small_reads")
def test_a_child_that_fails_leaves_the_parent_to_read_on(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> object:
        raise RuntimeError("the child fails")

    monkeypatch.setattr(timeline_read, "_decode_tail", broken)  # inherited by the fork
    path = _write(tmp_path, CASES["well formed"])
    parallel, split = _parallel(path, 400)
    assert split and parallel == _shape(lambda: read_timeline(path))


@pytest.mark.usefixtures("small_reads")
def test_the_child_is_killed_and_reaped_when_the_reader_is_left(tmp_path: Path) -> None:
    path = _write(tmp_path, CASES["well formed"] * 3)
    # As Ctrl-C during the parent's imports:
    with pytest.raises(KeyboardInterrupt), TimelineRead(path, min_bytes=0) as reading:
        pid = reading.pid
        assert pid
        raise KeyboardInterrupt
    assert reading.pid == 0
    with pytest.raises(ChildProcessError):  # reaped: no zombie left to wait for
        os.waitpid(pid, os.WNOHANG)


@pytest.mark.usefixtures("small_reads")
def test_no_child_for_a_small_file_a_directory_or_a_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, CASES["well formed"])
    with TimelineRead(path, min_bytes=path.stat().st_size + 1) as reading:
        assert reading.split == 0 and reading.pid == 0
        assert _shape(reading.result) == _shape(lambda: read_timeline(path))
    for odd in (tmp_path, tmp_path / "missing.jsonl"):
        with TimelineRead(odd, min_bytes=0, head=0) as reading:
            assert reading.pid == 0
            with pytest.raises(OSError):
                reading.result()


# ---- the command: `aftershock verdict` on two cores says exactly what it says on one.

SLO_OK = {"during": {"max_outage_ms": 2000.0, "max_error_rate": 0.5}}


def _timeline_text(slo: object, tail: str = "") -> str:
    from verdict_helpers import experiment

    from aftershock.checks.codec import encode
    lines = list(encode(experiment([(12, 12.3)], rate=10.0), {"experiment": "e", "slo": slo}))
    return "\n".join(lines) + "\n" + tail


def _verdict_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str], *extra: str) -> list[object]:
    """(exit code, stdout, stderr) of `aftershock verdict`, read serially and in parallel."""
    from aftershock import cli
    tails: list[int] = []
    real = TimelineRead._tail
    monkeypatch.setattr(TimelineRead, "_tail",
                        lambda self: (tails.append(1), real(self))[1])
    runs: list[object] = []
    for least in (1 << 40, 0):
        monkeypatch.setattr(timeline_read, "MIN_PARALLEL_BYTES", least)
        code = cli.main(["verdict", "--timeline", str(path), *extra])
        out, err = capsys.readouterr()
        runs.append((code, out, err))
    assert tails == [1]  # the second run's tail came from a child
    return runs


@pytest.mark.usefixtures("small_reads")
@pytest.mark.parametrize(("slo", "tail", "extra", "says"), [
    (SLO_OK, "", (), "pass"),
    (SLO_OK, "", ("--set", "slo.during.max_outage_ms=100"), "fail"),
    (SLO_OK, "", ("--json",), '"verdict": "pass"'),
    # The SLO is made while the child reads the tail; a header there makes it again.
    (SLO_OK, '{"record": "timeline", "schema": 1, "slo": {"during": {"max_outage_ms": 1}}}\n',
     (), "fail"),
    # A bad recorded SLO is said only when the timeline read well, as when read serially.
    ({"during": {"max_outage_ms": "soon"}}, "", (), "max_outage_ms"),
    ({"during": {"max_outage_ms": "soon"}}, "garbage\n" + GOOD + "\n", (), "bad record"),
])
def test_verdict_on_two_cores_says_what_it_says_on_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        slo: object, tail: str, extra: tuple[str, ...], says: str) -> None:
    path = _write(tmp_path, _timeline_text(slo, tail))
    serial, parallel = _verdict_both_ways(path, monkeypatch, capsys, *extra)
    assert parallel == serial
    _, out, err = serial  # type: ignore[misc]
    assert says in out + err


def test_one_cpu_reads_serially(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, CASES["well formed"])
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    with TimelineRead(path, min_bytes=0, head=0) as reading:
        assert reading.pid == 0 and reading.split == 0
        assert _shape(reading.result) == _shape(lambda: read_timeline(path))


@pytest.mark.usefixtures("small_reads")
def test_children_reaped_by_the_system_still_answer(tmp_path: Path) -> None:
    import signal
    path = _write(tmp_path, CASES["well formed"])
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies, nothing to wait for
    try:
        parallel, split = _parallel(path, 400)
    finally:
        signal.signal(signal.SIGCHLD, old)
    assert split and parallel == _shape(lambda: read_timeline(path))
