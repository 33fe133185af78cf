"""A custom fault as an ``async def``: an outage on every pod at once, through the app's admin API.

The sample app answers 503 for exactly N ms after ``POST /admin/outage?ms=N``, so the
outage window aftershock measures from its load can be held against the truth. The
coroutine runs on the test's event loop (pytest-asyncio) while the runner works in a
thread; it calls every serving pod concurrently with ``httpx.AsyncClient`` and holds the
fault until the outage is over.

    aftershock run --config aftershock.yaml --experiments examples/experiments
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from aftershock.custom import CustomFault, Scene, serving_pods
from aftershock.faults.base import FaultKind
from aftershock.fixtures import AsyncRunExperiment

OUTAGE_MS = 300


@pytest.mark.asyncio
@pytest.mark.experiment("admin-outage")
@pytest.mark.fault(FaultKind.CUSTOM)
async def test_admin_outage(arun: AsyncRunExperiment, http_client: httpx.AsyncClient) -> None:

    async def outage_on_every_pod(scene: Scene) -> None:
        pods = serving_pods(scene)
        if not pods:
            raise RuntimeError("no serving pod with an address on the timeline")
        # Open a connection to each pod first, so the outages start together.
        for answer in await asyncio.gather(*(http_client.get(f"{p.url}/version")
                                             for p in pods)):
            answer.raise_for_status()
        answers = await asyncio.gather(*(
            http_client.post(f"{p.url}/admin/outage", params={"ms": OUTAGE_MS}) for p in pods))
        for pod, answer in zip(pods, answers, strict=True):
            answer.raise_for_status()
            record = answer.json()
            scene.act(f"{pod.name}: outage from {record['start_unix_nano']} to "
                      f"{record['end_unix_nano']} (unix ns)")
        await asyncio.sleep(OUTAGE_MS / 1000)  # the fault is on until the outages are over

    await arun(CustomFault(outage_on_every_pod))
