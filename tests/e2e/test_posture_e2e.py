"""Posture checks against the testbed: the sample app and its variants, read live.

Applies testbed/manifests/web and every variant into one scratch namespace, waits for their
rollouts, reads each target with aftershock.kube.read_objects and checks the ids found above
"info". Needs the testbed (make testbed-up); the namespace is deleted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from aftershock.checks.posture import Outcome, PostureSettings, Severity
from aftershock.errors import TargetMissing
from aftershock.kube.read_objects import check_live, read_posture_input
from tests.e2e.conftest import MANIFESTS, Scratch

pytestmark = pytest.mark.e2e

P = "AS-POSTURE-"
# directory -> (Deployment = Service name, the ids expected above "info")
EXPECTED: dict[str, tuple[str, set[str]]] = {
    directory: (entry["deployment"], {P + i for i in entry["ids"]})
    for directory, entry in yaml.safe_load((MANIFESTS / "expected-posture.yaml").read_text())
    .items()}


@pytest.fixture(scope="module")
def api(testbed: Path) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(testbed))
    yield api_client
    api_client.close()


@pytest.fixture(scope="module")
def namespace(scratch: Scratch) -> str:
    scratch.apply(*EXPECTED)
    return scratch.name


@pytest.mark.parametrize("directory", list(EXPECTED))
def test_testbed_app_is_flagged_with_the_right_ids(api: client.ApiClient, namespace: str,
                                                   directory: str) -> None:
    name, expected = EXPECTED[directory]
    report = check_live(api, namespace, name, name, PostureSettings())
    assert report.verdict is not Outcome.INCONCLUSIVE, report.inconclusive_reason
    above_info = {f.id.value for f in report.findings if f.severity.at_least(Severity.LOW)}
    assert above_info == expected, "\n".join(
        f"{f.id} {f.severity} {f.where}: {f.message}" for f in report.findings)


def test_well_behaved_app_passes_even_at_fail_on_low(api: client.ApiClient,
                                                     namespace: str) -> None:
    report = check_live(api, namespace, "web", "web", PostureSettings(fail_on=Severity.LOW))
    assert report.exit_code == 0, [f.message for f in report.findings]


def test_live_state_is_read(api: client.ApiClient, namespace: str) -> None:
    inp = read_posture_input(api, namespace, "web", "web")
    assert len(inp.pods) >= 3 and all(p.ready for p in inp.pods)
    assert any(e.ready for s in inp.endpoint_slices for e in s.endpoints)
    assert inp.hpa is not None and inp.hpa.min_replicas == 3
    assert [p.name for p in inp.pdbs if p.matches(inp.deployment.template_labels)] == ["web"]
    observed = [s for p in inp.pods if (s := p.startup_seconds) is not None]
    assert observed and min(observed) < 10  # the sample app starts in about 2 s


def test_missing_target_is_reported_before_anything_else(api: client.ApiClient,
                                                         namespace: str) -> None:
    with pytest.raises(TargetMissing, match="not found"):
        read_posture_input(api, namespace, "no-such-app", "web")
    report = check_live(api, namespace, "no-such-app", "web", PostureSettings())
    assert report.exit_code == 3


def test_missing_service_is_a_finding(api: client.ApiClient, namespace: str) -> None:
    report = check_live(api, namespace, "web", "no-such-service", PostureSettings())
    assert {f.id.value for f in report.findings if f.severity.at_least(Severity.LOW)} == {
        P + "SERVICE-MISSING"}
