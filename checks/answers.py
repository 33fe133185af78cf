"""Does the target answer the load at all? A misconfigured target is inconclusive, not green.

Only the statuses in ``load.fail_statuses`` (5xx by default) count as failed requests, so a
load that gets 404 for every request "succeeds" while it measures nothing: a wrong path, a
missing Host header, an auth wall. These pure functions name such answers so the run can be
inconclusive with the path and the status, instead of passing on requests nobody served.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from aftershock.checks.timeline import Requests


@dataclass(frozen=True)
class ClientErrors:
    """The 4xx answers among some requests: how many, of how many, and the commonest."""

    total: int
    client_errors: int
    name: str  # the request name (its path) most 4xx answers went to
    status: int  # the commonest 4xx status of that name

    @property
    def share(self) -> float:
        return self.client_errors / self.total if self.total else 0.0

    def describe(self) -> str:
        if self.client_errors == self.total:
            return f"every request to {self.name} answered {self.status}"
        return (f"{self.client_errors} of {self.total} requests answered 4xx "
                f"({self.share:.0%}; commonest: {self.name} answered {self.status})")


def client_errors(requests: Requests, lo: int = 0, hi: int | None = None,
                  name: str | None = None) -> ClientErrors | None:
    """The 4xx answers among ``requests[lo:hi]`` (only those named ``name``, if given);
    None when there are none (or no requests)."""
    hi = len(requests) if hi is None else hi
    total = 0
    by_answer: Counter[tuple[str, int]] = Counter()
    for i in range(lo, hi):
        if name is not None and requests.names[i] != name:
            continue
        total += 1
        status = requests.statuses[i]
        if 400 <= status < 500:
            by_answer[(requests.names[i], status)] += 1
    if not by_answer:
        return None
    (top_name, top_status), _ = by_answer.most_common(1)[0]
    return ClientErrors(total, sum(by_answer.values()), top_name, top_status)


def misconfigured(requests: Requests, lo: int = 0, hi: int | None = None,
                  most: float = 0.5) -> ClientErrors | None:
    """The 4xx answers when more than ``most`` of the requests got one: the load does not
    reach what the user meant to test."""
    found = client_errors(requests, lo, hi)
    return found if found is not None and found.share > most else None
