"""Posture checks: the production-readiness checklist, as pure functions over the objects.

    PostureInput (model)  --rules-->  [Finding]  --judge(settings)-->  PostureReport
                                                                      ├── format_table
                                                                      ├── to_results
                                                                      └── junit_cases

No Kubernetes client here: :mod:`aftershock.kube.read_objects` reads the live objects and
builds the :class:`PostureInput`; YAML fixtures build the same thing in tests.
"""

from aftershock.checks.posture.catalogue import CATALOGUE, CheckId, CheckSpec, Severity
from aftershock.checks.posture.errors import (
    PostureError,
    PostureInputError,
    PostureReadError,
    TargetNotFoundError,
)
from aftershock.checks.posture.findings import Finding, ObjectRef
from aftershock.checks.posture.model import PostureInput
from aftershock.checks.posture.report import (
    JUnitCase,
    JUnitStatus,
    PostureReport,
    evaluate_posture,
    format_table,
    inconclusive,
    junit_cases,
    junit_xml,
    to_results,
)
from aftershock.checks.posture.run import check_documents
from aftershock.checks.posture.settings import PostureSettings, Waiver
from aftershock.checks.verdict import Outcome

__all__ = [
    "CATALOGUE",
    "CheckId",
    "CheckSpec",
    "Finding",
    "JUnitCase",
    "JUnitStatus",
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
    "Waiver",
    "check_documents",
    "evaluate_posture",
    "format_table",
    "inconclusive",
    "junit_cases",
    "junit_xml",
    "to_results",
]
