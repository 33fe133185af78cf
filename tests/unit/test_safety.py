"""Rollback must run whatever ends the body: success, exception, Ctrl-C, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from aftershock import safety


def test_rollback_runs_on_success_and_on_exception() -> None:
    done: list[str] = []
    with safety.rolled_back(lambda: done.append("ok")):
        pass
    with pytest.raises(ValueError), safety.rolled_back(lambda: done.append("err")):
        raise ValueError("boom")
    assert done == ["ok", "err"]


def _run_child(body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent("""
        import os, signal, time
        from aftershock import safety
        safety.install_signal_handlers()
        log = []
        try:
    """) + textwrap.indent(textwrap.dedent(body), "    ") + textwrap.dedent("""
        except safety.Terminated as exc:
            print("terminated:", exc)
        print("log:", ",".join(log))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)


def test_sigterm_in_the_body_runs_the_rollback() -> None:
    out = _run_child("""
        def undo():
            log.append("rolled back")
        with safety.rolled_back(undo):
            log.append("injected")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            log.append("not reached")
    """)
    assert "terminated: received SIGTERM" in out.stdout, out.stderr
    assert "log: injected,rolled back" in out.stdout


def test_sigterm_during_rollback_is_held_until_it_finishes() -> None:
    out = _run_child("""
        def undo():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            log.append("rollback finished")
        with safety.rolled_back(undo):
            log.append("injected")
    """)
    assert "log: injected,rollback finished" in out.stdout, out.stderr
    assert "terminated: received SIGTERM during rollback" in out.stdout


def test_handlers_are_only_installed_from_the_main_thread() -> None:
    import threading
    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=safety.install_signal_handlers)
    t.start()
    t.join()
    assert signal.getsignal(signal.SIGTERM) is before
    assert os.getpid() > 0
