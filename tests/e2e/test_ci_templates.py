"""The CI templates (examples/ci/) run for real against the testbed: each template's script
steps, extracted from the YAML, run as shell scripts in a copy of this checkout, with the
variables the template documents set. The suite runs as a Job from its image (built from
the Dockerfile and imported, as tests/e2e/test_job.py does), one short experiment
(SUITE_ARGS=-k pod_kill) against `web` in a scratch namespace.

What a CI service does around the scripts is emulated, no more: GitHub's `${{ ... }}`
expressions, $GITHUB_ENV and $GITHUB_STEP_SUMMARY, a step's `if: always()`, the cache
(restored before and saved after, so the nightly is run twice and the second run must see
the first in its history), and the artifacts (results/ and its JUnit file must be there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import KUBECONFIG, ROOT, Scratch

pytestmark = pytest.mark.e2e

CI = ROOT / "examples" / "ci"
STEP_TIMEOUT_S = 600
#: Short phases: the template's config (examples/ci/staging.yaml) is for a real staging.
SHORT = {"AFTERSHOCK_LOAD__STEADY_SECONDS": "6", "AFTERSHOCK_LOAD__AFTER_SECONDS": "4"}


@dataclass
class Step:
    name: str
    code: int | None  # None: not run (an earlier step failed)
    output: str = ""


@dataclass
class Pipeline:
    steps: list[Step] = field(default_factory=list)

    def code(self, name: str) -> int | None:
        return next(s.code for s in self.steps if s.name == name)

    def show(self) -> str:
        return "\n".join(f"--- {s.name}: exit {s.code}\n{s.output[-3000:]}" for s in self.steps)


@pytest.fixture(scope="module")
def image(suite_image: str) -> str:
    return suite_image


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as CI would clone it: the tracked and new files, symlinks kept."""
    dest = tmp_path_factory.mktemp("checkout")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if rel.startswith(".testbed") or not (src.exists() or src.is_symlink()):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dest / rel)
        elif src.is_file():
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def python_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv standing in for setup-python / the python image: its bin comes first on
    PATH, so the templates' `python -m pip install` installs into it."""
    venv = tmp_path_factory.mktemp("ci-python") / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
    return venv / "bin"


def base_env(bin_dir: Path, home: Path) -> dict[str, str]:
    # Nothing of this process's environment: an AFTERSHOCK_* variable would be config.
    return {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
            "LANG": "C.UTF-8", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR",
                                            str(Path.home() / ".cache" / "pip"))}


def bash(script: str, env: Mapping[str, str], cwd: Path) -> Step:
    proc = subprocess.run(["bash", "-e", "-c", script], env=dict(env), cwd=cwd,
                          capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False)
    return Step("", proc.returncode, proc.stdout + proc.stderr)


# ---------------------------------------------------------------- GitHub Actions

_EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def _expand(text: str, ctx: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in ctx:
            raise AssertionError(f"the e2e does not emulate ${{{{ {m.group(1)} }}}}")
        return ctx[m.group(1)]
    return _EXPR.sub(one, text)


def run_github(doc: dict[str, Any], env: dict[str, str], secrets: Mapping[str, str],
               cwd: Path, cache: Path, run_id: str) -> Pipeline:
    job = doc["jobs"]["resilience"]
    runner_temp = cwd.parent / f"runner-temp-{run_id}"
    runner_temp.mkdir()
    env = {**env, "RUNNER_TEMP": str(runner_temp),
           "GITHUB_ENV": str(runner_temp / "github_env"),
           "GITHUB_STEP_SUMMARY": str(runner_temp / "summary.md")}
    for k, v in job.get("env", {}).items():
        env.setdefault(k, str(v))  # the variables the test sets win over the defaults
    ctx = {f"secrets.{k}": v for k, v in secrets.items()}
    ctx |= {f"env.{k}": v for k, v in env.items()} | {"github.run_id": run_id}
    out = Pipeline()
    failed = False
    for i, step in enumerate(job["steps"]):
        name = step.get("name") or step.get("uses") or f"step {i}"
        if failed and step.get("if") != "always()":
            out.steps.append(Step(name, None))
            continue
        step_env = {**env, **_github_env(env["GITHUB_ENV"])}
        step_env |= {k: _expand(str(v), ctx) for k, v in step.get("env", {}).items()}
        if "run" in step:
            done = bash(_expand(step["run"], ctx), step_env, cwd)
        else:
            done = _github_action(step["uses"], {k: _expand(str(v), ctx)
                                                 for k, v in step.get("with", {}).items()},
                                  cwd, cache)
        done.name = name
        out.steps.append(done)
        failed = failed or done.code != 0
    return out


def _github_env(path: str) -> dict[str, str]:
    p = Path(path)
    if not p.exists():
        return {}
    return dict(line.split("=", 1) for line in p.read_text().splitlines() if "=" in line)


def _github_action(uses: str, args: Mapping[str, str], cwd: Path, cache: Path) -> Step:
    action = uses.split("@", 1)[0]
    if action in ("actions/checkout", "actions/setup-python"):
        return Step("", 0, "(the checkout copy and the fresh venv)")
    if action == "actions/cache/restore":
        prefix = args["restore-keys"].strip()
        entries = sorted((p for p in cache.glob(f"{prefix}*")), key=lambda p: p.stat().st_mtime)
        if entries:
            shutil.copytree(entries[-1], cwd / args["path"], dirs_exist_ok=True)
        return Step("", 0, f"restored {entries[-1].name if entries else 'nothing'}")
    if action == "actions/cache/save":
        src = cwd / args["path"]
        if not src.exists():
            return Step("", 1, f"nothing to cache at {args['path']}")
        shutil.copytree(src, cache / args["key"])
        return Step("", 0, f"saved {args['key']}")
    if action == "mikepenz/action-junit-report":
        report = cwd / args["report_paths"]
        try:
            ET.parse(report)  # a JUnit file CI can read
        except (OSError, ET.ParseError) as e:
            return Step("", 1, f"no JUnit report CI can read: {e}")
        return Step("", 0, f"read {report}")
    if action == "actions/upload-artifact":
        kept = cwd / args["path"]
        return Step("", 0 if (kept / "results.json").is_file() else 1, f"artifact {kept}")
    raise AssertionError(f"the e2e does not emulate {uses}")


# ---------------------------------------------------------------- GitLab CI


def run_gitlab(doc: dict[str, Any], env: dict[str, str], cwd: Path, cache: Path) -> Pipeline:
    job = doc["aftershock:nightly"]
    variables = {k: str(v) for k, v in job.get("variables", {}).items()}
    for k, v in variables.items():
        if k not in env:  # the test's own values win, as project variables do
            env[k] = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), v)
    for path in job["cache"]["paths"]:
        if (cache / path).exists():
            shutil.copytree(cache / path, cwd / path, dirs_exist_ok=True)
    out = Pipeline()
    # script: one shell, stops at the first failing line; after_script: its own shell,
    # always.
    script = bash("\n".join(job["script"]), env, cwd)
    script.name = "script"
    after = bash("\n".join(job["after_script"]), env, cwd)
    after.name = "after_script"
    out.steps += [script, after]
    if job["cache"].get("when") == "always" or script.code == 0:
        for path in job["cache"]["paths"]:
            if (cwd / path).exists():
                shutil.copytree(cwd / path, cache / path, dirs_exist_ok=True)
    for path in job["artifacts"]["paths"]:
        assert (cwd / path).exists(), f"artifact {path} missing"
    ET.parse(cwd / job["artifacts"]["reports"]["junit"])
    return out


# ---------------------------------------------------------------- the tests


def _variables(scratch: Scratch, image: str) -> dict[str, str]:
    return {"SUITE_IMAGE": image, "SUITE_ARGS": "-k pod_kill",
            "AFTERSHOCK_TARGET__NAMESPACE": scratch.name, **SHORT}


def _fresh(checkout: Path, tmp: Path) -> Path:
    cwd = tmp / "work"
    shutil.copytree(checkout, cwd, symlinks=True)
    return cwd


_VERDICT = re.compile(r"\b(pass|fail|inconclusive)\b")


def _history_rows(text: str) -> int:
    """The runs a trend table (``aftershock history``) lists: one verdict per run."""
    return sum(1 for line in text.splitlines() if _VERDICT.search(line))


def test_the_github_nightly_runs_and_carries_its_history(
        scratch: Scratch, image: str, checkout: Path, python_env: Path,
        tmp_path: Path) -> None:
    scratch.apply("web")
    doc = yaml.safe_load((CI / "github-actions-nightly.yml").read_text())
    cache = tmp_path / "cache"
    cache.mkdir()
    secrets = {"STAGING_KUBECONFIG": KUBECONFIG.read_text(), "AFTERSHOCK_HISTORY_URL": ""}
    rows = []
    for night in (1, 2):
        cwd = _fresh(checkout, tmp_path / f"night-{night}")
        env = base_env(python_env, tmp_path) | _variables(scratch, image)
        pipeline = run_github(doc, env, secrets, cwd, cache, f"{night}")
        print(pipeline.show()[-4000:])
        assert all(s.code == 0 for s in pipeline.steps), pipeline.show()
        assert (cwd / "results" / "junit.xml").is_file()
        summary = (cwd.parent / f"runner-temp-{night}" / "summary.md").read_text()
        assert "pod-kill" in summary, summary
        history = (cwd / "results" / "history.txt").read_text()
        print(history)
        rows.append(_history_rows(history))
    # The second night restored the first night's store from the cache and added itself.
    assert rows[0] >= 1 and rows[1] == rows[0] + 1, rows


def test_the_gitlab_nightly_runs_and_carries_its_history(
        scratch: Scratch, image: str, checkout: Path, python_env: Path,
        tmp_path: Path) -> None:
    scratch.apply("web")
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    cache = tmp_path / "cache"
    cache.mkdir()
    kubeconfig = tmp_path / "staging-kubeconfig"
    shutil.copy(KUBECONFIG, kubeconfig)
    rows = []
    for night in (1, 2):
        cwd = _fresh(checkout, tmp_path / f"night-{night}")
        env = base_env(python_env, tmp_path) | _variables(scratch, image) | {
            "STAGING_KUBECONFIG": str(kubeconfig), "CI_PIPELINE_SOURCE": "schedule",
            "RESILIENCE_NIGHTLY": "1"}
        pipeline = run_gitlab(doc, env, cwd, cache)
        print(pipeline.show()[-4000:])
        assert pipeline.code("script") == 0, pipeline.show()
        assert "pod-kill" in (cwd / "results" / "report.txt").read_text(), pipeline.show()
        history = (cwd / "results" / "history.txt").read_text()
        print(history)
        rows.append(_history_rows(history))
    assert (cache / "aftershock-history" / "aftershock-history.sqlite").is_file()
    assert rows[0] >= 1 and rows[1] == rows[0] + 1, rows
