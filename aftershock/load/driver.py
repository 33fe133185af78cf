"""Runs locust as a subprocess and reads back what every request saw.

locust monkey-patches the interpreter with gevent on import, which breaks the
Kubernetes client and asyncio (see DESIGN.md), so it never runs in the engine's
process. The driver starts ``python -m locust --headless`` in its own process group
with the recorder (``aftershock_recorder.py``) loaded in front of the profile, and
stops it with SIGTERM to the group, then SIGKILL after a timeout.

Load always stops:
- ``stop()``, the context manager's exit, and an ``atexit`` hook for drivers still
  running when the interpreter exits;
- ``--run-time`` is always passed: locust stops itself at the upper bound even if
  nobody stops it;
- the recorder's watchdog makes locust quit when the driver's process dies (even by
  SIGKILL, which runs no Python code).

Scale-out is locust's own master/worker mode. ``workers`` > 1: ``--processes N`` (local
worker processes). ``worker_pods`` > 0: locust runs as ``--master --expect-workers N`` and
a :class:`RemoteWorkers` (the seam; :class:`aftershock.kube.load_workers.WorkerPods` in
the cluster) starts N ``locust --worker --master-host <master_host> -f -`` elsewhere (the
workers fetch the recorder and the profile from the master). Either way the workers send
their records to the master over locust's messages (see the recorder); the remote
workers are stopped after the master, on every path that stops the load.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

from aftershock.checks.codec import TimelineFormatError, decode_blocks
from aftershock.checks.timeline import Requests
from aftershock.config import MAX_USER_RATE, Config, in_cluster
from aftershock.errors import CannotMeasure, UsageError
from aftershock.load.classify import format_statuses
from aftershock.load.tail import RecordsTail
from aftershock.resources import default_locustfile

RECORDER = Path(__file__).with_name("aftershock_recorder.py")
#: The shipped default profile (package data; loadtests/ in the repository).
DEFAULT_LOCUSTFILE = default_locustfile()

ENV_RECORDS = "AFTERSHOCK_LOCUST_RECORDS"
ENV_FAILURE_STATUSES = "AFTERSHOCK_LOCUST_FAILURE_STATUSES"
ENV_PARENT_PID = "AFTERSHOCK_LOCUST_PARENT_PID"
ENV_PATHS = "AFTERSHOCK_LOCUST_PATHS"
ENV_USER_RATE = "AFTERSHOCK_LOCUST_USER_RATE"
ENV_TIMEOUT = "AFTERSHOCK_LOCUST_TIMEOUT_S"
ENV_POD_HEADER = "AFTERSHOCK_LOCUST_POD_HEADER"
ENV_NEW_CONNECTIONS = "AFTERSHOCK_LOCUST_NEW_CONNECTIONS"
DEFAULT_MASTER_PORT = 5557
#: How long remote workers may take to connect (pods: schedule, start, import locust).
REMOTE_WORKERS_WAIT_S = 90.0
#: A records file's source prefix for what a worker sent (``requests-w-<worker id>.jsonl``).
WORKER_SOURCE = "w-"


class RemoteWorkers(Protocol):
    """Starts and stops locust workers outside this machine's process group.

    ``start`` gets the worker count, the arguments after ``locust`` (``--worker
    --master-host ...``) and the environment the recorder needs; ``stop`` removes every
    worker it started, is idempotent and must not raise for workers already gone.
    """

    def start(self, count: int, args: Sequence[str], env: Mapping[str, str]) -> None: ...

    def stop(self) -> None: ...


class LoadError(CannotMeasure):
    """The load could not be started or died: the experiment cannot measure (exit 3)."""


@dataclass(frozen=True)
class LoadSpec:
    """What to run. ``max_duration_s`` is the hard upper bound passed as ``--run-time``."""

    host: str
    rate: float = 200.0
    users: int | None = None  # None: ceil(rate / MAX_USER_RATE)
    locustfile: Path | None = None  # None: the shipped default profile
    paths: tuple[str, ...] = ("/",)
    timeout_s: float = 2.0
    failure_statuses: frozenset[int] = frozenset(range(500, 600))
    workers: int = 1
    max_duration_s: float = 600.0
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    pod_header: str = ""  # response header naming the answering pod; "" = not recorded
    new_connections: bool = False  # a new connection per request (the shipped profile)
    worker_pods: int = 0  # remote workers (RemoteWorkers); locust runs as --master
    master_host: str | None = None  # the address remote workers connect to
    master_port: int = DEFAULT_MASTER_PORT

    @property
    def effective_users(self) -> int:
        return self.users if self.users is not None else max(1, math.ceil(self.rate
                                                                          / MAX_USER_RATE))

    @classmethod
    def from_config(cls, config: Config, host: str | None = None,
                    max_duration_s: float | None = None) -> LoadSpec:
        """The spec for a configuration. ``host``: the base URL when ``target.url`` is
        unset (the engine resolves the Service). ``max_duration_s`` defaults to every
        phase plus the recovery timeout plus a minute."""
        url = str(config.target.url).rstrip("/") if config.target.url else host
        if not url:
            raise UsageError("no URL to send load to",
                             "set target.url, or let the engine resolve the Service")
        load = config.load
        bound = max_duration_s if max_duration_s is not None else (
            load.steady_seconds + config.faults.recovery_timeout_s + load.after_seconds + 60.0)
        master_host = load.master_host or in_cluster().pod_ip
        if load.worker_pods and not master_host:
            raise UsageError("load.worker_pods needs an address the worker pods can reach "
                             "this process at",
                             "set load.master_host (in the Job's pod, POD_IP is used)")
        return cls(host=url, rate=load.rate, users=load.users, locustfile=load.locustfile,
                   paths=tuple(config.target.paths), timeout_s=load.timeout_s,
                   failure_statuses=load.failure_status_set(), workers=load.workers,
                   max_duration_s=bound, pod_header=load.pod_header or "",
                   new_connections=load.new_connections, worker_pods=load.worker_pods,
                   master_host=master_host, master_port=load.master_port)


@dataclass(frozen=True)
class LoadResult:
    target_rate: float
    achieved_rate: float | None  # requests / (last start - first start)
    requests: int
    returncode: int | None
    duration_s: float | None
    #: Requests per locust worker (its client id: ``<hostname>_<uuid>``), from the records
    #: each worker sent the master; empty without workers. The evidence that every worker
    #: of a scale-out load (``load.worker_pods``) sent its share.
    per_worker: Mapping[str, int] = field(default_factory=dict)


_live: weakref.WeakSet[LoadDriver] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # pragma: no cover - exercised in a subprocess test
    for d in list(_live):
        d.stop(timeout=3.0)


class LoadDriver:
    """One locust run. Use as a context manager, or call start() and stop().

    ``workdir`` holds the records (``requests-<pid>.jsonl``) and ``locust.log``; default
    a fresh temporary directory. ``locust_cmd`` replaces ``[python, -m, locust]``.
    ``remote_workers`` starts ``spec.worker_pods`` workers (required when it is > 0).
    """

    def __init__(self, spec: LoadSpec, workdir: Path | None = None, *,
                 locust_cmd: Sequence[str] | None = None,
                 remote_workers: RemoteWorkers | None = None) -> None:
        if spec.worker_pods and remote_workers is None:
            raise UsageError("load.worker_pods is set but nothing can start worker pods here",
                             "run the experiment against a cluster, or set "
                             "load.worker_pods: 0")
        if spec.worker_pods and spec.workers > 1:
            raise UsageError("load.workers and load.worker_pods cannot be combined",
                             "use worker processes (load.workers) or worker pods "
                             "(load.worker_pods), not both")
        if spec.worker_pods and not spec.master_host:
            raise UsageError("load.worker_pods needs load.master_host",
                             "set load.master_host to an address the pods can reach")
        self.spec = spec
        self.remote_workers = remote_workers if spec.worker_pods else None
        self.workdir = (Path(workdir).resolve() if workdir
                        else Path(tempfile.mkdtemp(prefix="aftershock-load-")))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.records_dir = self.workdir / "records"
        self.log_path = self.workdir / "locust.log"
        self._cmd = list(locust_cmd) if locust_cmd else [sys.executable, "-m", "locust"]
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._lock = threading.Lock()
        self._per_worker: dict[str, int] = {}

    # ------------------------------------------------------------ lifecycle

    def command(self) -> list[str]:
        s = self.spec
        locustfile = s.locustfile or DEFAULT_LOCUSTFILE
        if not Path(locustfile).is_file():
            raise UsageError(f"locustfile {locustfile} does not exist",
                             "set load.locustfile to an existing file")
        users = s.effective_users
        # Spawn every user within ~0.1 s (locust warns above 100/s, so not beyond that
        # unless there are more users than that): the rate is reached at once.
        spawn_rate = max(users, min(100, users * 10))
        cmd = [*self._cmd, "--headless", "-f", f"{RECORDER},{Path(locustfile).resolve()}",
               "--host", s.host, "-u", str(users), "-r", str(spawn_rate),
               "--run-time", f"{max(1, math.ceil(s.max_duration_s))}s",
               "--exit-code-on-error", "0", "--stop-timeout", "0", "--only-summary",
               "--loglevel", "WARNING"]
        if s.worker_pods:
            cmd += ["--master", "--expect-workers", str(s.worker_pods),
                    "--expect-workers-max-wait", str(math.ceil(REMOTE_WORKERS_WAIT_S)),
                    "--master-bind-port", str(s.master_port)]
        elif s.workers > 1:
            cmd += ["--processes", str(s.workers)]
        return [*cmd, *s.extra_args]

    def worker_command(self) -> list[str]:
        """The arguments after ``locust`` for a remote worker. ``-f -``: the worker gets
        the recorder and the profile from the master, so any locustfile works."""
        s = self.spec
        return ["--worker", "--master-host", str(s.master_host), "--master-port",
                str(s.master_port), "-f", "-", "--loglevel", "WARNING"]

    def worker_environment(self) -> dict[str, str]:
        """What the recorder reads in a remote worker (no records dir, no parent pid)."""
        env = self.environment()
        keep = {k: v for k, v in env.items()
                if k.startswith("AFTERSHOCK_LOCUST_") and k not in (ENV_RECORDS, ENV_PARENT_PID)}
        return {**keep, "PYTHONUNBUFFERED": "1", **self.spec.env}

    def environment(self) -> dict[str, str]:
        s = self.spec
        env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSHOCK_LOCUST_")}
        env.update({
            ENV_RECORDS: str(self.records_dir),
            ENV_FAILURE_STATUSES: format_statuses(s.failure_statuses),
            ENV_PARENT_PID: str(os.getpid()),
            ENV_PATHS: json.dumps(list(s.paths)),
            ENV_USER_RATE: repr(s.rate / s.effective_users),
            ENV_TIMEOUT: repr(s.timeout_s),
            ENV_POD_HEADER: s.pod_header,
            ENV_NEW_CONNECTIONS: "1" if s.new_connections else "",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(s.env)
        return env

    def start(self, wait_first_request_s: float | None = 20.0) -> None:
        """Start locust; by default wait until its first request is recorded.

        Raises :class:`LoadError` when locust exits early or sends nothing in time (the
        log's tail is in the message).
        """
        with self._lock:
            if self._proc is not None:
                raise RuntimeError("this LoadDriver was already started")
            self.records_dir.mkdir(parents=True, exist_ok=True)
            # A reused workdir must not leak an earlier run's requests into this one.
            for stale in self.records_dir.glob("requests-*.jsonl"):
                stale.unlink()
            cmd = self.command()
            log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
            try:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=self.environment(), cwd=self.workdir, start_new_session=True)
            finally:
                log.close()
            self._started_at = time.time()
            _live.add(self)
            if self.remote_workers is not None:
                try:
                    self.remote_workers.start(self.spec.worker_pods, self.worker_command(),
                                              self.worker_environment())
                except BaseException:
                    self._stop_locked(10.0)
                    raise
                if wait_first_request_s is not None:
                    wait_first_request_s = max(wait_first_request_s, REMOTE_WORKERS_WAIT_S)
        if wait_first_request_s is not None:
            try:
                self.wait_first_request(wait_first_request_s)
            except BaseException:
                self.stop()  # nothing of this run may outlive a failed start
                raise

    def wait_first_request(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._has_records():
                return
            if self._proc is not None and self._proc.poll() is not None:
                raise LoadError(f"locust exited with code {self._proc.returncode} before "
                                f"sending a request:\n{self.log_tail()}",
                                "check the locustfile and the host in the log above")
            time.sleep(0.05)
        raise LoadError(f"locust sent no request within {timeout_s:.0f} s:\n{self.log_tail()}",
                        "check that the target URL answers and the locustfile has a task")

    def _has_records(self) -> bool:
        try:
            return any(p.stat().st_size > 0 for p in self.records_dir.glob("requests-*.jsonl"))
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, wait up to ``timeout``, then SIGKILL. Idempotent.

        Returns locust's exit code (None if it was never started). Records flushed by
        locust's own shutdown are complete; after a SIGKILL the last 200 ms may be lost.
        """
        with self._lock:
            return self._stop_locked(timeout)

    def _stop_locked(self, timeout: float) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            return self._stop_master(proc, timeout)
        finally:
            # After the master: it tells its workers to quit, and they send their last
            # records first. Then the remote workers go, whatever happened above.
            if self.remote_workers is not None:
                self.remote_workers.stop()

    def _stop_master(self, proc: subprocess.Popen[bytes], timeout: float) -> int | None:
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(5.0)
        else:
            # The leader is gone; make sure no worker outlives it.
            self._signal(proc, signal.SIGKILL)
        if self._stopped_at is None:
            self._stopped_at = time.time()
        _live.discard(self)
        return proc.returncode

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # start_new_session: the group id is the child's pid
        except ProcessLookupError:
            pass
        except PermissionError:  # pragma: no cover - not our group any more
            proc.send_signal(sig)

    def __enter__(self) -> LoadDriver:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------ results

    def requests(self) -> Requests:
        """Every request recorded so far (all processes), sorted by start.

        Safe while locust runs: a torn last line of a file is skipped.
        """
        sources = read_sources(self.records_dir)
        self._per_worker = {name.removeprefix(WORKER_SOURCE): len(req)
                            for name, req in sources.items() if name.startswith(WORKER_SOURCE)}
        return Requests.merged(*sources.values())

    def result(self, requests: Requests | None = None) -> LoadResult:
        req = requests if requests is not None else self.requests()
        n = len(req)
        span = (req.starts[-1] - req.starts[0]) if n > 1 else 0.0
        return LoadResult(
            target_rate=self.spec.rate,
            achieved_rate=(n - 1) / span if span > 0 else None,
            requests=n, returncode=self.returncode,
            duration_s=(self._stopped_at - self._started_at)
            if self._stopped_at and self._started_at else None,
            per_worker=dict(self._per_worker))

    def tail(self, *, from_now: bool = False) -> RecordsTail:
        """The records as they are written, for a stop condition watched while the load
        runs (:mod:`aftershock.load.tail`)."""
        return RecordsTail(self.records_dir, from_now=from_now)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no locust log)"
        return "\n".join(text.splitlines()[-lines:])


def read_records(records_dir: Path) -> Requests:
    """Merge every ``requests-*.jsonl`` in a directory into one sorted Requests."""
    return Requests.merged(*read_sources(records_dir).values())


def read_sources(records_dir: Path) -> dict[str, Requests]:
    """Each records file's requests, by source: ``<pid>`` for a local locust process,
    ``w-<worker id>`` for what a worker sent the master (see the recorder)."""
    from aftershock.results import timeline_blocks  # results imports this module

    parts: dict[str, Requests] = {}
    for path in sorted(Path(records_dir).glob("requests-*.jsonl")):
        # As `aftershock verdict` reads a timeline: bounded lines, typed blocks.
        with open(path, "rb") as f:
            try:
                parts[path.stem.removeprefix("requests-")] = decode_blocks(
                    timeline_blocks(f, str(path)), source=str(path)).requests
            except TimelineFormatError as e:
                raise LoadError(str(e), "the records file is corrupt; rerun the load") from None
    return parts
