"""The fixtures that experiments/ and your own experiment directory share.

Writing an experiment is the same wherever it lives: in this repository's ``experiments/``,
in ``examples/experiments/``, or in a team's own repository run by
``aftershock run --experiments DIR``. So the fixtures an experiment is written with live in
one file, this one. The package ships it as ``aftershock.fixtures`` (a link to this file,
like ``aftershock/experiments``), and aftershock's pytest plugin registers it in every
session, so an installed wheel gives it to any directory; in a checkout pytest reads it as
the root conftest and the plugin does not register it a second time. The engine's own
fixtures (``aftershock_config``, ``cluster``, ``runner``, ``run``, ``record``, ...) stay
in :mod:`aftershock.plugin`, with its options and hooks.

``arun``         ``await arun(fault, checks=())``: ``run`` for an ``async def`` test
                 (pytest-asyncio): the runner works in a thread, so the test's event loop
                 stays free to run a :class:`aftershock.custom.CustomFault`'s coroutine
``http_client``  an ``httpx.AsyncClient`` for this test, on the test's loop (admin APIs,
                 probes; not load, which is locust's), closed when the test ends
``http_timeout`` the seconds one such call may take (``load.timeout_s``)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    import httpx

    from aftershock.conclusion import Check, Conclusion
    from aftershock.config import Config
    from aftershock.experiment import Runner
    from aftershock.faults.base import Fault


class AsyncRunExperiment(Protocol):
    """The ``arun`` fixture: ``await arun(fault, checks=())``."""

    def __call__(self, fault: Fault, checks: Sequence[Check] = ()
                 ) -> Awaitable[Conclusion]: ...


@pytest.fixture
def arun(runner: Runner, request: pytest.FixtureRequest) -> AsyncRunExperiment:
    """``await arun(fault, checks=())``: the ``run`` fixture for an ``async def`` test.

    Runs one experiment, records every check and fails the test unless every check passed
    (no checks: the request SLO verdict alone, named after the ``experiment`` marker). The
    runner works in a thread; a :class:`aftershock.custom.CustomFault`'s ``async def``
    action and undo run on the test's loop meanwhile. SIGTERM and Ctrl-C still roll the
    fault back, are recorded, and then stop the session.
    """
    from aftershock.conclusion import Check
    from aftershock.custom import run_on_loop
    from aftershock.plugin import experiment_name

    async def arun_(fault: Fault, checks: Sequence[Check] = ()) -> Conclusion:
        checks = checks or (Check(experiment_name(request.node)),)
        conclusion, failures = await run_on_loop(runner, fault, checks)
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)
        return conclusion

    run: Callable[..., Awaitable[Conclusion]] = arun_
    return run


@pytest.fixture(scope="session")
def http_timeout(aftershock_config: Config) -> float:
    """Seconds one admin or probe call may take: the load's own request timeout."""
    return aftershock_config.load.timeout_s


@pytest_asyncio.fixture
async def http_client(http_timeout: float) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` on this test's event loop, closed when the test ends."""
    import httpx
    async with httpx.AsyncClient(timeout=http_timeout) as client:
        yield client
