"""What a state of the Job's pod means: stuck for good (say why at once), or on its way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aftershock.errors import EXIT_INCONCLUSIVE, EXIT_USAGE
from aftershock.job.pod import HOLDER, SUITE

# Container waiting reasons that will not fix themselves: report at once, not at a timeout.
_IMAGE_REASONS = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                  "ImageInspectError", "RegistryUnavailable"}
_CONFIG_REASONS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError",
                   "PreCreateHookError", "PostStartHookError"}


@dataclass(frozen=True)
class Stuck:
    """The Job cannot make progress: say why, exit with ``exit_code``."""

    message: str
    fix: str
    exit_code: int


def _statuses(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    st = pod.get("status") or {}
    return {c.get("name", ""): c for c in st.get("containerStatuses") or []}


def container_state(pod: Mapping[str, Any], name: str) -> tuple[str, Mapping[str, Any]]:
    """("waiting" | "running" | "terminated" | "", details) of one container."""
    state = (_statuses(pod).get(name) or {}).get("state") or {}
    for key in ("terminated", "running", "waiting"):
        if key in state:
            return key, state[key] or {}
    return "", {}


def diagnose(pod: Mapping[str, Any]) -> Stuck | None:
    """A state of the Job's pod that will not fix itself, or None.

    Unschedulable, an image that cannot be pulled, a container that cannot be
    created: reported as soon as they show, with the kubelet's or scheduler's words.
    """
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                and cond.get("reason") == "Unschedulable":
            return Stuck(f"the Job's pod cannot be scheduled: {cond.get('message', '')}",
                         "free capacity, or lower the suite's resource requests / change "
                         "its nodeSelector and tolerations in the manifests (--manifests)",
                         EXIT_INCONCLUSIVE)
    for name, cs in _statuses(pod).items():
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason in _IMAGE_REASONS:
            image = cs.get("image", "")
            return Stuck(f"the image {image} of container {name!r} cannot be pulled: "
                         f"{reason}: {waiting.get('message', '')}".rstrip(": "),
                         "check --image, and that every node can pull it (for the testbed: "
                         "make image)", EXIT_USAGE)
        if reason in _CONFIG_REASONS:
            return Stuck(f"container {name!r} cannot start: {reason}: "
                         f"{waiting.get('message', '')}",
                         "fix the manifests (--manifests) or the image", EXIT_USAGE)
    return None


def describe(pod: Mapping[str, Any]) -> str:
    """One line of progress: phase, node, each container's state."""
    status = pod.get("status") or {}
    parts = [f"pod {pod.get('metadata', {}).get('name', '?')}: {status.get('phase', '?')}"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        parts.append(f"on {node}")
    for name in (SUITE, HOLDER):
        state, info = container_state(pod, name)
        if state:
            detail = info.get("reason") or ""
            if state == "terminated":
                detail = f"exit {info.get('exitCode')}" + (f" {detail}" if detail else "")
            parts.append(f"{name} {state}" + (f" ({detail})" if detail else ""))
    return ", ".join(parts)
