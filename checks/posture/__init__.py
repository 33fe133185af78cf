"""Posture checks: the production-readiness checklist, as pure functions over the objects.

    PostureInput (model)  --rules-->  [Finding]  --judge(settings)-->  PostureReport
                                                                      ├── format_table
                                                                      ├── to_results
                                                                      └── junit_cases

No Kubernetes client here: :mod:`aftershock.kube.read_objects` reads the live objects and
builds the :class:`PostureInput`; YAML fixtures build the same thing in tests.
"""

from checks.posture.catalogue import CATALOGUE, CheckId, CheckSpec, Severity
from checks.posture.errors import (
    PostureError,
    PostureInputError,
    PostureReadError,
    TargetNotFoundError,
)
from checks.posture.findings import Finding, ObjectRef
from checks.posture.model import PostureInput
from checks.posture.report import (
    JUnitCase,
    Outcome,
    PostureReport,
    Verdict,
    evaluate,
    format_table,
    inconclusive,
    junit_cases,
    junit_xml,
    to_results,
)
from checks.posture.run import check_documents
from checks.posture.settings import PostureSettings, Waiver

__all__ = [
    "CATALOGUE",
    "CheckId",
    "CheckSpec",
    "Finding",
    "JUnitCase",
    "ObjectRef",
    "Outcome",
    "PostureError",
    "PostureInput",
    "PostureInputError",
    "PostureReadError",
    "PostureReport",
    "PostureSettings",
    "Severity",
    "TargetNotFoundError",
    "Verdict",
    "Waiver",
    "check_documents",
    "evaluate",
    "format_table",
    "inconclusive",
    "junit_cases",
    "junit_xml",
    "to_results",
]
