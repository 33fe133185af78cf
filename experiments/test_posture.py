"""Posture: the production-readiness checklist, read from the target's live objects.

No load and no fault: the cheapest experiment, and the first one a gameday runs. It fails
with the findings table when an unwaived finding is at or above ``posture.fail_on``, and is
inconclusive (a failure that says so) when the target cannot be read. The ``posture`` entry goes
into results.json and one JUnit case per check id into posture-junit.xml. Check ids,
severities and waivers: docs/posture.md.
"""

from __future__ import annotations

import pytest

from aftershock.checks.posture import Outcome, format_table, junit_cases, junit_xml, to_results
from aftershock.config import Config
from aftershock.kube import Cluster
from aftershock.kube.read_objects import check_live
from aftershock.results import Results


# An experiment like the others: a setup error (no cluster, a bad config) still leaves an
# inconclusive entry in results.json; its verdict otherwise goes to the "posture" section.
@pytest.mark.experiment("posture")
def test_posture(aftershock_config: Config, cluster: Cluster, results: Results) -> None:
    target = aftershock_config.target
    report = check_live(cluster.api_client, target.namespace, target.deployment, target.service,
                        aftershock_config.posture)
    out = aftershock_config.results_dir
    out.mkdir(parents=True, exist_ok=True)
    entry = to_results(report)["posture"]
    assert isinstance(entry, dict)
    results.set_section("posture", entry)
    (out / "posture-junit.xml").write_text(junit_xml(junit_cases(report)))
    table = format_table(report)
    if report.verdict is Outcome.INCONCLUSIVE:
        pytest.fail(f"inconclusive: {table}", pytrace=False)
    if report.verdict is Outcome.FAIL:
        pytest.fail(table, pytrace=False)
    print(table)  # passing: shown with -s or -rP
