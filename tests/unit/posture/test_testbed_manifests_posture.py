"""The testbed's manifests, checked offline: what the e2e test expects from the live cluster
must already hold for the YAML (live state aside)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aftershock.checks.posture import PostureSettings, Severity, check_documents

MANIFESTS = Path(__file__).resolve().parents[3] / "testbed" / "manifests"
P = "AS-POSTURE-"
# directory -> (Deployment = Service name, the ids expected above "info")
EXPECTED: dict[str, tuple[str, set[str]]] = {
    directory: (entry["deployment"], {P + i for i in entry["ids"]})
    for directory, entry in yaml.safe_load((MANIFESTS / "expected-posture.yaml").read_text())
    .items()}


def _documents(directory: Path) -> list[dict[str, Any]]:
    """The documents a kustomization lists (resources only: these files use nothing else)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            docs += _documents(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.mark.parametrize("directory", list(EXPECTED))
def test_testbed_manifest_posture(directory: str) -> None:
    name, expected = EXPECTED[directory]
    report = check_documents(_documents(MANIFESTS / directory), name, name, PostureSettings(),
                             namespace="testbed")
    assert report.inconclusive_reason is None
    found = {f.id.value for f in report.findings if f.severity.at_least(Severity.LOW)}
    assert found == expected, [f"{f.id} {f.where}: {f.message}" for f in report.findings]
