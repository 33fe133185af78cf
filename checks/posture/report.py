"""Judge findings against the settings (waivers, threshold) and present the result.

Three outputs, all pure: a table for a person at a terminal, a dict for results.json, and
JUnit test cases (one per check id) for CI.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aftershock.checks.exit_codes import ExitCode
from aftershock.checks.posture.catalogue import CATALOGUE, CheckId, Severity
from aftershock.checks.posture.findings import Finding
from aftershock.checks.posture.model import PostureInput
from aftershock.checks.posture.rules import run_rules
from aftershock.checks.posture.settings import PostureSettings, Waiver
from aftershock.checks.verdict import Outcome


@dataclass(frozen=True, slots=True)
class Judged:
    """A finding with the judgement on it: waived (by which waiver) and whether it fails."""

    finding: Finding
    waiver: Waiver | None
    fails: bool

    @property
    def waived(self) -> bool:
        return self.waiver is not None


@dataclass(frozen=True, slots=True)
class PostureReport:
    target: str
    fail_on: Severity
    judged: tuple[Judged, ...] = ()
    inconclusive_reason: str | None = None

    @property
    def verdict(self) -> Outcome:
        if self.inconclusive_reason is not None:
            return Outcome.INCONCLUSIVE
        return Outcome.FAIL if any(j.fails for j in self.judged) else Outcome.PASS

    @property
    def exit_code(self) -> ExitCode:
        return {Outcome.PASS: ExitCode.PASS, Outcome.FAIL: ExitCode.FAIL,
                Outcome.INCONCLUSIVE: ExitCode.INCONCLUSIVE}[self.verdict]

    @property
    def findings(self) -> list[Finding]:
        return [j.finding for j in self.judged]

    @property
    def failing(self) -> list[Judged]:
        return [j for j in self.judged if j.fails]


def _order(j: Judged) -> tuple[int, str, str, str]:
    f = j.finding
    return (-f.severity.rank, f.id, str(f.object), f.container or "")


def judge(findings: list[Finding], settings: PostureSettings, target: str) -> PostureReport:
    """Apply waivers and the fail_on threshold."""
    judged = []
    for f in findings:
        waiver = next((w for w in settings.waivers
                       if w.covers(f.id, f.object.kind, f.object.name, f.container)), None)
        fails = waiver is None and f.severity.at_least(settings.fail_on)
        judged.append(Judged(f, waiver, fails))
    return PostureReport(target, settings.fail_on, tuple(sorted(judged, key=_order)))


def evaluate_posture(inp: PostureInput, settings: PostureSettings) -> PostureReport:
    """Run every check on the snapshot and judge the findings."""
    target = f"{inp.deployment.namespace or '-'}/{inp.deployment.name}"
    return judge(run_rules(inp, settings), settings, target)


def inconclusive(target: str, reason: str, settings: PostureSettings) -> PostureReport:
    """A report for a posture that could not be judged (e.g. the Deployment is missing)."""
    return PostureReport(target, settings.fail_on, (), reason)


# --- a table for the terminal ---------------------------------------------------------------

def format_table(report: PostureReport, width: int = 100) -> str:
    """Findings as a table, then why and fix for each finding that fails the run."""
    head = f"posture of {report.target}: {report.verdict.value.upper()}"
    if report.verdict is Outcome.INCONCLUSIVE:
        return f"{head}\n  could not judge: {report.inconclusive_reason}\n"
    lines = [head]
    if not report.judged:
        lines.append("  no findings")
    else:
        rows = [("SEVERITY", "ID", "OBJECT", "WHAT")]
        for j in report.judged:
            f = j.finding
            mark = "*" if j.fails else " "
            what = f.message + (f" [waived: {j.waiver.reason}]" if j.waiver else "")
            rows.append((f"{mark}{f.severity.value}", f.id, f.where, what))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        w2 = min(max(len(r[2]) for r in rows), 40)
        rest = max(width - w0 - w1 - w2 - 6, 30)
        for r in rows:
            wrapped = textwrap.wrap(r[3], rest) or [""]
            lines.append(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]:<{w2}}  {wrapped[0]}")
            pad = " " * (w0 + w1 + w2 + 6)
            lines.extend(pad + more for more in wrapped[1:])
    failing = report.failing
    waived = sum(j.waived for j in report.judged)
    lines.append(f"{len(report.judged)} finding(s), {len(failing)} failing (unwaived, at or "
                 f"above {report.fail_on.value}; marked *), {waived} waived")
    for j in failing:
        f = j.finding
        lines.append("")
        lines.append(f"{f.id} on {f.where}: {f.message}")
        lines.extend(textwrap.wrap(f"why: {f.why}", width, subsequent_indent="     "))
        lines.extend(textwrap.wrap(f"fix: {f.fix}", width, subsequent_indent="     "))
    return "\n".join(lines) + "\n"


# --- results.json ------------------------------------------------------------------------------

def finding_dict(j: Judged) -> dict[str, object]:
    f = j.finding
    return {
        "id": f.id.value, "severity": f.severity.value,
        "object": {"kind": f.object.kind, "name": f.object.name, "container": f.container},
        "message": f.message, "why": f.why, "fix": f.fix,
        "waived": j.waived, "waiver_reason": j.waiver.reason if j.waiver else None,
        "fails": j.fails,
    }


def to_results(report: PostureReport) -> dict[str, dict[str, Any]]:
    """The ``posture`` entry of results.json (documented in docs/posture.md)."""
    return {"posture": {
        "target": report.target,
        "verdict": report.verdict.value,
        "exit_code": int(report.exit_code),
        "fail_on": report.fail_on.value,
        "reason": report.inconclusive_reason,
        "counts": {s.value: sum(1 for j in report.judged if j.finding.severity is s
                                and not j.waived) for s in Severity}
                  | {"waived": sum(j.waived for j in report.judged),
                     "failing": len(report.failing)},
        "findings": [finding_dict(j) for j in report.judged],
    }}


# --- JUnit ---------------------------------------------------------------------------------------

class JUnitStatus(StrEnum):
    """A JUnit test case's result."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class JUnitCase:
    classname: str
    name: str
    outcome: JUnitStatus
    message: str = ""
    details: str = ""


def junit_cases(report: PostureReport) -> list[JUnitCase]:
    """One case per check id. Failed: an unwaived finding at or above fail_on. Skipped: every
    finding it has is waived. Passed otherwise (findings below the threshold are listed in
    the case's details). Error, for every id, when the posture could not be judged."""
    cases = []
    for cid in CheckId:
        spec = CATALOGUE[cid]
        mine = [j for j in report.judged if j.finding.id is cid]
        details = "\n".join(
            f"{j.finding.severity.value} {j.finding.where}: {j.finding.message}"
            + (f" [waived: {j.waiver.reason}]" if j.waiver else "") for j in mine)
        if report.verdict is Outcome.INCONCLUSIVE:
            outcome, message = JUnitStatus.ERROR, report.inconclusive_reason or ""
        elif any(j.fails for j in mine):
            failing = [j for j in mine if j.fails]
            outcome = JUnitStatus.FAILED
            message = f"{len(failing)} finding(s): {failing[0].finding.message}"
            details += f"\nwhy: {spec.why}\nfix: {failing[0].finding.fix}"
        elif mine and all(j.waived for j in mine):
            outcome, message = JUnitStatus.SKIPPED, f"waived: {mine[0].waiver.reason}"  # type: ignore[union-attr]
        else:
            outcome, message = JUnitStatus.PASSED, ""
        cases.append(JUnitCase("aftershock.posture", cid.value, outcome,
                               message, details))
    return cases


def junit_xml(cases: list[JUnitCase], suite: str = "aftershock.posture") -> str:
    """A JUnit XML document with one testsuite, for CI systems that read JUnit."""
    root = ET.Element("testsuite", name=suite, tests=str(len(cases)),
                      failures=str(sum(c.outcome is JUnitStatus.FAILED for c in cases)),
                      errors=str(sum(c.outcome is JUnitStatus.ERROR for c in cases)),
                      skipped=str(sum(c.outcome is JUnitStatus.SKIPPED for c in cases)))
    for c in cases:
        el = ET.SubElement(root, "testcase", classname=c.classname, name=c.name)
        if c.outcome is JUnitStatus.FAILED:
            ET.SubElement(el, "failure", message=c.message).text = c.details
        elif c.outcome is JUnitStatus.ERROR:
            ET.SubElement(el, "error", message=c.message)
        elif c.outcome is JUnitStatus.SKIPPED:
            ET.SubElement(el, "skipped", message=c.message)
        if c.details and c.outcome is not JUnitStatus.FAILED:
            ET.SubElement(el, "system-out").text = c.details
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
