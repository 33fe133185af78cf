"""Records every request locust makes: one JSON line per request.

This file is passed to locust *as a locustfile*, before the load profile
(``locust -f aftershock_recorder.py,PROFILE.py``; locust imports each file of a
comma-separated ``-f`` and merges their user classes; this one defines none). So the
recording works with the shipped profile and with any locustfile a user brings,
without the user importing anything.

It runs only inside the locust processes. Environment (set by the load driver):

``AFTERSHOCK_LOCUST_RECORDS``
    Directory for the records. Each locust process that sends requests writes its own
    ``requests-<pid>.jsonl`` (so ``--processes`` workers never interleave lines).
``AFTERSHOCK_LOCUST_FAILURE_STATUSES``
    Status codes that count as failures, as ranges: ``500-599,429``. Default 5xx.
``AFTERSHOCK_LOCUST_POD_HEADER``
    A response header naming the pod that answered (``load.pod_header``); its value is
    recorded as ``"pod"``. Empty: not recorded.
``AFTERSHOCK_LOCUST_PARENT_PID``
    The driver's pid. When this process's parent changes (the driver died without
    stopping it, even by SIGKILL), locust is told to quit within half a second.

Each line is ``{"start": <epoch s>, "latency_ms": <ms>, "status": <int, 0 = no
response>, "error": "" | "http" | "connect" | "unreachable" | "reset" |
"connect_timeout" | "timeout" | "other",
"new_connection": null, "name": <locust request name>}``, plus ``"pod": <header value>``
when the pod header is set and the response carried it. ``new_connection`` is null:
neither locust client exposes whether a pooled connection was reused.

Lines are batched in memory and written (one write per batch) every 200 ms, every
4,096 lines, on the first request, and when locust quits (SIGTERM from the driver
included), so a reader sees the records within 200 ms.

Master/worker mode (``--processes N``, and worker pods: ``locust --worker``): a worker
does not write files. It batches its lines and sends them to the master every 200 ms
(and at once for its first request) as a locust custom message
(``runner.send_message("aftershock_records", ...)``); when its test stops or it quits,
it stops its users and sends what is left, before locust tells the master it quit. The
master appends each worker's lines to ``requests-w-<worker id>.jsonl`` (the worker id is
locust's client id: ``<hostname>_<uuid>``, so a pod's name). One path for local worker
processes and worker pods: pods share no filesystem with the master.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import signal
import time
from typing import IO, Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from aftershock.load.classify import classify, parse_statuses

ENV_RECORDS = "AFTERSHOCK_LOCUST_RECORDS"
ENV_FAILURE_STATUSES = "AFTERSHOCK_LOCUST_FAILURE_STATUSES"
ENV_PARENT_PID = "AFTERSHOCK_LOCUST_PARENT_PID"
ENV_POD_HEADER = "AFTERSHOCK_LOCUST_POD_HEADER"
FLUSH_EVERY_S = 0.2
#: Lines batched before a write even between flushes (bounds the batch at high rates).
BATCH_LINES = 4096
MESSAGE = "aftershock_records"

_records_dir = os.environ.get(ENV_RECORDS, "")
_failing = parse_statuses(os.environ.get(ENV_FAILURE_STATUSES, "500-599"))
_pod_header = os.environ.get(ENV_POD_HEADER, "")
_out: IO[str] | None = None
_out_pid = 0
_first = True
_runner: Any = None  # a WorkerRunner: records go to the master, not to a file
_batch: list[str] = []
_per_worker: dict[str, IO[str]] = {}  # on a master: one file per worker
_pending: list[str] = []  # lines not yet written to this process's file


def _file() -> IO[str]:
    """This process's records file, opened on first use (after any fork)."""
    global _out, _out_pid
    pid = os.getpid()
    if _out is None or _out_pid != pid:
        path = os.path.join(_records_dir or ".", f"requests-{pid}.jsonl")
        _out = open(path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115
        _out_pid = pid
    return _out


def _after_fork_in_child() -> None:
    """Lines batched before a fork are the parent's to write; the child's first request
    is written at once, like any process's."""
    global _pending, _first
    _pending = []
    _first = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _write_pending() -> None:
    """Write this process's batched lines to its file and flush it."""
    global _pending
    if not _pending:
        return
    lines, _pending = _pending, []
    f = _file()
    with contextlib.suppress(OSError, ValueError):
        f.write("".join(lines))
        f.flush()


def _flush() -> None:
    if _runner is not None:
        _send()
        return
    _write_pending()
    if _out is not None and _out_pid == os.getpid():
        with contextlib.suppress(OSError, ValueError):
            _out.flush()
    for f in list(_per_worker.values()):
        with contextlib.suppress(OSError, ValueError):
            f.flush()


_names: dict[str, str] = {}


def _on_request(request_type: str = "", name: str = "", response_time: float | None = None,
                response: Any = None, exception: BaseException | None = None,
                start_time: float | None = None, **_: Any) -> None:
    global _first
    latency = float(response_time or 0.0)
    if start_time is None:
        start_time = time.time() - latency / 1000.0
    status = int(getattr(response, "status_code", 0) or 0)
    if exception is None and status and status not in _failing:
        kind = ""  # the common case, without the classifier's call
    else:
        kind = classify(exception, status, _failing).value
    jn = _names.get(name)
    if jn is None:
        jn = _names[name] = json.dumps(name)
    pod = ""
    if _pod_header and status:
        headers = getattr(response, "headers", None)
        value = headers.get(_pod_header) if headers is not None else None
        if value:
            pod = f',"pod":{json.dumps(str(value))}'
    line = (f'{{"start":{start_time!r},"latency_ms":{latency!r},"status":{status},'
            f'"error":"{kind}","new_connection":null,"name":{jn}{pod}}}\n')
    if _runner is not None:
        _batch.append(line)
        if _first:
            _first = False
            _send()
        return
    # Batched: a list append per request, one write per batch (a text file's write per
    # line encodes and buffers each line: the costliest part of recording).
    _pending.append(line)
    if _first or len(_pending) >= BATCH_LINES:
        _first = False
        _write_pending()


def _send() -> None:
    """On a worker: send the batched lines to the master (nothing when empty)."""
    global _batch
    if _runner is None or not _batch:
        return
    lines, _batch = _batch, []
    try:
        _runner.send_message(MESSAGE, {"lines": "".join(lines), "n": len(lines)})
    except Exception:  # the master is gone: nobody can record them
        _batch = lines + _batch


def _worker_file(node_id: str) -> IO[str]:
    f = _per_worker.get(node_id)
    if f is None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", node_id)[:120]
        path = os.path.join(_records_dir or ".", f"requests-w-{safe}.jsonl")
        f = _per_worker[node_id] = open(path, "a", encoding="utf-8",  # noqa: SIM115
                                        buffering=1 << 16)
    return f


def _on_records(environment: Any = None, msg: Any = None, **_: Any) -> None:
    """On the master: a worker's batch of lines."""
    data = getattr(msg, "data", None) or {}
    node = str(getattr(msg, "node_id", "") or "unknown")
    first = node not in _per_worker
    f = _worker_file(node)
    f.write(str(data.get("lines", "")))
    if first:
        f.flush()


def _flusher() -> None:
    while True:
        gevent.sleep(FLUSH_EVERY_S)
        _flush()


def _watchdog(parent: int) -> None:
    while True:
        gevent.sleep(0.5)
        if os.getppid() != parent:
            _flush()
            os.kill(os.getpid(), signal.SIGTERM)  # locust's own graceful shutdown
            gevent.sleep(5)
            os._exit(3)


def _on_init(environment: Any, runner: Any = None, **_: Any) -> None:
    global _runner
    runner = runner if runner is not None else getattr(environment, "runner", None)
    if isinstance(runner, WorkerRunner):
        _runner = runner
        # Added after the runner's own quitting listener, and quitting fires in reverse:
        # the last records reach the master before the worker tells it that it quit.
        environment.events.quitting.add_listener(_on_worker_quitting)
    elif isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE, _on_records)
    gevent.spawn(_flusher)
    gevent.spawn(_watchdog, os.getppid())


def _on_worker_quitting(environment: Any = None, **_: Any) -> None:
    # Stop the users first (they may still complete requests), then send the rest.
    with contextlib.suppress(Exception):
        if _runner is not None and _runner.user_count:
            _runner.stop()
    _send()


def _on_quitting(**_: Any) -> None:
    _flush()


def _on_test_stop(**_: Any) -> None:
    _flush()


# locust's EventHook.add_listener is untyped.
events.request.add_listener(_on_request)  # type: ignore[no-untyped-call]
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
atexit.register(_flush)
