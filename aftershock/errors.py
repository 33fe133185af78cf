"""Errors the suite reports to a person, each with the fix and the exit code it maps to.

    AftershockError
    ├── UsageError            exit 2: the user asked for something we cannot do as asked
    │   ├── ConfigError       a field is missing, unknown or has a bad value
    │   └── NamespaceNotAllowed
    └── CannotMeasure         exit 3: inconclusive, the suite could not measure
        ├── ClusterUnreachable
        └── TargetMissing
"""

from __future__ import annotations

from aftershock.checks.exit_codes import ExitCode

# The core's table under the names the engine uses; plain ints to callers that store codes.
EXIT_PASS: int = ExitCode.PASS
EXIT_SLO_FAILED: int = ExitCode.FAIL
EXIT_USAGE: int = ExitCode.USAGE
EXIT_INCONCLUSIVE: int = ExitCode.INCONCLUSIVE


class AftershockError(Exception):
    """Base: a problem with a message for a person and a fix to try."""

    exit_code = EXIT_INCONCLUSIVE

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem}\n  fix: {self.fix}" if self.fix else self.problem


class UsageError(AftershockError):
    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration problem, named by its field path (e.g. ``slo.during.p99_ms``).

    ``problems``: each problem on its own when one error reports several.
    """

    def __init__(self, problem: str, fix: str = "", problems: tuple[str, ...] = ()) -> None:
        super().__init__(problem, fix)
        self.problems = problems


class NamespaceNotAllowed(UsageError):
    def __init__(self, namespace: str, allowed: list[str]) -> None:
        super().__init__(
            f"refusing to act in namespace {namespace!r}: it was not given to the suite "
            f"(allowed: {', '.join(allowed) or 'none'})",
            "add it to target.extra_namespaces if the suite really should touch it",
        )
        self.namespace = namespace


class CannotMeasure(AftershockError):
    exit_code = EXIT_INCONCLUSIVE


class ClusterUnreachable(CannotMeasure):
    pass


class TargetMissing(CannotMeasure):
    pass
