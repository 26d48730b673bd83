"""Fair use: per-tenant limit, global queue bound, FIFO hand-over, timeouts and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from mesh.errors import ResourceExhausted
from svc_sandbox.domain import SANDBOX_QUEUE_FULL, SANDBOX_QUEUE_TIMEOUT, TENANT_CONCURRENCY_LIMIT, Admission


def admission(running: int = 2, queued: int = 2, per_tenant: int = 2, timeout_s: float = 5.0) -> Admission:
    return Admission(max_running=running, max_queued=queued, max_per_tenant=per_tenant, queue_timeout_s=timeout_s)


async def hold(gate: Admission, tenant: str, release: asyncio.Event, order: list[str] | None = None) -> None:
    async with gate.slot(tenant):
        if order is not None:
            order.append(tenant)
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_runs_up_to_max_running_then_queues() -> None:
    gate = admission(running=2, queued=2, per_tenant=5)
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(gate, f"t{i}", release)) for i in range(4)]
    await settle()
    stats = gate.stats()
    assert (stats.running, stats.queued) == (2, 2)
    release.set()
    await asyncio.gather(*tasks)
    assert gate.stats() == type(stats)(running=0, queued=0, per_tenant={})


async def test_tenant_limit_counts_running_and_queued() -> None:
    gate = admission(running=1, queued=5, per_tenant=2)
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(gate, "a", release)) for _ in range(2)]
    await settle()
    with pytest.raises(ResourceExhausted) as error:
        async with gate.slot("a"):
            pass
    assert error.value.reason == TENANT_CONCURRENCY_LIMIT
    assert error.value.metadata == {"tenant": "a", "limit": "2"}
    other = asyncio.create_task(hold(gate, "b", release))  # another tenant still gets in line
    await settle()
    assert gate.stats().per_tenant == {"a": 2, "b": 1}
    release.set()
    await asyncio.gather(*tasks, other)


async def test_global_bound_on_running_plus_queued() -> None:
    gate = admission(running=1, queued=1, per_tenant=9)
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(gate, f"t{i}", release)) for i in range(2)]
    await settle()
    with pytest.raises(ResourceExhausted) as error:
        async with gate.slot("late"):
            pass
    assert error.value.reason == SANDBOX_QUEUE_FULL
    release.set()
    await asyncio.gather(*tasks)


async def test_no_queue_means_immediate_rejection() -> None:
    gate = admission(running=1, queued=0)
    release = asyncio.Event()
    task = asyncio.create_task(hold(gate, "a", release))
    await settle()
    with pytest.raises(ResourceExhausted):
        async with gate.slot("b"):
            pass
    release.set()
    await task


async def test_waiters_are_served_first_come_first_served() -> None:
    gate = admission(running=1, queued=5, per_tenant=9)
    order: list[str] = []
    first_release = asyncio.Event()
    first = asyncio.create_task(hold(gate, "first", first_release, order))
    await settle()
    release = asyncio.Event()
    release.set()
    waiters = []
    for name in ("w1", "w2", "w3"):
        waiters.append(asyncio.create_task(hold(gate, name, release, order)))
        await settle()
    first_release.set()
    await asyncio.gather(first, *waiters)
    assert order == ["first", "w1", "w2", "w3"]


async def test_queue_timeout() -> None:
    gate = admission(running=1, queued=1, timeout_s=0.05)
    release = asyncio.Event()
    task = asyncio.create_task(hold(gate, "a", release))
    await settle()
    with pytest.raises(ResourceExhausted) as error:
        async with gate.slot("b"):
            pass
    assert error.value.reason == SANDBOX_QUEUE_TIMEOUT
    assert gate.stats().queued == 0
    assert gate.stats().per_tenant == {"a": 1}
    release.set()
    await task


async def test_cancelled_waiter_leaves_the_queue() -> None:
    gate = admission(running=1, queued=1)
    release = asyncio.Event()
    holder = asyncio.create_task(hold(gate, "a", release))
    await settle()
    waiter = asyncio.create_task(hold(gate, "b", release))
    await settle()
    assert gate.stats().queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.stats().queued == 0
    assert gate.stats().per_tenant == {"a": 1}
    release.set()
    await holder
    assert gate.stats().running == 0


async def test_slot_handed_over_to_a_waiter_being_cancelled_is_not_lost() -> None:
    gate = admission(running=1, queued=2, per_tenant=9)
    first_release = asyncio.Event()
    holder = asyncio.create_task(hold(gate, "a", first_release))
    await settle()
    release = asyncio.Event()
    release.set()
    doomed = asyncio.create_task(hold(gate, "b", release))
    follower = asyncio.create_task(hold(gate, "c", release))
    await settle()
    # Free the slot (it is handed to "b") and cancel "b" before it resumes.
    first_release.set()
    await asyncio.sleep(0)
    doomed.cancel()
    await asyncio.gather(holder, doomed, follower, return_exceptions=True)
    assert follower.done() and follower.exception() is None
    stats = gate.stats()
    assert (stats.running, stats.queued, stats.per_tenant) == (0, 0, {})


async def test_slot_is_released_when_the_body_raises() -> None:
    gate = admission(running=1)
    with pytest.raises(RuntimeError):
        async with gate.slot("a"):
            raise RuntimeError("boom")
    assert gate.stats().running == 0
    async with gate.slot("a"):
        assert gate.stats().running == 1


def test_bounds_must_be_sane() -> None:
    with pytest.raises(ValueError):
        Admission(max_running=0, max_queued=0, max_per_tenant=1, queue_timeout_s=1)
