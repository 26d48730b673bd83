from __future__ import annotations

import asyncio

import pytest

from mesh.errors import ResourceExhausted
from svc_inference.domain.admission import AdmissionGate


async def test_waiting_beyond_the_bound_is_refused_at_once() -> None:
    gate = AdmissionGate("m", max_running=1, max_waiting=1)
    release = asyncio.Event()
    entered: list[str] = []

    async def hold(name: str) -> None:
        async with gate.admit():
            entered.append(name)
            await release.wait()

    first = asyncio.create_task(hold("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(hold("second"))
    await asyncio.sleep(0)
    assert gate.depth == 2
    with pytest.raises(ResourceExhausted) as info:
        async with gate.admit():
            pass
    assert info.value.reason == "QUEUE_FULL"
    assert info.value.metadata["max_queued_requests"] == "1"
    release.set()
    await asyncio.gather(first, second)
    assert entered == ["first", "second"]
    assert gate.depth == 0


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    gate = AdmissionGate("m", max_running=1, max_waiting=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.admit():
            await release.wait()

    running = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert gate.depth == 1
    release.set()
    await running
    async with gate.admit():
        assert gate.depth == 1
