"""``faults.chaostoolkit``: a Chaos Toolkit experiment's method as the fault phase."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from aftershock.config.base import Section


class ChaosToolkitConfig(Section):
    """A Chaos Toolkit experiment whose ``method`` is run as the fault and whose
    ``rollbacks`` are always run afterwards (experiments/test_chaostoolkit.py)."""

    experiment: Path | None = Field(
        default=None,
        description="The Chaos Toolkit experiment file (JSON or YAML). Its method runs as the "
                    "fault phase, its rollbacks on every stop path; its steady-state "
                    "hypothesis and controls are not run (aftershock's own steady-state gate "
                    "and verdict stand in for them). Default None: the Chaos Toolkit "
                    "experiment is skipped.")
    timeout_s: float = Field(
        default=300.0, gt=0, le=86_400,
        description="Longest the method may run, and again the rollbacks, in seconds (above "
                    "0, at most 86,400); a method still running then is stopped and the run "
                    "is inconclusive. Default 300.")
