"""The CI templates (examples/ci/) against the published schemas of GitHub Actions workflows
and GitLab CI, as check-jsonschema vendors them (no network), and what the nightly stage
must do: carry the history store, publish results/ and JUnit. tests/e2e/test_ci_templates.py
runs their script steps against the testbed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
GITHUB = CI / "github-actions-nightly.yml"
GITLAB = CI / "gitlab-ci.yml"


@pytest.mark.parametrize(("template", "schema"), [
    (GITHUB, "vendor.github-workflows"),
    (GITLAB, "vendor.gitlab-ci"),
])
def test_the_template_is_valid_against_its_published_schema(template: Path, schema: str
                                                            ) -> None:
    proc = subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", schema, str(template)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_catches_a_broken_template(tmp_path: Path) -> None:
    # The check is a real one: a step with neither `run` nor `uses` is refused.
    doc = yaml.safe_load(GITHUB.read_text())
    doc["jobs"]["resilience"]["steps"].append({"name": "nothing to do"})
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(doc))
    proc = subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows",
                           str(broken)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr


def _github() -> dict[str, Any]:
    return dict(yaml.safe_load(GITHUB.read_text()))


def _gitlab() -> dict[str, Any]:
    return dict(yaml.safe_load(GITLAB.read_text()))


def test_the_github_nightly_carries_the_history_and_publishes_results_and_junit() -> None:
    steps = _github()["jobs"]["resilience"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore@"))
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save@"))
    assert restore["with"]["path"] == save["with"]["path"] == "${{ env.HISTORY_DIR }}"
    # A new cache entry every run (caches are immutable), restored from the newest.
    assert save["with"]["key"].endswith("${{ github.run_id }}")
    assert save["if"] == "always()"
    assert restore["with"]["restore-keys"].strip() == "aftershock-history-"
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "aftershock history import results" in scripts
    assert "AFTERSHOCK_HISTORY__URL" in scripts  # a database the Job's pod writes itself
    assert uses.index(restore["uses"]) < uses.index(save["uses"])
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "results/" and upload["if"] == "always()"
    junit = next(s for s in steps if "junit" in s.get("uses", ""))
    assert junit["with"]["report_paths"] == "results/junit.xml"


def test_the_gitlab_nightly_carries_the_history_and_publishes_results_and_junit() -> None:
    job = _gitlab()["aftershock:nightly"]
    assert job["cache"]["paths"] == ["aftershock-history/"]
    assert job["cache"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "results/junit.xml"
    assert "results/" in job["artifacts"]["paths"] and job["artifacts"]["when"] == "always"
    scripts = "\n".join([*job["script"], *job["after_script"]])
    assert "aftershock history import results" in scripts
    assert "AFTERSHOCK_HISTORY__URL" in scripts


def test_the_templates_set_no_variable_aftershock_would_read_as_config() -> None:
    # Every AFTERSHOCK_* variable is a config override; an unknown one stops the run
    # (exit 2). The e2e found AFTERSHOCK_IMAGE in the templates doing exactly that.
    gh, gl = _github()["jobs"]["resilience"], _gitlab()["aftershock:nightly"]
    names = [*gh["env"], *(k for s in gh["steps"] for k in s.get("env", {})),
             *gl["variables"]]
    rules = " ".join(r["if"] for r in gl["rules"])
    assert not [n for n in names if n.startswith("AFTERSHOCK_")], names
    assert "$AFTERSHOCK_" not in rules
