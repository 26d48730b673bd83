"""One model thread, two classes of work: interactive calls never wait behind batch work.

A model replica runs one model call at a time. Interactive requests (query
embeddings, reranking: a person waits on them) queue in one line, batch
requests (document embeddings of an ingest) in another, each with its own
bound. Whenever the model thread is free the scheduler starts the next call:
every waiting interactive request of one kind merged into one model call, or,
only when no interactive request waits, the next slice of the oldest batch
request. Batch requests are cut into slices of a few texts, so an interactive
request arriving during a bulk load waits for at most one slice, while an
unloaded replica still runs batch work back to back at full speed.

Where memory allows a second copy of the model, interactive calls get a model
thread of their own instead (``interactive_executor``): they then run beside
the batch slice, waiting for none, and the two threads share the CPU.

A full line is refused at once with RESOURCE_EXHAUSTED (reason QUEUE_FULL and
the line named), so callers learn it in microseconds instead of at their
deadline; a caller that gives up while waiting leaves the line (a batch
request's remaining slices are dropped). Every accepted request ends with its
results or with the exception its model call raised.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Generic, TypeVar

from mesh.errors import ResourceExhausted, Unavailable
from svc_inference.domain.model import Priority

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclasses.dataclass(frozen=True)
class SchedulerLimits:
    """How much may wait, and how big a model call gets, per class of work."""

    max_waiting_interactive: int
    """Interactive requests waiting (not yet running) before a new one is refused."""
    max_waiting_batch: int
    """Batch requests waiting or partly done before a new one is refused."""
    max_interactive_merge: int
    """Most interactive requests of one kind merged into one model call."""

    def __post_init__(self) -> None:
        if self.max_waiting_interactive < 1 or self.max_waiting_batch < 1 or self.max_interactive_merge < 1:
            raise ValueError("scheduler limits must be >= 1")


@dataclasses.dataclass(frozen=True)
class SchedulerStats:
    """The scheduler's lines as they are now, and what it has refused and run since it started."""

    interactive_waiting: int = 0
    """Interactive requests waiting for the model thread."""
    batch_waiting: int = 0
    """Batch requests not finished (the one whose slice runs included)."""
    batch_slices_waiting: int = 0
    """Slices of those batch requests not started yet."""
    running: str = ""
    """The classes of the model calls running now (``interactive``, ``batch`` or both, comma-separated); empty
    when idle."""
    rejected_interactive: int = 0
    """Interactive requests refused because their line was full."""
    rejected_batch: int = 0
    """Batch requests refused because their line was full."""
    calls_interactive: int = 0
    """Model calls run for interactive requests."""
    calls_batch: int = 0
    """Model calls run for batch slices."""


class Lane(Generic[Item, Result]):
    """One kind of model call: ``run`` takes items and returns one result per item, in order (blocking)."""

    def __init__(self, name: str, run: Callable[[list[Item]], list[Result]]) -> None:
        self.name = name
        self.run = run


@dataclasses.dataclass(eq=False)
class _Interactive:
    lane: Lane[Any, Any]
    item: Any
    future: asyncio.Future[Any]


@dataclasses.dataclass(eq=False)
class _BatchJob:
    lane: Lane[Any, Any]
    slices: collections.deque[Any]
    future: asyncio.Future[list[Any]]
    results: list[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(eq=False)
class _Call:
    priority: Priority
    lane: Lane[Any, Any]
    items: list[Any]
    interactive: list[_Interactive]
    job: _BatchJob | None


class PriorityScheduler:
    """Runs model calls one at a time on ``executor``, interactive requests before batch slices.

    With an ``interactive_executor`` (a second model thread, over its own copy of the model) interactive calls
    run there instead, beside the batch slice running on ``executor``: a query then waits for no slice at all.
    """

    def __init__(
        self, model: str, limits: SchedulerLimits, executor: Executor, interactive_executor: Executor | None = None
    ) -> None:
        self._model = model
        self._limits = limits
        self._executors = {Priority.BATCH: executor, Priority.INTERACTIVE: interactive_executor or executor}
        self._separate = interactive_executor is not None
        self._interactive: collections.deque[_Interactive] = collections.deque()
        self._batch: collections.deque[_BatchJob] = collections.deque()
        self._running: dict[Priority, _Call | None] = {Priority.INTERACTIVE: None, Priority.BATCH: None}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rejected = {Priority.INTERACTIVE: 0, Priority.BATCH: 0}
        self._calls = {Priority.INTERACTIVE: 0, Priority.BATCH: 0}

    def stats(self) -> SchedulerStats:
        """The lines now (callers that gave up not counted)."""
        batch = [job for job in self._batch if not job.future.done()]
        return SchedulerStats(
            interactive_waiting=sum(1 for w in self._interactive if not w.future.done()),
            batch_waiting=len(batch),
            batch_slices_waiting=sum(len(job.slices) for job in batch),
            running=",".join(p.value for p, call in self._running.items() if call is not None),
            rejected_interactive=self._rejected[Priority.INTERACTIVE],
            rejected_batch=self._rejected[Priority.BATCH],
            calls_interactive=self._calls[Priority.INTERACTIVE],
            calls_batch=self._calls[Priority.BATCH],
        )

    async def interactive(self, lane: Lane[Item, Result], item: Item) -> Result:
        """Runs ``item`` in the next model call, ahead of every batch slice; QUEUE_FULL when the line is full."""
        self._drop_abandoned()
        if len(self._interactive) >= self._limits.max_waiting_interactive:
            raise self._full(Priority.INTERACTIVE, self._limits.max_waiting_interactive)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._interactive.append(_Interactive(lane, item, future))
        self._pump()
        return await future

    async def batch(self, lane: Lane[Item, Result], slices: Sequence[Item]) -> list[Result]:
        """Runs ``slices`` one model call each, whenever no interactive request waits; results in order."""
        if not slices:
            return []
        self._drop_abandoned()
        if len(self._batch) >= self._limits.max_waiting_batch:
            raise self._full(Priority.BATCH, self._limits.max_waiting_batch)
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._batch.append(_BatchJob(lane, collections.deque(slices), future))
        self._pump()
        return await future

    def close(self) -> None:
        """Ends every waiting request with UNAVAILABLE (the replica or service is stopping)."""
        error = Unavailable(f"model {self._model} is shutting down", reason="BACKEND_UNAVAILABLE")
        for waiter in self._interactive:
            if not waiter.future.done():
                waiter.future.set_exception(error)
        for job in self._batch:
            if not job.future.done():
                job.future.set_exception(error)
        self._interactive.clear()
        self._batch.clear()

    def _full(self, priority: Priority, bound: int) -> ResourceExhausted:
        self._rejected[priority] += 1
        return ResourceExhausted(
            f"model {self._model} is busy: {bound} {priority.value} requests are already waiting; retry later",
            reason="QUEUE_FULL",
            metadata={"model": self._model, "priority": priority.value, "max_waiting": str(bound)},
        )

    def _drop_abandoned(self) -> None:
        # A caller that was cancelled (deadline, disconnect) no longer counts against the bound.
        if any(w.future.done() for w in self._interactive):
            self._interactive = collections.deque(w for w in self._interactive if not w.future.done())
        if any(j.future.done() for j in self._batch):
            self._batch = collections.deque(j for j in self._batch if not j.future.done())

    def _pump(self) -> None:
        if self._separate:
            # Two model threads: each class has its own, and neither waits for the other.
            for priority in (Priority.INTERACTIVE, Priority.BATCH):
                if self._running[priority] is None:
                    self._start(self._next_call(priority))
        elif not any(self._running.values()):
            self._start(self._next_call(Priority.INTERACTIVE) or self._next_call(Priority.BATCH))

    def _start(self, call: _Call | None) -> None:
        if call is None:
            return
        self._running[call.priority] = call
        self._calls[call.priority] += 1
        task = asyncio.get_running_loop().create_task(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _next_call(self, priority: Priority) -> _Call | None:
        self._drop_abandoned()
        if priority is Priority.INTERACTIVE and self._interactive:
            lane = self._interactive[0].lane
            # Merge the waiting requests of the first one's kind; other kinds keep their place.
            merged = [w for w in self._interactive if w.lane is lane][: self._limits.max_interactive_merge]
            taken = set(map(id, merged))
            self._interactive = collections.deque(w for w in self._interactive if id(w) not in taken)
            return _Call(Priority.INTERACTIVE, lane, [w.item for w in merged], merged, None)
        if priority is Priority.BATCH and self._batch:
            job = self._batch[0]
            return _Call(Priority.BATCH, job.lane, [job.slices.popleft()], [], job)
        return None

    async def _run(self, call: _Call) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executors[call.priority], call.lane.run, call.items)
            if len(results) != len(call.items):
                raise RuntimeError(f"lane {call.lane.name} returned {len(results)} results for {len(call.items)}")
            self._deliver(call, results)
        except Exception as exc:  # noqa: BLE001 - handed to exactly the callers whose call failed
            self._fail(call, exc)
        finally:
            self._running[call.priority] = None
            self._pump()

    def _deliver(self, call: _Call, results: list[Any]) -> None:
        job = call.job
        if job is None:
            for waiter, result in zip(call.interactive, results, strict=True):
                if not waiter.future.done():
                    waiter.future.set_result(result)
            return
        job.results.extend(results)
        if not job.slices:
            self._finish(job)
            if not job.future.done():
                job.future.set_result(job.results)

    def _fail(self, call: _Call, exc: Exception) -> None:
        for waiter in call.interactive:
            if not waiter.future.done():
                waiter.future.set_exception(exc)
        if call.job is not None:
            self._finish(call.job)
            if not call.job.future.done():
                call.job.future.set_exception(exc)

    def _finish(self, job: _BatchJob) -> None:
        self._batch = collections.deque(j for j in self._batch if j is not job)


def slices_of(count: int, size: int) -> list[range]:
    """Index ranges that cut ``count`` items into consecutive slices of at most ``size``."""
    if size < 1:
        raise ValueError("slice size must be >= 1")
    return [range(start, min(start + size, count)) for start in range(0, count, size)]
