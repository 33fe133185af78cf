"""Every variant triggers exactly the findings it names; the good fixture triggers none."""

from __future__ import annotations

from pathlib import Path

import pytest
from posture_cases import VARIANTS, load_variant

from aftershock.checks.posture import (
    CheckId,
    PostureInput,
    PostureSettings,
    Severity,
    evaluate_posture,
)


def test_good_fixture_has_no_findings_at_all(good: PostureInput) -> None:
    report = evaluate_posture(good, PostureSettings())
    assert [j.finding for j in report.judged] == []
    assert report.exit_code == 0


def test_good_fixture_nothing_above_info_even_with_fail_on_info(good: PostureInput) -> None:
    report = evaluate_posture(good, PostureSettings(fail_on=Severity.INFO))
    assert not any(f.severity.at_least(Severity.LOW) for f in report.findings)
    assert report.exit_code == 0


def test_good_fixture_reads_the_live_state(good: PostureInput) -> None:
    assert len(good.pods) == 3  # the api pod is not selected
    assert {p.node_name for p in good.pods} == {"node-1", "node-2", "node-3"}
    assert [p.startup_seconds for p in good.pods] == [3.0, 3.0, 4.0]
    assert good.hpa is not None and good.hpa.min_replicas == 2
    assert len(good.pdbs) == 2


@pytest.mark.parametrize("path", VARIANTS, ids=[p.stem for p in VARIANTS])
def test_variant_triggers_exactly_its_findings(path: Path) -> None:
    case, inp, settings = load_variant(path)
    report = evaluate_posture(inp, settings)
    got = {f.id.value for f in report.findings}
    assert got == set(case["expect"]), "\n" + "\n".join(
        f"{f.id} {f.where}: {f.message}" for f in report.findings)


def test_every_check_id_has_a_variant_that_triggers_it_alone() -> None:
    covered = set()
    for path in VARIANTS:
        case, _, _ = load_variant(path)
        if len(case["expect"]) == 1:
            covered.add(case["expect"][0])
    assert covered == {c.value for c in CheckId}


def test_variant_files_are_named_after_their_id() -> None:
    for path in VARIANTS:
        case, _, _ = load_variant(path)
        stem = path.stem.split("--")[0]
        if stem == "CLEAN":
            assert case["expect"] == []
        else:
            assert case["expect"] == [f"AS-POSTURE-{stem}"]
