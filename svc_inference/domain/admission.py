"""A bounded queue in front of an in-process model: a few run, a bounded number wait, the rest are refused.

Ray Serve gives deployments the same bound (``max_queued_requests`` at the
caller); this is its counterpart for ``hosting: inprocess``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mesh.errors import ResourceExhausted


class AdmissionGate:
    """At most ``max_running`` callers inside at once and ``max_waiting`` waiting; more get RESOURCE_EXHAUSTED."""

    def __init__(self, model: str, max_running: int, max_waiting: int) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError("max_running must be >= 1 and max_waiting >= 0")
        self._model = model
        self._max_running = max_running
        self._max_waiting = max_waiting
        self._slots = asyncio.Semaphore(max_running)
        self._running = 0
        self._waiting = 0

    @property
    def depth(self) -> int:
        """Callers running plus waiting."""
        return self._running + self._waiting

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Holds a slot for the block; refuses at once when the queue is full."""
        if self._running >= self._max_running and self._waiting >= self._max_waiting:
            raise ResourceExhausted(
                f"model {self._model} is busy: {self._running} running and {self._waiting} waiting "
                f"(max_queued_requests={self._max_waiting}); retry later",
                reason="QUEUE_FULL",
                metadata={"model": self._model, "max_queued_requests": str(self._max_waiting)},
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._slots.release()
