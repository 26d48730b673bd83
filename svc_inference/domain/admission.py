"""Model slots handed out interactive-first, and a bounded queue in front of an in-process model.

``PrioritySlots`` is a semaphore whose waiters are served by priority: a
waiting interactive caller (the agent's answer) gets the next free slot before
any waiting batch caller (ingest's graph extraction), first come first served
within a class. The llama.cpp backend holds its one generation slot with it,
and ``AdmissionGate`` builds the in-process bounded queue on it: a few run, a
bounded number wait, the rest are refused. Ray Serve gives deployments the
same bound (``max_queued_requests`` at the caller); the gate is its
counterpart for ``hosting: inprocess``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from mesh.errors import ResourceExhausted
from svc_inference.domain.model import Priority


class PrioritySlots:
    """``slots`` holders at once; a released slot goes to the oldest interactive waiter, else the oldest batch one."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self._free = slots
        self._waiters: dict[Priority, collections.deque[asyncio.Future[None]]] = {
            Priority.INTERACTIVE: collections.deque(),
            Priority.BATCH: collections.deque(),
        }

    def waiting(self, priority: Priority) -> int:
        """Callers of ``priority`` waiting for a slot."""
        return sum(1 for f in self._waiters[priority] if not f.done())

    async def acquire(self, priority: Priority = Priority.INTERACTIVE) -> None:
        """Waits for a slot; a cancelled waiter leaves the line (and passes on a slot it was just handed)."""
        if self._free > 0 and not any(self.waiting(p) for p in Priority):
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[priority].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as the caller gave up
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters[priority].remove(future)

    def release(self) -> None:
        """Frees a slot, handing it straight to the next waiter if there is one."""
        for priority in (Priority.INTERACTIVE, Priority.BATCH):
            line = self._waiters[priority]
            while line:
                future = line.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self._free += 1


class AdmissionGate:
    """At most ``max_running`` callers inside at once and ``max_waiting`` waiting per priority; more get
    RESOURCE_EXHAUSTED. Interactive callers are let in before batch ones."""

    def __init__(self, model: str, max_running: int, max_waiting: int) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError("max_running must be >= 1 and max_waiting >= 0")
        self._model = model
        self._max_running = max_running
        self._max_waiting = max_waiting
        self._slots = PrioritySlots(max_running)
        self._running = 0
        self._waiting = {Priority.INTERACTIVE: 0, Priority.BATCH: 0}

    @property
    def depth(self) -> int:
        """Callers running plus waiting."""
        return self._running + sum(self._waiting.values())

    @contextlib.asynccontextmanager
    async def admit(self, priority: Priority = Priority.INTERACTIVE) -> AsyncIterator[None]:
        """Holds a slot for the block; refuses at once when this priority's line is full."""
        if self._running >= self._max_running and self._waiting[priority] >= self._max_waiting:
            raise ResourceExhausted(
                f"model {self._model} is busy: {self._running} running and {self._waiting[priority]} "
                f"{priority.value} requests waiting (max_queued_requests={self._max_waiting}); retry later",
                reason="QUEUE_FULL",
                metadata={
                    "model": self._model,
                    "priority": priority.value,
                    "max_queued_requests": str(self._max_waiting),
                },
            )
        self._waiting[priority] += 1
        try:
            await self._slots.acquire(priority)
        finally:
            self._waiting[priority] -= 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._slots.release()
