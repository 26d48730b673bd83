"""svc_ingest's metrics: the job queue gauges and what an ended job adds."""

from __future__ import annotations

import asyncio

from svc_ingest import metrics


def _gauges() -> tuple[float, float]:
    return metrics.JOBS_WAITING._value.get(), metrics.JOBS_RUNNING._value.get()


def test_a_job_counts_as_waiting_until_it_has_a_slot_then_as_running() -> None:
    async def scenario() -> None:
        slots = asyncio.Semaphore(1)
        waiting0, running0 = _gauges()
        first_in = asyncio.Event()
        release = asyncio.Event()

        async def job(started: asyncio.Event | None) -> None:
            async with metrics.job_slot(slots):
                if started is not None:
                    started.set()
                await release.wait()

        first = asyncio.create_task(job(first_in))
        await first_in.wait()
        second = asyncio.create_task(job(None))
        await asyncio.sleep(0.01)
        assert _gauges() == (waiting0 + 1, running0 + 1)
        release.set()
        await asyncio.gather(first, second)
        assert _gauges() == (waiting0, running0)
        assert not slots.locked()

    asyncio.run(scenario())


def test_a_job_cancelled_while_waiting_leaves_the_queue() -> None:
    async def scenario() -> None:
        slots = asyncio.Semaphore(0)
        waiting0, running0 = _gauges()

        async def job() -> None:
            async with metrics.job_slot(slots):
                raise AssertionError("never gets a slot")

        task = asyncio.create_task(job())
        await asyncio.sleep(0.01)
        assert _gauges() == (waiting0 + 1, running0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert _gauges() == (waiting0, running0)

    asyncio.run(scenario())
