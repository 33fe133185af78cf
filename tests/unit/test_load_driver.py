"""The load driver for real: locust subprocesses against a server on 127.0.0.1.

Each test is bounded (a few seconds of load, --run-time always set) and targets only
loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from loopback_server import LoopbackServer, unanswering_listener

from aftershock.checks.timeline import ErrorKind
from aftershock.checks.verdict import outage_windows
from aftershock.errors import UsageError
from aftershock.load import LoadDriver, LoadError, LoadSpec


def pids_in_group(pgid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pgid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def test_paced_load_is_recorded_and_outage_measured(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        spec = LoadSpec(host=srv.url, rate=200, max_duration_s=20, paths=("/", "/b"))
        with LoadDriver(spec, tmp_path) as load:
            assert load.running
            time.sleep(1.0)
            true_start, true_end = srv.outage(0.3)
            time.sleep(1.2)
        assert not load.running
        reqs = load.requests()
    result = load.result(reqs)
    assert result.target_rate == 200
    assert result.achieved_rate is not None and 150 <= result.achieved_rate <= 230
    assert 300 <= result.requests <= 600
    assert set(reqs.names) == {"/", "/b"}
    assert all(nc is None for nc in reqs.new_connection)
    [w] = outage_windows(reqs)
    assert {k for k, _ in w.kinds} == {"http"}
    assert abs(w.start - true_start) < 0.03 and abs(w.end - true_end) < 0.03
    r = reqs[0]
    assert r.status == 200 and r.error is ErrorKind.NONE and r.latency_ms > 0


def test_refused_connections_are_recorded_as_connect_errors(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        url = srv.url  # the port is closed again when the server stops
    spec = LoadSpec(host=url, rate=50, max_duration_s=10)
    with LoadDriver(spec, tmp_path) as load:
        time.sleep(0.5)
    reqs = load.requests()
    assert len(reqs) > 5
    assert set(reqs.errors) == {ErrorKind.CONNECT}
    assert set(reqs.statuses) == {0}


def test_unanswered_connects_and_unanswered_requests_are_recorded_apart(
        tmp_path: Path) -> None:
    """Through locust: a listener whose accept queue is full drops SYNs (connect timeouts);
    one that accepts and never answers leaves requests without a response (timeouts)."""
    kinds = []
    for full in (True, False):
        with unanswering_listener(accept_queue_full=full) as (host, port):
            spec = LoadSpec(host=f"http://{host}:{port}", rate=5, max_duration_s=10,
                            timeout_s=0.3)
            with LoadDriver(spec, tmp_path / str(full)) as load:
                time.sleep(1.5)
        reqs = load.requests()
        assert len(reqs) >= 2
        kinds.append(set(reqs.errors))
    assert kinds == [{ErrorKind.CONNECT_TIMEOUT}, {ErrorKind.TIMEOUT}]


def test_run_time_bounds_the_load_even_if_nobody_stops_it(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        # 3 s, not 1: locust spends ~0.8 s of its --run-time before the first request
        # (measured here: 1 s gave 4-6 requests, 3 s gives 42-50), so 1 s left the
        # rate check at the mercy of that start-up.
        load = LoadDriver(LoadSpec(host=srv.url, rate=20, max_duration_s=3), tmp_path)
        load.start()
        deadline = time.monotonic() + 15
        while load.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not load.running
        assert load.stop() == 0
        assert 20 <= len(load.requests()) <= 80


def test_users_own_locustfile_is_recorded_too(tmp_path: Path) -> None:
    mine = tmp_path / "mine.py"
    mine.write_text(textwrap.dedent("""
        from locust import HttpUser, constant_throughput, task

        class Mine(HttpUser):
            wait_time = constant_throughput(20)

            @task
            def hello(self):
                self.client.get("/hello", name="hello")
                with self.client.get("/", catch_response=True) as r:
                    r.failure("body was wrong")
    """))
    with LoopbackServer() as srv:
        spec = LoadSpec(host=srv.url, rate=20, users=1, locustfile=mine, max_duration_s=10)
        with LoadDriver(spec, tmp_path / "run") as load:
            time.sleep(1.0)
    reqs = load.requests()
    names = set(reqs.names)
    assert names == {"hello", "/"}
    kinds = {(reqs.names[i], reqs.errors[i]) for i in range(len(reqs))}
    assert ("hello", ErrorKind.NONE) in kinds and ("/", ErrorKind.OTHER) in kinds


def test_several_worker_processes_write_separate_files(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        spec = LoadSpec(host=srv.url, rate=100, workers=2, max_duration_s=15)
        with LoadDriver(spec, tmp_path) as load:
            time.sleep(1.0)
    files = list((tmp_path / "records").glob("requests-*.jsonl"))
    assert len(files) == 2
    reqs = load.requests()
    assert list(reqs.starts) == sorted(reqs.starts)
    assert len(reqs) > 50


def test_worker_processes_send_every_record_to_the_master_once(tmp_path: Path) -> None:
    """--processes 2: the workers' records travel over locust's messages to the master,
    which writes one file per worker. Every request the server answered is recorded once,
    except those still in flight when the users were stopped (at most one per user)."""
    with LoopbackServer() as srv:
        spec = LoadSpec(host=srv.url, rate=200, workers=2, max_duration_s=30)
        with LoadDriver(spec, tmp_path) as load:
            time.sleep(3.0)
        served = srv.served
    files = sorted((tmp_path / "records").glob("requests-*.jsonl"))
    assert len(files) == 2 and all(f.name.startswith("requests-w-") for f in files)
    per_worker = [sum(1 for _ in f.open()) for f in files]
    assert min(per_worker) > 100, per_worker
    reqs = load.requests()
    keys = list(zip(reqs.starts, reqs.latency_ms, strict=True))
    assert len(set(keys)) == len(keys)  # no duplicates
    assert len(reqs) <= served
    assert served - len(reqs) <= spec.effective_users, (served, len(reqs))


def test_locust_that_cannot_start_is_a_load_error_with_its_log(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemExit('this locustfile is broken')\n")
    load = LoadDriver(LoadSpec(host="http://127.0.0.1:9", locustfile=bad, max_duration_s=5),
                      tmp_path / "run")
    with pytest.raises(LoadError, match="exited with code") as e:
        load.start()
    assert "broken" in str(e.value)
    with pytest.raises(UsageError, match="does not exist"):
        LoadDriver(LoadSpec(host="http://x", locustfile=tmp_path / "nope.py")).start()


def test_stop_kills_the_whole_process_group_with_sigkill_if_needed(tmp_path: Path) -> None:
    stubborn = tmp_path / "stubborn.py"
    stubborn.write_text(textwrap.dedent("""
        import signal
        from locust import User, constant, events, task

        @events.init.add_listener
        def _(environment, **kw):
            import gevent
            gevent.signal_handler(signal.SIGTERM, lambda: None)  # ignores SIGTERM

        class U(User):
            wait_time = constant(0.05)
            @task
            def t(self):
                self.environment.events.request.fire(request_type="X", name="x",
                    response_time=1.0, response_length=0, exception=None)
    """))
    load = LoadDriver(LoadSpec(host="http://127.0.0.1:9", locustfile=stubborn,
                               max_duration_s=30), tmp_path)
    load.start()
    pgid = load._proc.pid if load._proc else 0
    t = time.monotonic()
    load.stop(timeout=1.0)
    assert time.monotonic() - t < 5
    assert not load.running
    assert pids_in_group(pgid) == []


def test_load_stops_when_the_driving_process_dies(tmp_path: Path) -> None:
    """Even a SIGKILLed driver (no atexit, no finally) leaves no locust behind."""
    with LoopbackServer() as srv:
        script = textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from aftershock.load import LoadDriver, LoadSpec
            d = LoadDriver(LoadSpec(host={srv.url!r}, rate=20, max_duration_s=60),
                           Path({str(tmp_path)!r}))
            d.start()
            print(d._proc.pid, flush=True)
            time.sleep(60)
        """)
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None
        locust_pid = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while pids_in_group(locust_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids_in_group(locust_pid) == []


def test_atexit_stops_a_forgotten_driver(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        script = textwrap.dedent(f"""
            from pathlib import Path
            from aftershock.load import LoadDriver, LoadSpec
            d = LoadDriver(LoadSpec(host={srv.url!r}, rate=20, max_duration_s=60),
                           Path({str(tmp_path)!r}))
            d.start()
            print(d._proc.pid, flush=True)
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=30)
        locust_pid = int(out.stdout.split()[0])
        assert pids_in_group(locust_pid) == []


def test_a_reused_workdir_starts_with_no_records_of_an_earlier_run(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        spec = LoadSpec(host=srv.url, rate=50, max_duration_s=10)
        with LoadDriver(spec, tmp_path) as first:
            time.sleep(0.5)
        earlier = first.requests()
        with LoadDriver(spec, tmp_path) as second:
            time.sleep(0.5)
        again = second.requests()
    assert len(earlier) > 5 and len(again) > 5
    assert again.starts[0] > earlier.starts[-1]


def test_a_relative_workdir_is_resolved_before_locust_changes_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with LoopbackServer() as srv:
        with LoadDriver(LoadSpec(host=srv.url, rate=50, max_duration_s=10),
                        Path("results/load/x")) as load:
            time.sleep(0.5)
        assert len(load.requests()) > 5
    assert load.workdir == tmp_path / "results/load/x"


def test_the_recorder_writes_in_batches_the_first_request_at_once(tmp_path: Path) -> None:
    # In a child: importing locust monkey-patches the process.
    script = textwrap.dedent("""
        import os, sys, time
        from aftershock.load import aftershock_recorder as rec

        class Response:
            status_code = 200
            headers = None

        def lines():
            path = os.path.join(sys.argv[1], f"requests-{os.getpid()}.jsonl")
            with open(path) as f:
                return sum(1 for _ in f)

        def request():
            rec._on_request(name="/", response_time=1.5, response=Response(),
                            start_time=time.time())

        request()
        counts = [lines()]
        for _ in range(rec.BATCH_LINES):
            request()
        counts.append(lines())
        for _ in range(10):
            request()
        counts.append(lines())
        rec._flush()
        counts.append(lines())
        print(counts)
    """)
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ, "AFTERSHOCK_LOCUST_RECORDS": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    batch = 4096
    assert out.stdout.split() == ["[1,", f"{1 + batch},", f"{1 + batch},", f"{11 + batch}]"]
