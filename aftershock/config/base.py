"""What every config section shares: unknown keys are errors, defaults are validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A section of the configuration (``target``, ``load``, ...)."""

    # coerce_numbers_to_str: a name given as AFTERSHOCK_TARGET__DEPLOYMENT=2048 stays a name.
    model_config = ConfigDict(extra="forbid", validate_default=True, coerce_numbers_to_str=True)
