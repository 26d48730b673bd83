from __future__ import annotations

import asyncio

import pytest

from mesh.errors import ResourceExhausted
from svc_inference.domain.admission import AdmissionGate, PrioritySlots
from svc_inference.domain.model import Priority


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


async def test_a_freed_slot_goes_to_waiting_interactive_callers_before_batch_ones() -> None:
    slots = PrioritySlots(1)
    await slots.acquire(Priority.BATCH)
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await slots.acquire(priority)
        order.append(name)
        slots.release()

    waiters = [
        asyncio.create_task(take("batch-1", Priority.BATCH)),
        asyncio.create_task(take("batch-2", Priority.BATCH)),
        asyncio.create_task(take("interactive-1", Priority.INTERACTIVE)),
        asyncio.create_task(take("interactive-2", Priority.INTERACTIVE)),
    ]
    await asyncio.sleep(0)
    assert (slots.waiting(Priority.INTERACTIVE), slots.waiting(Priority.BATCH)) == (2, 2)
    slots.release()
    await asyncio.gather(*waiters)
    assert order == ["interactive-1", "interactive-2", "batch-1", "batch-2"]


async def test_each_priority_has_its_own_waiting_bound() -> None:
    gate = AdmissionGate("m", max_running=1, max_waiting=1)
    release = asyncio.Event()
    entered: list[str] = []

    async def hold(name: str, priority: Priority) -> None:
        async with gate.admit(priority):
            entered.append(name)
            await release.wait()

    running = asyncio.create_task(hold("running", Priority.BATCH))
    await asyncio.sleep(0)
    batch = asyncio.create_task(hold("batch", Priority.BATCH))
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted) as info:
        async with gate.admit(Priority.BATCH):
            pass
    assert info.value.metadata["priority"] == "batch"
    # The batch line is full, yet an interactive caller still gets in line, and ahead of it.
    interactive = asyncio.create_task(hold("interactive", Priority.INTERACTIVE))
    await asyncio.sleep(0)
    assert gate.depth == 3
    release.set()
    await asyncio.gather(running, batch, interactive)
    assert entered == ["running", "interactive", "batch"]
