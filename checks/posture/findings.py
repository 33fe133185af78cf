"""A finding: one check that one object fails."""

from __future__ import annotations

from dataclasses import dataclass

from aftershock.checks.posture.catalogue import CATALOGUE, CheckId, Severity


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Finding:
    """What is wrong with which object; why it matters and the fix come from the catalogue
    unless the check has something more specific to say."""

    id: CheckId
    object: ObjectRef
    message: str
    container: str | None = None
    fix_detail: str | None = None
    severity_override: Severity | None = None

    @property
    def severity(self) -> Severity:
        return self.severity_override or CATALOGUE[self.id].severity

    @property
    def why(self) -> str:
        return CATALOGUE[self.id].why

    @property
    def fix(self) -> str:
        return self.fix_detail or CATALOGUE[self.id].fix

    @property
    def where(self) -> str:
        return f"{self.object} container {self.container}" if self.container else str(self.object)
