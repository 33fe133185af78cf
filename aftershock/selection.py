"""Which pods a pod-kill fault takes: a pure decision, tested without a cluster."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    created: float  # creationTimestamp, epoch seconds
    running: bool
    deleting: bool

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Candidate:
        """From a pod as the API serialises it."""
        meta = raw.get("metadata", {})
        created = meta.get("creationTimestamp")
        return cls(name=meta.get("name", ""),
                   created=datetime.fromisoformat(created).timestamp() if created else 0.0,
                   running=raw.get("status", {}).get("phase") == "Running",
                   deleting=meta.get("deletionTimestamp") is not None)


def choose_victims(pods: list[Candidate], how_many: int, oldest: bool,
                   rng: random.Random) -> list[str]:
    """Pick running pods that are not already terminating: killing a pod that is already
    on its way out disrupts nothing and would make the experiment lie."""
    alive = sorted((p for p in pods if p.running and not p.deleting), key=lambda p: p.name)
    if oldest:
        alive.sort(key=lambda p: (p.created, p.name))
        return [p.name for p in alive[:how_many]]
    return sorted(p.name for p in rng.sample(alive, min(how_many, len(alive))))
