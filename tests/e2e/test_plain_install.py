"""aftershock as a new user gets it: the wheel, a fresh virtualenv, an empty directory.

The project's wheel is built and installed into a throwaway venv (dependencies at the versions
requirements.lock pins). Every command then runs from an empty temporary directory, far from the
source tree, so anything the engine still finds through the checkout (experiments/, the default
locustfile, k8s-job.yaml) shows up here as a failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ROOT, Scratch, write_config

pytestmark = pytest.mark.e2e

LOAD = {"rate": 200, "steady_seconds": 8, "after_seconds": 8}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh venv with only the wheel and its pinned dependencies."""
    base = tmp_path_factory.mktemp("plain-install")
    source, wheels, env = base / "source", base / "wheels", base / "venv"
    # From a copy: setuptools' build/ directory in a checkout can hold modules deleted since,
    # which would make the wheel under test one that no clean build produces.
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".testbed", "build", "results", "*.egg-info", "__pycache__",
        ".mypy_cache", ".ruff_cache", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("aftershock-*.whl")
    venv.EnvBuilder(with_pip=True).create(env)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    proc = subprocess.run([*pip, "-c", str(ROOT / "requirements.lock"), str(wheel)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return env / "bin"


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "elsewhere"
    d.mkdir()
    return d


def _run(bin_dir: Path, cwd: Path, *args: str, timeout: float = 600
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "aftershock"), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=cwd)


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n" \
           f"{proc.stderr[-4000:]}"


def test_the_wheel_runs_pod_kill_from_an_empty_directory(
        installed: Path, empty_dir: Path, scratch: Scratch, tmp_path: Path) -> None:
    scratch.apply("web")
    cfg = write_config(tmp_path / "my.yaml", scratch.name, "web", load=LOAD)
    # results_dir relative: the results land in the directory the user runs from.
    data = yaml.safe_load(cfg.read_text())
    data["results_dir"] = "results"
    cfg.write_text(yaml.safe_dump(data))

    proc = _run(installed, empty_dir, "run", "--config", str(cfg), "-k", "pod_kill")
    assert proc.returncode == 0, _show(proc)
    results = json.loads((empty_dir / "results" / "results.json").read_text())
    names = {e["name"]: e for e in results["experiments"]}
    assert names["pod-kill"]["verdict"] == "pass", json.dumps(names["pod-kill"])[:3000]
    assert (empty_dir / "results" / "junit.xml").is_file()
    assert list((empty_dir / "results" / "timelines").glob("*.jsonl"))


def test_the_other_commands_work_from_an_empty_directory(
        installed: Path, empty_dir: Path, scratch: Scratch, tmp_path: Path) -> None:
    scratch.apply("web")
    cfg = write_config(tmp_path / "my.yaml", scratch.name, "web")

    example = _run(installed, empty_dir, "config", "example")
    assert example.returncode == 0, _show(example)
    assert "target:" in example.stdout

    module = subprocess.run([str(installed / "python"), "-m", "aftershock", "--help"],
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=empty_dir)
    assert module.returncode == 0 and "usage: aftershock" in module.stdout, _show(module)

    check = _run(installed, empty_dir, "check", "--config", str(cfg))
    assert check.returncode in (0, 1), _show(check)  # a verdict, not a usage or setup error
    assert "posture" in (check.stdout + check.stderr).lower()

    # The Job's manifests come from the installed package.
    render = _run(installed, empty_dir, "job", "render", "--config", str(cfg),
                  "--image", "aftershock.local/aftershock:test", "--no-rbac-check")
    assert render.returncode == 0, _show(render)
    kinds = [d["kind"] for d in yaml.safe_load_all(render.stdout) if d]
    assert {"ServiceAccount", "Role", "Job"} <= set(kinds), kinds

    # Nothing installs a generic top-level name: only aftershock is importable from the venv.
    tops = subprocess.run([str(installed / "python"), "-c",
                           "import importlib.util as u; print(u.find_spec('checks') is None, "
                           "u.find_spec('experiments') is None, "
                           "u.find_spec('aftershock.checks') is not None)"],
                          capture_output=True, text=True, timeout=60, check=True, cwd=empty_dir)
    assert tops.stdout.split() == ["True", "True", "True"], tops.stdout


def test_the_wheel_lists_no_top_level_package_but_aftershock(installed: Path) -> None:
    env = installed.parent
    records = list(env.glob("lib/python3*/site-packages/aftershock-*.dist-info/RECORD"))
    assert len(records) == 1, records
    # The RECORD lists every installed file; scripts sit outside site-packages ("../../../bin").
    tops = {line.split("/", 1)[0] for line in records[0].read_text().splitlines()
            if line and not line.startswith("..")}
    assert tops == {"aftershock", records[0].parent.name}, tops
