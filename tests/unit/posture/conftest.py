"""Fixtures for the posture unit tests (helpers live in posture_cases.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from posture_cases import good_documents, variant_documents

from aftershock.checks.posture import PostureInput


@pytest.fixture
def good() -> PostureInput:
    return PostureInput.from_documents(good_documents(), "web", "web")


@pytest.fixture
def build() -> Callable[[dict[str, Any]], PostureInput]:
    """Build an input from an inline variant (same keys as a variant file)."""
    def _build(case: dict[str, Any]) -> PostureInput:
        return PostureInput.from_documents(variant_documents(case), "web",
                                           case.get("service", "web"))
    return _build
