"""The results directory: results.json (a stable interface), raw timelines, exit codes.

Layout of a results directory::

    results.json                 every experiment's verdict (docs/results-format.md)
    junit.xml                    pytest's (written by ``aftershock run``)
    timelines/<name>.jsonl       the raw timeline of one experiment (checks.codec format)

The verdict in results.json can be recomputed offline from a timeline file:
``aftershock verdict --timeline results/timelines/<name>.jsonl [--config FILE]``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from aftershock.checks import report
from aftershock.checks.codec import SCHEMA as TIMELINE_SCHEMA
from aftershock.checks.codec import encode, text_of
from aftershock.checks.gaps import api_outage_sentence
from aftershock.checks.slo import SLO
from aftershock.checks.timeline import Timeline
from aftershock.checks.verdict import (
    PHASES,
    OutageWindow,
    Outcome,
    PhaseVerdict,
    Verdict,
    Violation,
)
from aftershock.errors import (
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    EXIT_SLO_FAILED,
    EXIT_USAGE,
    UsageError,
)
from aftershock.load.driver import LoadResult
from aftershock.timeline_read import line_blocks, read_serial

#: Version of the results.json format. Additive changes keep it; anything that changes
#: or removes a documented field bumps it.
RESULTS_SCHEMA = 1
RESULTS_FILE = "results.json"
#: Permissions of results.json, as pytest gives junit.xml under the usual umask 022.
RESULTS_MODE = 0o644
TIMELINES_DIR = "timelines"


def _utc(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _round(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, nd)


def safe_name(name: str) -> str:
    """A file name for an experiment name (pytest node ids contain '/', '::', '[')."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return s[:150] or "experiment"


# ---------------------------------------------------------------- JSON shapes


def violation_json(v: Violation) -> dict[str, Any]:
    out = {"phase": v.phase.value if v.phase else None, "threshold": v.threshold,
           "measured": _finite(v.measured), "limit": _finite(v.limit)}
    if v.detail:
        out["detail"] = v.detail
    return out


def outage_json(w: OutageWindow) -> dict[str, Any]:
    return {
        "start": w.start, "end": w.end, "start_utc": _utc(w.start),
        "duration_ms": _round(w.duration_ms), "phase": w.phase.value, "failed": w.failed,
        "open": w.open, "errors_by_kind": dict(w.kinds),
        "explanation": str(w.explanation) if w.explanation else None,
        "cause": ({"at": w.explanation.change.at, "kind": w.explanation.change.kind.value,
                   "subject": w.explanation.change.subject,
                   "what": w.explanation.change.what,
                   "offset_ms": _round(w.explanation.offset_ms)}
                  if w.explanation else None),
    }


def phase_json(pv: PhaseVerdict) -> dict[str, Any]:
    st = pv.stats
    return {
        "verdict": pv.outcome.value, "start": st.start, "end": st.end,
        "requests": st.requests, "errors": st.errors, "error_rate": _round(st.error_rate, 6),
        "achieved_rps": _round(st.achieved_rps, 1), "p50_ms": _round(st.p50_ms),
        "p95_ms": _round(st.p95_ms), "p99_ms": _round(st.p99_ms), "outages": st.outages,
        "longest_outage_ms": _round(st.longest_outage_ms),
        "errors_by_kind": dict(st.errors_by_kind),
        "violations": [violation_json(v) for v in pv.violations],
        "reasons": list(pv.reasons),
    }


def _phase_at(bounds: dict[str, float | None], t: float) -> str:
    fs, fe = bounds.get("fault_start"), bounds.get("fault_end")
    if fs is None or t < fs:
        return "before"
    return "during" if fe is None or t < fe else "after"


def gaps_json(verdict: Verdict) -> list[dict[str, Any]]:
    """Every blind stretch, by start: the load's (recorder gaps) and the watches' (API
    outages, with times relative to the load start as the report shows them)."""
    origin = verdict.bounds.get("load_start")
    out: list[dict[str, Any]] = [
        {"source": "load", "start": g.start, "end": g.end, "duration_ms": _round(g.duration_ms),
         "phase": g.phase.value} for g in verdict.gaps]
    for o in verdict.api_outages:
        out.append({
            "source": "kubernetes_api", "start": o.start, "end": o.end,
            "start_utc": _utc(o.start),
            "start_s": _round(o.start - origin) if origin is not None else None,
            "end_s": _round(o.end - origin) if origin is not None else None,
            "duration_ms": _round(o.duration_s * 1000.0),
            "phase": _phase_at(verdict.bounds, o.start),
            "streams": list(o.streams), "error": o.error, "open": o.open,
            "message": api_outage_sentence(o, origin)})
    return sorted(out, key=lambda g: float(g["start"]))


def recovery_gap_s(verdict: Verdict) -> float | None:
    """Seconds of the measured recovery with the Kubernetes API unreachable; None if none."""
    rec, since = verdict.recovery, verdict.bounds.get("fault_start")
    if rec.gap is None or rec.seconds is None or since is None:
        return None
    return _round(min(rec.gap.end, since + rec.seconds) - max(rec.gap.start, since))


def experiment_json(name: str, verdict: Verdict, slo: SLO, *, load: LoadResult | None = None,
                    timeline_file: str | None = None, nodeid: str | None = None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of results.json's ``experiments`` list."""
    reason = "" if verdict.outcome is Outcome.PASS else report.headline(verdict)
    return {
        "name": name,
        "nodeid": nodeid,
        "verdict": verdict.outcome.value,
        "reason": reason,
        "message": report.explain(verdict),
        "fault": verdict.fault,
        "phases": {p.value: phase_json(verdict.phases[p]) for p in PHASES},
        "outages": [outage_json(w) for w in verdict.outages],
        "violations": [violation_json(v) for v in verdict.violations],
        "reasons": list(verdict.reasons),
        "recovery_s": _round(verdict.recovery.seconds),
        "recovery_reason": verdict.recovery.reason,
        "recovery_gap_s": recovery_gap_s(verdict),
        "gaps": gaps_json(verdict),
        "markers": {k: v for k, v in verdict.bounds.items()},
        "load": {
            "target_rate": load.target_rate if load else None,
            "achieved_rate": _round(load.achieved_rate if load else verdict.achieved_rps, 1),
            "requests": load.requests if load else verdict.requests,
            # Only for a load with locust workers: requests per worker.
            **({"requests_per_worker": dict(load.per_worker)} if load and load.per_worker
               else {}),
        },
        "slo": slo.model_dump(mode="json"),
        "timeline": timeline_file,
        **(extra or {}),
    }


def inconclusive_json(name: str, reason: str, *, nodeid: str | None = None,
                      timeline_file: str | None = None) -> dict[str, Any]:
    """An experiment that ended before it had a verdict (an error, a missing target)."""
    return {
        "name": name, "nodeid": nodeid, "verdict": Outcome.INCONCLUSIVE.value,
        "reason": reason, "message": f"inconclusive: {reason}", "fault": "",
        "phases": {}, "outages": [], "violations": [], "reasons": [reason],
        "recovery_s": None, "recovery_reason": "", "recovery_gap_s": None, "gaps": [],
        "markers": {},
        "load": {"target_rate": None, "achieved_rate": None, "requests": 0},
        "slo": None, "timeline": timeline_file,
    }


# ---------------------------------------------------------------- files


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file 0600; results are as readable as junit.xml beside them.
        os.chmod(tmp, RESULTS_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_timeline(path: Path, timeline: Timeline, meta: dict[str, Any] | None = None) -> Path:
    """Write a timeline as JSON lines (``aftershock.checks.codec`` format). Returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        batch: list[str] = []
        for line in encode(timeline, meta):
            batch.append(line)
            if len(batch) >= 10_000:
                f.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            f.write("\n".join(batch) + "\n")
    os.replace(tmp, path)
    return path


#: The longest results.json ``aftershock report`` reads.
MAX_RESULTS_BYTES = 256 << 20


def timeline_blocks(f: BinaryIO, source: str) -> Iterator[tuple[int, bytes]]:
    """A binary file as blocks of whole lines, about a megabyte each, with the number of
    lines before each block; a line longer than MAX_TIMELINE_LINE raises
    TimelineFormatError naming it. The last block is what follows the last newline."""
    lines = [0]  # before the next block
    for block in line_blocks(f, source, lambda: lines[0]):
        yield lines[0], block
        lines[0] += block.count(b"\n")


def timeline_lines(f: BinaryIO, source: str) -> Iterator[str]:
    """The lines of a binary file as text, each at most MAX_TIMELINE_LINE bytes of UTF-8;
    a longer line or bytes that are not UTF-8 raise TimelineFormatError naming the line.
    Decodes a megabyte at a time (as fast as text-mode iteration, but bounded)."""
    for lineno, block in timeline_blocks(f, source):
        lines = text_of(block, source, lineno).split("\n")
        if block.endswith(b"\n"):
            lines.pop()
        yield from lines


def read_timeline(path: Path) -> tuple[Timeline, dict[str, Any]]:
    """A timeline file and its header metadata (``{}`` when it has no header)."""
    with open(path, "rb") as f:
        return read_serial(f, str(path))


class Results:
    """Collects experiments and writes results.json. One per session/run."""

    def __init__(self, results_dir: Path) -> None:
        self.dir = Path(results_dir)
        self.experiments: list[dict[str, Any]] = []
        self.started = datetime.now(UTC)
        self.current_nodeid: str | None = None  # set by the pytest plugin around each test
        # Top-level entries beside "experiments", e.g. "posture"; each has a "verdict".
        self.sections: dict[str, dict[str, Any]] = {}
        # Tests that recorded a section: their verdict is there, not in "experiments".
        self._section_nodeids: set[str] = set()
        # The verdicts as values, so the run's exit code never reads them back from JSON.
        self._outcomes: list[Outcome] = []
        self._section_outcomes: dict[str, Outcome] = {}

    @property
    def path(self) -> Path:
        return self.dir / RESULTS_FILE

    def _timeline_file(self, name: str, timeline: Timeline, meta: dict[str, Any]) -> str:
        base = safe_name(name)
        rel = Path(TIMELINES_DIR) / f"{base}.jsonl"
        taken = {e.get("timeline") for e in self.experiments}
        k = 2
        while str(rel) in taken:
            rel = Path(TIMELINES_DIR) / f"{base}-{k}.jsonl"
            k += 1
        write_timeline(self.dir / rel, timeline, meta)
        return str(rel)

    def record(self, name: str, verdict: Verdict, slo: SLO, *, timeline: Timeline | None = None,
               load: LoadResult | None = None, nodeid: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add one experiment's verdict; writes its timeline file and results.json."""
        node = nodeid or self.current_nodeid
        tl_file = None
        if timeline is not None:
            check = (extra or {}).get("check")
            tl_file = self._timeline_file(name, timeline, {
                "experiment": name, "nodeid": node, "slo": slo.model_dump(mode="json"),
                "written": _utc(datetime.now(UTC).timestamp()), "timeline_schema":
                    TIMELINE_SCHEMA,
                # `aftershock verdict` recomputes the SLO verdict only; it names this.
                **({"check": {"name": check.get("name"), "verdict": check.get("outcome")}}
                   if isinstance(check, dict) else {}),
                # The limits learned from the history, for `aftershock verdict` offline.
                **({"learned": extra["learned"]} if extra and "learned" in extra else {})})
        entry = experiment_json(name, verdict, slo, load=load, timeline_file=tl_file,
                                nodeid=node, extra=extra)
        self.experiments.append(entry)
        self._outcomes.append(verdict.outcome)
        self.write()
        return entry

    def record_inconclusive(self, name: str, reason: str, *, timeline: Timeline | None = None,
                            nodeid: str | None = None) -> dict[str, Any]:
        """Add an experiment that ended without a verdict, with the reason."""
        node = nodeid or self.current_nodeid
        tl_file = (self._timeline_file(name, timeline, {"experiment": name, "nodeid": node})
                   if timeline is not None else None)
        entry = inconclusive_json(name, reason, nodeid=node, timeline_file=tl_file)
        self.experiments.append(entry)
        self._outcomes.append(Outcome.INCONCLUSIVE)
        self.write()
        return entry

    def has(self, nodeid: str) -> bool:
        return (nodeid in self._section_nodeids
                or any(e.get("nodeid") == nodeid for e in self.experiments))

    def set_section(self, name: str, entry: dict[str, Any]) -> None:
        """Add or replace a top-level entry (e.g. ``posture``); its verdict counts overall."""
        self.sections[name] = entry
        if self.current_nodeid is not None:
            self._section_nodeids.add(self.current_nodeid)
        self._section_outcomes.pop(name, None)
        if "verdict" in entry:
            self._section_outcomes[name] = _outcome(entry["verdict"])
        self.write()

    def overall(self) -> Outcome | None:
        """The run's verdict from every experiment and section recorded so far."""
        return combine([*self._outcomes, *self._section_outcomes.values()])

    def to_json(self) -> dict[str, Any]:
        o = self.overall()
        return {
            "schema": RESULTS_SCHEMA,
            "verdict": o.value if o else None,
            "started": self.started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "experiments": self.experiments,
            **self.sections,
        }

    def write(self) -> Path:
        """(Re)write results.json atomically; safe to call after every experiment."""
        return write_results_json(self.path, self.to_json())


def write_results_json(path: Path, doc: dict[str, Any]) -> Path:
    """results.json's one writer: atomic (a reader never sees half a file), no NaN."""
    _atomic_write(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return path


def merge_section(results_dir: Path, name: str, entry: dict[str, Any]) -> Path:
    """Add or replace one top-level entry (e.g. ``posture``) of results_dir/results.json and
    keep every other entry as it is: for a command that judges one thing on its own
    (``aftershock check``), beside what a run may have written there. An unreadable file
    is replaced."""
    path = Path(results_dir) / RESULTS_FILE
    doc: dict[str, Any] = {}
    if path.exists():
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_RESULTS_BYTES + 1)
            loaded = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_RESULTS_BYTES \
                else None
        except (ValueError, RecursionError):  # not JSON, not UTF-8, absurdly nested
            loaded = None
        doc = loaded if isinstance(loaded, dict) else {}
    doc[name] = entry
    return write_results_json(path, doc)


def combine(outcomes: Iterable[Outcome]) -> Outcome | None:
    """fail if any failed, else inconclusive if any was, else pass; None when empty."""
    seen = set(outcomes)
    if not seen:
        return None
    if Outcome.FAIL in seen:
        return Outcome.FAIL
    if seen - {Outcome.PASS}:
        return Outcome.INCONCLUSIVE
    return Outcome.PASS


def _outcome(verdict: str | Outcome) -> Outcome:
    """A verdict read from JSON; anything unknown counts as inconclusive, never as a pass."""
    try:
        return Outcome(verdict)
    except ValueError:
        return Outcome.INCONCLUSIVE


def overall(verdicts: Iterable[str]) -> Outcome | None:
    """The overall verdict of verdicts read back from results.json (``aftershock report``)."""
    return combine(_outcome(v) for v in verdicts)


def exit_code(outcome: Outcome | None) -> int:
    return {Outcome.PASS: EXIT_PASS, Outcome.FAIL: EXIT_SLO_FAILED,
            Outcome.INCONCLUSIVE: EXIT_INCONCLUSIVE, None: EXIT_USAGE}[outcome]


def run_exit_code(pytest_code: int, outcome: Outcome | None) -> int:
    """``aftershock run``'s exit code from pytest's and the session's overall verdict.

    A failed verdict is 1 whatever pytest says; then pytest's usage errors are 2, its
    interruptions and internal errors 3; then an inconclusive verdict is 3, and a test
    that failed without a verdict saying so is 1."""
    if outcome is Outcome.FAIL:
        return EXIT_SLO_FAILED
    if pytest_code in (4, 5):  # usage error / nothing collected
        return EXIT_USAGE
    if pytest_code in (2, 3):  # interrupted / internal error
        return EXIT_INCONCLUSIVE
    if outcome is Outcome.INCONCLUSIVE:
        return EXIT_INCONCLUSIVE
    if pytest_code == 1:  # a test failed without an experiment verdict saying so
        return EXIT_SLO_FAILED
    return EXIT_PASS


def usable_results_dir(results_dir: Path) -> Path:
    """``results_dir``, created if need be and writable, or a UsageError saying why not."""
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".aftershock-probe.", dir=results_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"results directory {results_dir} cannot be used: "
                         f"{e.strerror or e}",
                         "set results_dir (--results DIR) to a directory you can write"
                         ) from None
    return results_dir


def _bad_results(path: Path, what: str) -> UsageError:
    return UsageError(f"{path} is not an aftershock results file: {what}",
                      "give the results directory of an aftershock run "
                      f"(results.json schema {RESULTS_SCHEMA})")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def load_results(path: Path) -> dict[str, Any]:
    """results.json as ``aftershock report`` reads it: at most MAX_RESULTS_BYTES, schema
    RESULTS_SCHEMA, every experiment with a name, a known verdict and a message, the
    ``posture`` entry (if any) with a known verdict and counts. Else a UsageError (exit 2)
    naming the problem."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RESULTS_BYTES + 1)
    except OSError as e:
        raise UsageError(f"{path} cannot be read: {e.strerror}",
                         "check the path and its permissions") from None
    if len(raw) > MAX_RESULTS_BYTES:
        raise _bad_results(path, f"larger than {MAX_RESULTS_BYTES >> 20} MiB")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise _bad_results(path, f"not UTF-8 text (byte {e.start + 1})") from None
    except RecursionError:
        raise _bad_results(path, "nested too deeply") from None
    except ValueError as e:  # JSONDecodeError included: a truncated file
        raise _bad_results(path, f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise _bad_results(path, f"a JSON {type(data).__name__}, not an object")
    if "schema" not in data:
        raise _bad_results(path, "no \"schema\"")
    if data["schema"] != RESULTS_SCHEMA or isinstance(data["schema"], bool):
        raise _bad_results(path, f"schema {str(data['schema'])[:20]!r}; this aftershock reads "
                                 f"schema {RESULTS_SCHEMA}")
    experiments = data.get("experiments")
    if not isinstance(experiments, list):
        raise _bad_results(path, "\"experiments\" is not a list")
    for i, entry in enumerate(experiments):
        where = f"experiments[{i}]"
        if not isinstance(entry, dict):
            raise _bad_results(path, f"{where} is not an object")
        for key in ("name", "verdict", "message"):
            if not isinstance(entry.get(key), str):
                raise _bad_results(path, f"{where} has no string \"{key}\"")
        _known_verdict(path, where, entry["verdict"])
        check = entry.get("check")
        if isinstance(check, dict) and not isinstance(check.get("findings") or [], list):
            raise _bad_results(path, f"{where}.check.findings is not a list")
    posture = data.get("posture")
    if posture is not None:
        if not isinstance(posture, dict) or not isinstance(posture.get("counts"), dict):
            raise _bad_results(path, "\"posture\" is not an object with \"counts\"")
        _known_verdict(path, "posture", posture.get("verdict"))
    return data


def _known_verdict(path: Path, where: str, verdict: Any) -> None:
    known = [o.value for o in Outcome]
    if verdict not in known:
        raise _bad_results(path, f"{where} has verdict {str(verdict)[:40]!r}, not one of "
                                 f"{', '.join(known)}")
