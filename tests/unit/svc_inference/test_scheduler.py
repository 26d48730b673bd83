"""The priority scheduler with a fake model whose calls the test starts and ends one at a time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from mesh.errors import ResourceExhausted, Unavailable
from svc_inference.domain.scheduler import Lane, PriorityScheduler, SchedulerLimits, slices_of


class FakeModel:
    """A model call per lane run: it records its items, says it started, and blocks until the test releases it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.calls: list[list[str]] = []
        self._release = threading.Semaphore(0)
        self._started: asyncio.Queue[list[str]] = asyncio.Queue()

    def run(self, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        self._loop.call_soon_threadsafe(self._started.put_nowait, list(items))
        self._release.acquire()
        if "boom" in items:
            raise RuntimeError("the fake model failed")
        return [f"r:{item}" for item in items]

    async def started(self) -> list[str]:
        return await asyncio.wait_for(self._started.get(), 5)

    def release(self) -> None:
        self._release.release()


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(1)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def _scheduler(executor: ThreadPoolExecutor, *, interactive: int = 8, batch: int = 4) -> PriorityScheduler:
    limits = SchedulerLimits(max_waiting_interactive=interactive, max_waiting_batch=batch, max_interactive_merge=4)
    return PriorityScheduler("fake", limits, executor)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_interactive_requests_run_before_queued_batch_slices(executor: ThreadPoolExecutor) -> None:
    model = FakeModel(asyncio.get_running_loop())
    scheduler = _scheduler(executor)
    lane = Lane("embed", model.run)
    done: list[str] = []

    async def batch(name: str, slices: list[str]) -> None:
        assert await scheduler.batch(lane, slices) == [f"r:{s}" for s in slices]
        done.append(name)

    async def query(name: str) -> None:
        assert await scheduler.interactive(lane, name) == f"r:{name}"
        done.append(name)

    ingest_a = asyncio.create_task(batch("A", ["a0", "a1", "a2"]))
    assert await model.started() == ["a0"]
    ingest_b = asyncio.create_task(batch("B", ["b0", "b1"]))
    q1 = asyncio.create_task(query("q1"))
    q2 = asyncio.create_task(query("q2"))
    await _settle()
    stats = scheduler.stats()
    assert (stats.interactive_waiting, stats.batch_waiting, stats.batch_slices_waiting) == (2, 2, 4)
    assert stats.running == "batch"

    model.release()  # a0 ends: both queries go next, merged into one call
    assert await model.started() == ["q1", "q2"]
    q3 = asyncio.create_task(query("q3"))  # arrives while the queries run: still ahead of a1
    await _settle()
    model.release()
    assert await model.started() == ["q3"]
    for _ in range(5):  # q3, a1, a2, b0, b1
        model.release()
    await asyncio.gather(ingest_a, ingest_b, q1, q2, q3)

    assert model.calls == [["a0"], ["q1", "q2"], ["q3"], ["a1"], ["a2"], ["b0"], ["b1"]]
    assert done == ["q1", "q2", "q3", "A", "B"]
    stats = scheduler.stats()
    assert (stats.interactive_waiting, stats.batch_waiting, stats.running) == (0, 0, "")
    assert (stats.calls_interactive, stats.calls_batch) == (2, 5)


async def test_a_full_batch_line_is_refused_at_once_while_queries_still_get_in(
    executor: ThreadPoolExecutor,
) -> None:
    model = FakeModel(asyncio.get_running_loop())
    scheduler = _scheduler(executor, batch=1)
    lane = Lane("embed", model.run)
    running = asyncio.create_task(scheduler.batch(lane, ["a0", "a1"]))
    await model.started()

    with pytest.raises(ResourceExhausted) as info:
        await scheduler.batch(lane, ["b0"])
    assert info.value.reason == "QUEUE_FULL"
    assert info.value.metadata == {"model": "fake", "priority": "batch", "max_waiting": "1"}
    assert scheduler.stats().rejected_batch == 1

    query = asyncio.create_task(scheduler.interactive(lane, "q"))
    model.release()
    assert await model.started() == ["q"]
    model.release()
    model.release()
    assert await query == "r:q"
    assert await running == ["r:a0", "r:a1"]


async def test_a_full_interactive_line_is_refused_at_once(executor: ThreadPoolExecutor) -> None:
    model = FakeModel(asyncio.get_running_loop())
    scheduler = _scheduler(executor, interactive=1)
    lane = Lane("embed", model.run)
    ingest = asyncio.create_task(scheduler.batch(lane, ["a0"]))
    await model.started()
    waiting = asyncio.create_task(scheduler.interactive(lane, "q1"))
    await _settle()

    with pytest.raises(ResourceExhausted) as info:
        await scheduler.interactive(lane, "q2")
    assert info.value.metadata["priority"] == "interactive"
    assert scheduler.stats().rejected_interactive == 1

    model.release()
    model.release()
    assert await waiting == "r:q1"
    assert await ingest == ["r:a0"]


async def test_callers_that_give_up_leave_their_line(executor: ThreadPoolExecutor) -> None:
    model = FakeModel(asyncio.get_running_loop())
    scheduler = _scheduler(executor, interactive=1, batch=2)
    lane = Lane("embed", model.run)
    first = asyncio.create_task(scheduler.batch(lane, ["a0", "a1", "a2"]))
    await model.started()
    abandoned_query = asyncio.create_task(scheduler.interactive(lane, "gone"))
    abandoned_ingest = asyncio.create_task(scheduler.batch(lane, ["b0", "b1"]))
    await _settle()
    abandoned_query.cancel()
    abandoned_ingest.cancel()
    first.cancel()  # the slice running now finishes; the job's other slices are dropped
    await _settle()
    assert scheduler.stats().interactive_waiting == 0
    assert scheduler.stats().batch_waiting == 0

    later = asyncio.create_task(scheduler.interactive(lane, "q"))
    model.release()
    assert await model.started() == ["q"]
    model.release()
    assert await later == "r:q"
    assert model.calls == [["a0"], ["q"]]


async def test_a_failed_model_call_fails_only_its_callers(executor: ThreadPoolExecutor) -> None:
    model = FakeModel(asyncio.get_running_loop())
    scheduler = _scheduler(executor)
    lane = Lane("embed", model.run)
    ingest = asyncio.create_task(scheduler.batch(lane, ["a0", "boom", "a2"]))
    await model.started()
    other = asyncio.create_task(scheduler.batch(lane, ["b0"]))
    model.release()
    await model.started()
    model.release()  # the "boom" slice fails: the job ends with that error, its last slice is not run
    with pytest.raises(RuntimeError, match="fake model failed"):
        await ingest
    assert await model.started() == ["b0"]
    model.release()
    assert await other == ["r:b0"]
    assert model.calls == [["a0"], ["boom"], ["b0"]]


async def test_closing_ends_every_waiting_request_with_unavailable(executor: ThreadPoolExecutor) -> None:
    model = FakeModel(asyncio.get_running_loop())
    scheduler = _scheduler(executor)
    lane = Lane("embed", model.run)
    running = asyncio.create_task(scheduler.batch(lane, ["a0", "a1"]))
    await model.started()
    waiting = asyncio.create_task(scheduler.interactive(lane, "q"))
    await _settle()
    scheduler.close()
    for task in (running, waiting):
        with pytest.raises(Unavailable):
            await task
    model.release()


async def test_with_a_thread_of_their_own_queries_run_beside_a_batch_slice(executor: ThreadPoolExecutor) -> None:
    loop = asyncio.get_running_loop()
    documents, queries = FakeModel(loop), FakeModel(loop)
    interactive_pool = ThreadPoolExecutor(1)
    limits = SchedulerLimits(max_waiting_interactive=8, max_waiting_batch=4, max_interactive_merge=4)
    scheduler = PriorityScheduler("fake", limits, executor, interactive_pool)
    try:
        ingest = asyncio.create_task(scheduler.batch(Lane("embed-batch", documents.run), ["a0", "a1"]))
        assert await documents.started() == ["a0"]
        query = asyncio.create_task(scheduler.interactive(Lane("embed", queries.run), "q"))
        assert await queries.started() == ["q"]
        assert scheduler.stats().running == "interactive,batch"
        queries.release()  # the query ends while the slice a0 still runs
        assert await query == "r:q"
        assert not ingest.done()
        documents.release()
        documents.release()
        assert await ingest == ["r:a0", "r:a1"]
        assert documents.calls == [["a0"], ["a1"]] and queries.calls == [["q"]]
    finally:
        interactive_pool.shutdown(wait=False, cancel_futures=True)


def test_slices_cover_every_item_in_order() -> None:
    assert slices_of(0, 3) == []
    assert [list(r) for r in slices_of(7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError):
        slices_of(3, 0)
