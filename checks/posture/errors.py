"""Why a posture check could not be made (as opposed to what it found)."""

from __future__ import annotations

from aftershock.checks.exit_codes import ExitCode


class PostureError(Exception):
    """Base: the posture could not be judged. Inconclusive (exit 3) unless stated."""

    exit_code = ExitCode.INCONCLUSIVE


class PostureInputError(PostureError, ValueError):
    """An object did not have the shape Kubernetes gives it; the message names the field."""


class TargetNotFoundError(PostureError):
    """The target Deployment does not exist: there is nothing to judge."""


class PostureReadError(PostureError):
    """The objects could not be read (API unreachable, forbidden, ...)."""
