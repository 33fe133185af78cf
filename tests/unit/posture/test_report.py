"""Waivers, the fail_on threshold, exit codes and the three outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from aftershock.checks.posture import (
    CheckId,
    JUnitStatus,
    Outcome,
    PostureInput,
    PostureSettings,
    Severity,
    check_documents,
    evaluate_posture,
    format_table,
    inconclusive,
    junit_cases,
    junit_xml,
    to_results,
)
from aftershock.checks.posture.settings import Waiver

Build = Callable[[dict[str, Any]], PostureInput]
NO_PDB = {"delete": ["PodDisruptionBudget/web"]}  # medium
ONE_REPLICA = {"delete": ["HorizontalPodAutoscaler/web"],  # high
               "patch": {"Deployment/web": {"spec": {"replicas": 1}}}}


def test_medium_finding_does_not_fail_at_default_threshold(build: Build) -> None:
    report = evaluate_posture(build(NO_PDB), PostureSettings())
    assert [f.id for f in report.findings] == [CheckId.PDB_MISSING]
    assert report.verdict is Outcome.PASS and report.exit_code == 0


def test_threshold_is_configurable(build: Build) -> None:
    report = evaluate_posture(build(NO_PDB), PostureSettings(fail_on=Severity.MEDIUM))
    assert report.verdict is Outcome.FAIL and report.exit_code == 1
    report = evaluate_posture(build(ONE_REPLICA), PostureSettings(fail_on=Severity.CRITICAL))
    assert report.exit_code == 0


def test_high_finding_fails(build: Build) -> None:
    report = evaluate_posture(build(ONE_REPLICA), PostureSettings())
    assert report.exit_code == 1
    assert [j.finding.id for j in report.failing] == [CheckId.REPLICAS_SINGLE]


def test_waived_finding_is_reported_but_never_fails(build: Build) -> None:
    settings = PostureSettings(waivers=[Waiver.model_validate({"id": "AS-POSTURE-REPLICAS-SINGLE",
                                         "reason": "batch worker, downtime is fine"})])
    report = evaluate_posture(build(ONE_REPLICA), settings)
    assert report.exit_code == 0
    [judged] = report.judged
    assert judged.waived and not judged.fails
    assert judged.waiver is not None and judged.waiver.reason == "batch worker, downtime is fine"
    assert "[waived: batch worker, downtime is fine]" in " ".join(format_table(report).split())
    entry = to_results(report)["posture"]
    assert isinstance(entry, dict)
    assert entry["findings"][0]["waived"] is True
    assert entry["findings"][0]["waiver_reason"] == "batch worker, downtime is fine"


def test_waiver_limited_to_another_object_does_not_apply(build: Build) -> None:
    settings = PostureSettings(waivers=[Waiver(id=CheckId.REPLICAS_SINGLE, reason="x",
                                               object="Deployment/other")])
    assert evaluate_posture(build(ONE_REPLICA), settings).exit_code == 1
    settings = PostureSettings(waivers=[Waiver(id=CheckId.REPLICAS_SINGLE, reason="x",
                                               object="deployment/web")])
    assert evaluate_posture(build(ONE_REPLICA), settings).exit_code == 0


def test_waiver_limited_to_a_container(build: Build) -> None:
    case = {"patch": {"Deployment/web": {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "web:latest"}]}}}}}}
    settings = PostureSettings(fail_on=Severity.MEDIUM, waivers=[Waiver(
        id=CheckId.IMAGE_LATEST, reason="x", object="Deployment/web", container="sidecar")])
    assert evaluate_posture(build(case), settings).exit_code == 1
    settings = PostureSettings(fail_on=Severity.MEDIUM, waivers=[Waiver(
        id=CheckId.IMAGE_LATEST, reason="x", container="app")])
    assert evaluate_posture(build(case), settings).exit_code == 0


def test_results_entry_shape(build: Build) -> None:
    report = evaluate_posture(build(ONE_REPLICA), PostureSettings())
    results = json.loads(json.dumps(to_results(report)))  # JSON-serialisable as is
    entry = results["posture"]
    assert entry["verdict"] == "fail" and entry["exit_code"] == 1 and entry["fail_on"] == "high"
    assert entry["target"] == "shop/web" and entry["reason"] is None
    assert entry["counts"]["high"] == 1 and entry["counts"]["failing"] == 1
    [f] = entry["findings"]
    assert f["id"] == "AS-POSTURE-REPLICAS-SINGLE" and f["severity"] == "high"
    assert f["object"] == {"kind": "Deployment", "name": "web", "container": None}
    assert f["message"] == "replicas is 1" and f["fails"] is True
    assert f["why"] and f["fix"]


def test_table_lists_findings_and_explains_the_failing_ones(build: Build) -> None:
    case = {**ONE_REPLICA, "delete": ["HorizontalPodAutoscaler/web", "PodDisruptionBudget/web"]}
    text = " ".join(format_table(evaluate_posture(build(case), PostureSettings())).split())
    assert text.startswith("posture of shop/web: FAIL")
    assert "*high" in text and " medium" in text
    assert "AS-POSTURE-REPLICAS-SINGLE on Deployment/web: replicas is 1" in text
    assert "why: With one replica" in text and "fix: Set spec.replicas" in text
    assert "fix: Add a PodDisruptionBudget" not in text  # not failing: not explained
    assert "2 finding(s), 1 failing" in text


def test_table_for_a_clean_target(good: PostureInput) -> None:
    assert "PASS\n  no findings" in format_table(evaluate_posture(good, PostureSettings()))


def test_junit_one_case_per_check_id(build: Build) -> None:
    settings = PostureSettings(waivers=[Waiver(id=CheckId.NETWORK_POLICY_MISSING,
                                               reason="CNI does not enforce policies")])
    case = {"delete": ["HorizontalPodAutoscaler/web", "PodDisruptionBudget/web",
                       "NetworkPolicy/web-ingress"],
            "patch": {"Deployment/web": {"spec": {"replicas": 1}}}}
    cases = {c.name: c for c in junit_cases(evaluate_posture(build(case), settings))}
    assert set(cases) == {c.value for c in CheckId}
    assert cases["AS-POSTURE-REPLICAS-SINGLE"].outcome is JUnitStatus.FAILED
    assert cases["AS-POSTURE-NETWORK-POLICY-MISSING"].outcome is JUnitStatus.SKIPPED
    assert "CNI does not enforce" in cases["AS-POSTURE-NETWORK-POLICY-MISSING"].message
    # below the threshold: passed, with the finding in the details
    assert cases["AS-POSTURE-PDB-MISSING"].outcome is JUnitStatus.PASSED
    assert "no PodDisruptionBudget" in cases["AS-POSTURE-PDB-MISSING"].details
    assert cases["AS-POSTURE-IMAGE-LATEST"].outcome is JUnitStatus.PASSED
    root = ET.fromstring(junit_xml(list(cases.values())))
    assert root.get("tests") == str(len(CheckId))
    assert (root.get("failures"), root.get("skipped"), root.get("errors")) == ("1", "1", "0")


def test_inconclusive_report() -> None:
    report = inconclusive("shop/web", "Deployment 'web' not found", PostureSettings())
    assert report.verdict is Outcome.INCONCLUSIVE and report.exit_code == 3
    assert "could not judge: Deployment 'web' not found" in format_table(report)
    assert to_results(report)["posture"]["reason"] == "Deployment 'web' not found"  # type: ignore[index]
    assert all(c.outcome is JUnitStatus.ERROR for c in junit_cases(report))


def test_check_documents_without_the_deployment_is_inconclusive() -> None:
    report = check_documents([{"kind": "Service", "metadata": {"name": "web"}}], "web", "web",
                             PostureSettings())
    assert report.exit_code == 3 and "not among the documents" in (
        report.inconclusive_reason or "")


def test_check_documents_with_a_malformed_object_is_inconclusive() -> None:
    bad = {"kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": "three", "template": {"spec": {"containers": [{"name": "a"}]}}}}
    report = check_documents([bad], "web", None, PostureSettings())
    assert report.exit_code == 3
    assert "Deployment.spec.replicas: expected an integer" in (report.inconclusive_reason or "")


def test_findings_are_ordered_by_severity(build: Build) -> None:
    case = {**ONE_REPLICA, "delete": ["HorizontalPodAutoscaler/web", "NetworkPolicy/web-ingress",
                                      "PodDisruptionBudget/web"]}
    sev = [f.severity.rank for f in evaluate_posture(build(case), PostureSettings()).findings]
    assert sev == sorted(sev, reverse=True)


@pytest.mark.parametrize("waiver", [
    {"id": "AS-POSTURE-NOPE", "reason": "typo"},
    {"id": "AS-POSTURE-PDB-MISSING", "reason": "   "},
    {"id": "AS-POSTURE-PDB-MISSING"},
    {"id": "AS-POSTURE-PDB-MISSING", "reason": "x", "object": "web"},
    {"id": "AS-POSTURE-PDB-MISSING", "reason": "x", "until": "2030"},
])
def test_bad_waivers_are_config_errors(waiver: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        PostureSettings.model_validate({"waivers": [waiver]})


def test_settings_reject_unknown_fields_and_bad_severity() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        PostureSettings(fail_on="severe")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PostureSettings(drain_secs=5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        PostureSettings(drain_seconds=-1)


def test_settings_docstrings_cover_every_field() -> None:
    import ast
    import inspect

    from aftershock.checks.posture import settings

    tree = ast.parse(inspect.getsource(settings))
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        body = cls.body
        for i, node in enumerate(body):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                nxt = body[i + 1] if i + 1 < len(body) else None
                assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), (
                    f"{cls.name}.{node.target.id} needs a docstring")


def test_docs_list_every_check_id() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "posture.md").read_text()
    missing = [c.value for c in CheckId if f"`{c.value}`" not in docs]
    assert missing == []
