"""Pod-kill victim selection: running pods only, random or oldest, never more than asked."""

from __future__ import annotations

import random

from aftershock.selection import Candidate, choose_victims


def _pods() -> list[Candidate]:
    return [Candidate("web-c", 30.0, True, False), Candidate("web-a", 10.0, True, False),
            Candidate("web-b", 20.0, True, True), Candidate("web-d", 5.0, False, False),
            Candidate("web-e", 40.0, True, False)]


def test_oldest_skips_terminating_and_not_running_pods() -> None:
    assert choose_victims(_pods(), 2, oldest=True, rng=random.Random(0)) == ["web-a", "web-c"]


def test_random_is_seeded_and_bounded_by_what_is_alive() -> None:
    picked = choose_victims(_pods(), 10, oldest=False, rng=random.Random(1))
    assert picked == ["web-a", "web-c", "web-e"]
    one = choose_victims(_pods(), 1, oldest=False, rng=random.Random(7))
    assert len(one) == 1 and one[0] in {"web-a", "web-c", "web-e"}


def test_candidate_from_the_wire_format() -> None:
    c = Candidate.of({"metadata": {"name": "web-x", "creationTimestamp": "2026-11-22T00:00:10Z",
                                   "deletionTimestamp": "2026-11-22T00:01:00Z"},
                      "status": {"phase": "Running"}})
    assert (c.name, c.running, c.deleting) == ("web-x", True, True)
    assert c.created == 1795305610.0
