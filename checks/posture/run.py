"""Judge a posture from objects already in hand (manifests, ``kubectl get -o yaml``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aftershock.checks.posture.errors import PostureError
from aftershock.checks.posture.model import PostureInput
from aftershock.checks.posture.report import PostureReport, evaluate_posture, inconclusive
from aftershock.checks.posture.settings import PostureSettings


def check_documents(documents: Iterable[Mapping[str, object] | None], deployment: str,
                    service: str | None, settings: PostureSettings,
                    namespace: str = "-") -> PostureReport:
    """Judge the named Deployment among these documents. Never raises for a missing
    Deployment or a malformed object: the report is then inconclusive with the reason."""
    try:
        inp = PostureInput.from_documents(documents, deployment, service)
    except PostureError as exc:
        return inconclusive(f"{namespace}/{deployment}", str(exc), settings)
    return evaluate_posture(inp, settings)
