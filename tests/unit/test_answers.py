"""A load that gets 4xx answers measures nothing: the answers are named by path and status."""

from __future__ import annotations

from aftershock.checks.answers import client_errors, misconfigured
from aftershock.checks.timeline import ErrorKind, Request, Requests


def answered(*pairs: tuple[str, int]) -> Requests:
    return Requests.of([Request(float(i), 1.0, status, ErrorKind.NONE, None, name)
                        for i, (name, status) in enumerate(pairs)])


def test_every_request_answered_404_names_the_path_and_the_status() -> None:
    found = misconfigured(answered(*[("/work?ms=10", 404)] * 5))
    assert found is not None
    assert found.describe() == "every request to /work?ms=10 answered 404"


def test_a_majority_of_4xx_gives_the_share_and_the_commonest_answer() -> None:
    req = answered(("/", 200), ("/a", 404), ("/a", 404), ("/b", 401))
    found = misconfigured(req)
    assert found is not None and (found.total, found.client_errors) == (4, 3)
    assert found.describe() == ("3 of 4 requests answered 4xx (75%; commonest: /a answered "
                                "404)")


def test_a_minority_of_4xx_or_none_is_not_misconfigured() -> None:
    assert misconfigured(answered(("/", 200), ("/", 200), ("/a", 404))) is None
    assert misconfigured(answered(("/", 200), ("/", 503))) is None
    assert misconfigured(Requests()) is None


def test_only_the_named_requests_and_the_given_range_count() -> None:
    req = answered(("/", 200), ("/cpu", 404), ("/", 200), ("/cpu", 404), ("/cpu", 200))
    found = client_errors(req, name="/cpu")
    assert found is not None and (found.total, found.client_errors) == (3, 2)
    assert client_errors(req, 0, 1) is None
