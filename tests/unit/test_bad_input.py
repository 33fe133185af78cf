"""The bad-input corpus: every input a person (or a broken file) can hand the CLI offline
ends with a clear message, exit 2, no traceback, and nothing written or deleted.

One table: each case builds its files in tmp_path, runs ``aftershock`` in this process
(with the working directory at tmp_path, so a stray write shows), and checks the exit
code, fragments of the message, the absence of a traceback, and that tmp_path is exactly
as it was. The few cases that need a real process (pytest inside ``run``, a closed or full
stdout) run the CLI as a subprocess below the table.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aftershock import cli
from aftershock.config.sources import MAX_CONFIG_BYTES
from aftershock.results import RESULTS_FILE, Results

TARGET = "target:\n  namespace: shop\n  deployment: web\n  service: web\n"
REQ = ('{"record":"request","start":%s,"latency_ms":%s,"status":200,"error":"",'
       '"new_connection":null,"name":"/"}')
GOOD = REQ % ("1700000000.0", "1.5")
EXPERIMENT = {"name": "a", "verdict": "pass", "message": "a: pass"}


def _bomb() -> str:
    """A "billion laughs": 9 levels of 9 aliases each, 9^10 strings once expanded."""
    lines = ["x:", '  a0: &a0 ["/l", "/l", "/l", "/l", "/l", "/l", "/l", "/l", "/l"]']
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n" + TARGET + "  paths: *a9\n"


def _results(doc: object) -> bytes:
    return json.dumps(doc).encode()


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]  # "{tmp}" is replaced by tmp_path
    files: dict[str, bytes | str] = field(default_factory=dict)
    fragments: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    code: int = 2
    max_message: int = 4000  # characters of stderr: a rejected value is clipped


def show(*extra: str) -> list[str]:
    return ["config", "show", "--config", "{tmp}/a.yaml", *extra]


def verdict(*extra: str) -> list[str]:
    return ["verdict", "--timeline", "{tmp}/t.jsonl", *extra]


REPORT = ["report", "{tmp}/r"]

CASES = [
    # ---- config files that are not text, or not sane YAML
    Case("config-binary", show(), {"a.yaml": bytes(range(256)) * 8}, ("not UTF-8",)),
    Case("config-latin1", show(), {"a.yaml": b"target:\n  namespace: sh\xe9p\n"},
         ("not UTF-8", "line 2")),
    Case("config-utf16", show(), {"a.yaml": TARGET.encode("utf-16")}, ("not UTF-8",)),
    Case("config-nested-100k", show(), {"a.yaml": "[" * 100_000 + "]" * 100_000},
         ("nested too deeply",)),
    Case("config-nested-block", show(),
         {"a.yaml": "".join(f"{' ' * i}k{i}:\n" for i in range(200)) + " " * 200 + "v: 1\n"},
         ("nested more than 32 levels",)),
    Case("config-alias-bomb", show(), {"a.yaml": _bomb()}, ("expands to more than",)),
    Case("config-too-big", show(), {"a.yaml": "#" * (MAX_CONFIG_BYTES + 1)},
         ("larger than 1 MiB",)),
    Case("config-duplicate-key", show(), {"a.yaml": TARGET + "  namespace: other\n"},
         ("duplicate key 'namespace'", "line 5")),
    Case("config-number-key", show(), {"a.yaml": "1: 2\n" + TARGET},
         ("top-level key 1 is not a name",)),
    Case("config-unhashable-key", show(), {"a.yaml": "? [a, b]\n: 1\n"},
         ("unhashable key",)),
    Case("config-python-tag", show(), {"a.yaml": "!!python/object:os.system {}\n"},
         ("could not determine a constructor",)),
    Case("config-huge-integer", show(), {"a.yaml": TARGET + "load:\n  users: " + "9" * 10_000},
         ("cannot be read",), max_message=1000),
    # ---- numbers: strict, finite, in range
    Case("rate-true", show(), {"a.yaml": TARGET + "load:\n  rate: true\n"},
         ("load.rate", "not true/false")),
    Case("steady-inf", show(), {"a.yaml": TARGET + "load:\n  steady_seconds: .inf\n"},
         ("load.steady_seconds", "finite")),
    Case("timeout-nan", show("--set", "load.timeout_s=.nan"), {"a.yaml": TARGET},
         ("load.timeout_s", "finite", "from --set load.timeout_s=.nan")),
    Case("drain-timeout-inf", show("--set", "faults.drain.timeout_s=.inf"), {"a.yaml": TARGET},
         ("faults.drain.timeout_s", "finite")),
    Case("rate-1e38", show("--set", "load.rate=1.0e+38"), {"a.yaml": TARGET},
         ("load.rate", "less than or equal to 100000")),
    Case("users-1e9", show("--set", "load.users=1000000000"), {"a.yaml": TARGET},
         ("load.users", "less than or equal to 100000")),
    Case("slo-inf", show("--set", "slo.during.max_outage_ms=.inf"), {"a.yaml": TARGET},
         ("slo.during.max_outage_ms: a finite number",
          "from --set slo.during.max_outage_ms=.inf")),
    Case("grace-huge", show("--set", "faults.pod_kill.grace=99999999999999999999"),
         {"a.yaml": TARGET}, ("faults.pod_kill.grace", "0 to 86,400")),
    # ---- names and paths
    Case("namespace-not-a-label", show("--set", "target.namespace=Shop_NS!"),
         {"a.yaml": TARGET}, ("target.namespace", "RFC 1123 label")),
    Case("deployment-slash", show("--set", "target.deployment=a/b"), {"a.yaml": TARGET},
         ("target.deployment", "RFC 1123 subdomain")),
    Case("namespace-huge", show(),
         {"a.yaml": TARGET.replace("shop", "n" * 500_000)},
         ("target.namespace", "at most 63 characters", "500,00"), max_message=1500),
    Case("service-uppercase", show("--set", "target.service=Web"), {"a.yaml": TARGET},
         ("target.service", "RFC 1123 label")),
    Case("extra-namespace-bad", show("--set", "target.extra_namespaces=[ok, Bad_1]"),
         {"a.yaml": TARGET}, ("target.extra_namespaces", "RFC 1123 label")),
    Case("results-dir-empty", show(), {"a.yaml": TARGET + 'results_dir: ""\n'},
         ("results_dir must not be empty",)),
    Case("last-path-bad-clipped", show(),
         {"a.yaml": TARGET + "  paths: [" + ", ".join(["/ok"] * 50_000)
          + ", " + "x" * 300_000 + "]\n"},
         ("target.paths", "paths must start with '/'", "characters"), max_message=2500),
    # ---- every problem at once, each blamed on its own source
    Case("conflict-with-others",
         show("--set", "faults.pod_kill.count=2", "--set", "faults.pod_kill.percent=50",
              "--set", "faults.pod_kill.grace=x", "--set", "load.rate=-1"),
         {"a.yaml": TARGET},
         ("3 problems", "count or percent, not both", "faults.pod_kill.grace", "load.rate")),
    Case("env-below-a-leaf", show(), {"a.yaml": TARGET},
         ("target.namespace", "from environment variable AFTERSHOCK_TARGET__NAMESPACE__X"),
         absent=("config file",), env={"AFTERSHOCK_TARGET__NAMESPACE__X": "1"}),
    Case("set-below-a-leaf", show("--set", "load.rate.x=1"), {"a.yaml": TARGET},
         ("load.rate", "from --set load.rate.x=1"), absent=("config file",)),
    # ---- results directories that cannot be written, refused before any cluster
    Case("check-results-under-a-file",
         ["check", "--config", "{tmp}/a.yaml", "--results", "{tmp}/file/res"],
         {"a.yaml": TARGET, "file": "x"}, ("cannot be used", "results_dir")),
    Case("job-run-results-under-a-file",
         ["job", "run", "--config", "{tmp}/a.yaml", "--results", "{tmp}/file/res"],
         {"a.yaml": TARGET, "file": "x"}, ("cannot be used", "results_dir")),
    # ---- verdict's timeline
    Case("timeline-directory", ["verdict", "--timeline", "{tmp}"], {}, ("is a directory",)),
    Case("timeline-missing", verdict(), {}, ("does not exist",)),
    Case("timeline-binary", verdict(), {"t.jsonl": bytes(range(256)) * 8},
         ("t.jsonl:2", "not UTF-8")),  # byte 10 is a newline
    Case("timeline-ff-byte", verdict(),
         {"t.jsonl": (GOOD + "\n").encode() + b'{"name":"\xff"}\n' + (GOOD + "\n").encode()},
         ("t.jsonl:2", "not UTF-8")),
    Case("timeline-nested-100k", verdict(),
         {"t.jsonl": GOOD + "\n" + "[" * 100_000 + "]" * 100_000 + "\n"},
         ("t.jsonl:2", "nested too deeply")),
    Case("timeline-request-with-a-100k-deep-field", verdict(),
         {"t.jsonl": "\n".join([GOOD, GOOD.replace("{", '{"x":' + "[" * 100_000
                                                    + "]" * 100_000 + ",", 1), GOOD]) + "\n"},
         ("t.jsonl:2", "nested too deeply")),
    Case("timeline-long-line", verdict(), {"t.jsonl": "0" * (9 << 20)},
         ("t.jsonl:1", "longer than 8 MiB")),
    Case("timeline-nan-latency", verdict(),
         {"t.jsonl": "\n".join([GOOD, REQ % ("1700000000.1", "NaN"), GOOD]) + "\n"},
         ("t.jsonl:2", "NaN")),
    Case("timeline-infinity-start", verdict(),
         {"t.jsonl": "\n".join([GOOD, REQ % ("Infinity", "1.0")]) + "\n"},
         ("t.jsonl:2", "Infinity")),
    Case("timeline-1e999-latency", verdict(),
         {"t.jsonl": "\n".join([GOOD, REQ % ("1700000000.1", "1e999"), GOOD]) + "\n"},
         ("t.jsonl:2", "finite")),
    Case("timeline-not-json-last-line", verdict(), {"t.jsonl": GOOD + "\nnot json"},
         ("t.jsonl:2", "bad record")),
    Case("verdict-misspelt-env", verdict(), {"t.jsonl": GOOD + "\n"},
         ("AFTERSHOCK_SLO_DURING__MAX_OUTAGE_MS", "did you mean "
          "AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS"),
         env={"AFTERSHOCK_SLO_DURING__MAX_OUTAGE_MS": "500"}),
    Case("verdict-unknown-env", verdict(), {"t.jsonl": GOOD + "\n"},
         ("AFTERSHOCK_BOGUS", "unknown key"), env={"AFTERSHOCK_BOGUS": "1"}),
    Case("verdict-slo-inf", verdict("--set", "slo.during.p95_ms=.inf"), {"t.jsonl": GOOD + "\n"},
         ("slo.during.p95_ms: a finite number",)),
    # ---- report's results.json
    Case("report-list", REPORT, {"r/results.json": b"[]"}, ("a JSON list",)),
    Case("report-truncated", REPORT, {"r/results.json": b'{"schema": 1, "experiments": ['},
         ("not valid JSON",)),
    Case("report-binary", REPORT, {"r/results.json": bytes(range(128, 256))},
         ("not UTF-8",)),
    Case("report-no-message", REPORT,
         {"r/results.json": _results({"schema": 1, "experiments": [
             {"name": "a", "verdict": "pass"}]})}, ('experiments[0] has no string "message"',)),
    Case("report-schema-2", REPORT, {"r/results.json": _results({"schema": 2,
                                                                 "experiments": []})},
         ("schema '2'", "reads schema 1")),
    Case("report-no-schema", REPORT, {"r/results.json": _results({"experiments": []})},
         ('no "schema"',)),
    Case("report-maybe", REPORT,
         {"r/results.json": _results({"schema": 1, "experiments": [
             {**EXPERIMENT, "verdict": "maybe"}]})}, ("verdict 'maybe'",)),
    Case("report-posture-bad", REPORT,
         {"r/results.json": _results({"schema": 1, "experiments": [EXPERIMENT],
                                      "posture": {"verdict": "meh", "counts": {}}})},
         ("posture has verdict 'meh'",)),
    Case("report-findings-not-a-list", REPORT,
         {"r/results.json": _results({"schema": 1, "experiments": [
             {**EXPERIMENT, "check": {"name": "c", "findings": 5}}]})},
         ("experiments[0].check.findings is not a list",)),
    Case("report-nan", REPORT, {"r/results.json": b'{"schema": 1, "x": NaN, '
                                                  b'"experiments": []}'},
         ("not valid JSON",)),
]


def _snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under ``root`` with its mode and (for small files) its bytes."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        data = p.read_bytes() if p.is_file() and st.st_size < (1 << 16) else None
        out[str(p.relative_to(root))] = (st.st_mode, data if data is not None
                                         else str(st.st_size).encode())
    return out


def _run_in_process(argv: list[str]) -> tuple[int | None, str, str]:
    """(exit code, stdout, stderr) of ``aftershock argv``; an escaped exception is
    rendered as the traceback the user would have seen."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: int | None = cli.main(argv)
        except SystemExit as e:
            code = int(e.code) if isinstance(e.code, int) else 1
        except BaseException:  # what the user would see as a traceback
            err.write(traceback.format_exc())
            code = None
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_a_clear_exit_2(case: Case, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, data in case.files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    for name in [n for n in os.environ if n.startswith("AFTERSHOCK_")]:
        monkeypatch.delenv(name)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # a stray write into the working directory shows below
    before = _snapshot(tmp_path)
    t0 = time.monotonic()
    code, _out, err = _run_in_process([a.replace("{tmp}", str(tmp_path))
                                       for a in case.argv])
    elapsed = time.monotonic() - t0
    assert "Traceback" not in err, err
    assert code == case.code, err
    assert err.startswith("aftershock: "), err
    for fragment in case.fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    for fragment in case.absent:
        assert fragment not in err, err
    assert len(err) <= case.max_message, f"{len(err):,} characters of message"
    assert _snapshot(tmp_path) == before, "the command wrote or deleted a file"
    assert elapsed < 20, f"took {elapsed:.1f} s"


# ---------------------------------------------------------------- as a real process


def _aftershock(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSHOCK_")}
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "aftershock", *args], text=True,
                          stderr=subprocess.PIPE, env=env, timeout=120,
                          **kw)  # type: ignore[call-overload]


def test_run_results_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(TARGET)
    (tmp_path / "file").write_text("x")
    before = _snapshot(tmp_path)
    r = _aftershock("run", "--config", str(tmp_path / "a.yaml"),
                    "--results", str(tmp_path / "file" / "res"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "cannot be used" in r.stderr and "results_dir" in r.stderr
    assert _snapshot(tmp_path) == before


def test_run_with_a_bad_option_keeps_the_previous_results(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(TARGET)
    res = tmp_path / "res"
    res.mkdir()
    (res / RESULTS_FILE).write_text('{"schema": 1, "experiments": []}\n')
    before = _snapshot(tmp_path)
    r = _aftershock("run", "--config", str(tmp_path / "a.yaml"), "--results", str(res),
                    "--bogus-flag", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "nothing ran" in r.stderr and "results in" not in r.stderr
    assert _snapshot(tmp_path) == before


def test_a_closed_stdout_ends_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written (`| head -0`)
    try:
        r = _aftershock("config", "example", stdout=write_end)
    finally:
        os.close(write_end)
    assert r.returncode == 2
    assert r.stderr == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_a_message() -> None:
    with open("/dev/full", "w") as full:
        r = _aftershock("config", "example", stdout=full)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "cannot write the output: No space left on device" in r.stderr


def test_an_endless_timeline_is_refused(tmp_path: Path) -> None:
    zero = Path("/dev/zero")
    if not zero.exists():
        pytest.skip("needs /dev/zero")
    code, _out, err = _run_in_process(["verdict", "--timeline", str(zero)])
    assert (code, "Traceback" in err) == (2, False), err
    assert "longer than 8 MiB" in err


# ---------------------------------------------------------------- the rest of the fixes


def test_results_json_is_as_readable_as_junit(tmp_path: Path) -> None:
    path = Results(tmp_path).write()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_credential_fix_names_options_every_command_has(tmp_path: Path) -> None:
    from aftershock.errors import ClusterUnreachable
    from aftershock.kube.cluster import connect_to
    with pytest.raises(ClusterUnreachable) as e:
        connect_to(str(tmp_path / "missing-kubeconfig"), None, ["shop"])
    assert "--kubeconfig" not in str(e.value)
    assert "--set kubeconfig=FILE" in str(e.value)


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    from aftershock.config import ConfigError, file_layer
    (tmp_path / "a.yaml").write_text(_bomb())
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than"):
        file_layer(tmp_path / "a.yaml")
    assert time.monotonic() - t0 < 2.0


def test_aliases_and_merge_keys_within_bounds_still_work(tmp_path: Path) -> None:
    from aftershock.config import file_layer
    # A merge key and an alias, as people use them to share settings.
    (tmp_path / "a.yaml").write_text(
        "x-names: &names {deployment: web, service: web}\n"
        "x-paths: &paths [/, /api]\n"
        "target:\n  <<: *names\n  namespace: shop\n  paths: *paths\n")
    data = file_layer(tmp_path / "a.yaml").values
    assert data["target"] == {"deployment": "web", "service": "web", "namespace": "shop",
                              "paths": ["/", "/api"]}


def test_every_default_and_the_example_are_within_the_ranges(tmp_path: Path) -> None:
    from aftershock.config import example_yaml, load_config
    (tmp_path / "a.yaml").write_text(example_yaml())
    config = load_config(tmp_path / "a.yaml", environ={},
                         overrides={"target": {"namespace": "shop", "deployment": "web",
                                               "service": "web"}})
    assert config.load.rate == 200.0


def _timeline_lines_of(data: bytes) -> list[str]:
    import io

    from aftershock.results import timeline_lines
    return list(timeline_lines(io.BytesIO(data), "t"))


@pytest.mark.parametrize("data", [b"", b"a", b"a\n", b"a\nb", b"a\n\nb\n", b"x" * (3 << 20)
                                  + b"\n" + b"y" * 10 + b"\n\xc3\xa9\n"])
def test_the_bounded_reader_yields_the_same_lines_as_text_mode(data: bytes) -> None:
    assert _timeline_lines_of(data) == data.decode().splitlines()


def test_a_multibyte_character_across_a_chunk_boundary_is_kept() -> None:
    data = b"x" * ((1 << 20) - 1) + "é".encode() + b"\nnext\n"
    assert _timeline_lines_of(data) == data.decode().splitlines()



def test_a_huge_unknown_key_and_a_huge_set_value_are_clipped(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(TARGET + "? " + "k" * 200_000 + "\n: 1\n")
    code, _out, err = _run_in_process(["config", "show", "--config", str(tmp_path / "a.yaml"),
                                       "--set", "load.rate=" + "9" * 100_000])
    assert (code, "Traceback" in err) == (2, False), err[:2000]
    assert "unknown key" in err and "load.rate" in err
    assert len(err) < 2000, f"{len(err):,} characters"

