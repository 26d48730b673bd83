"""Fair use of the sandbox: who may run now, who waits, and who is turned away.

Three bounds, checked in this order when a request arrives:

1. per tenant: at most ``max_per_tenant`` executions of one tenant, running or queued
   (``ResourceExhausted`` reason ``TENANT_CONCURRENCY_LIMIT``), so one tenant cannot
   fill the queue;
2. globally: at most ``max_running + max_queued`` executions in flight
   (``SANDBOX_QUEUE_FULL``), so memory and file descriptors stay bounded under load;
3. then the request waits, first come first served, for one of ``max_running`` slots
   (default: the CPU count, since the work is CPU-bound), at most ``queue_timeout_s``
   (``SANDBOX_QUEUE_TIMEOUT``).

The checks run before the first ``await``, so on one event loop they need no lock.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mesh.errors import ResourceExhausted

TENANT_CONCURRENCY_LIMIT = "TENANT_CONCURRENCY_LIMIT"
"""Reason: the tenant already has its maximum of executions running or queued."""
SANDBOX_QUEUE_FULL = "SANDBOX_QUEUE_FULL"
"""Reason: the service holds its maximum of running plus queued executions."""
SANDBOX_QUEUE_TIMEOUT = "SANDBOX_QUEUE_TIMEOUT"
"""Reason: no slot came free within the queue timeout."""


@dataclass(frozen=True)
class AdmissionStats:
    """A snapshot of the admission state, for metrics and tests."""

    running: int
    """Executions holding a slot."""
    queued: int
    """Executions waiting for a slot."""
    per_tenant: dict[str, int]
    """Running plus queued executions per tenant (tenants with none are absent)."""


class Admission:
    """Per-tenant and global concurrency limits with a bounded FIFO wait queue."""

    def __init__(self, *, max_running: int, max_queued: int, max_per_tenant: int, queue_timeout_s: float) -> None:
        """Set the bounds; ``max_running`` and ``max_per_tenant`` must be positive."""
        if max_running < 1 or max_per_tenant < 1 or max_queued < 0:
            raise ValueError("max_running and max_per_tenant must be positive, max_queued not negative")
        self._max_running = max_running
        self._max_queued = max_queued
        self._max_per_tenant = max_per_tenant
        self._queue_timeout_s = queue_timeout_s
        self._running = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._per_tenant: dict[str, int] = {}

    def stats(self) -> AdmissionStats:
        """Current counts."""
        queued = sum(1 for w in self._waiters if not w.done())
        return AdmissionStats(running=self._running, queued=queued, per_tenant=dict(self._per_tenant))

    @asynccontextmanager
    async def slot(self, tenant: str) -> AsyncIterator[None]:
        """Hold one execution slot for ``tenant`` for the duration of the ``async with`` block.

        Raises ResourceExhausted (TENANT_CONCURRENCY_LIMIT, SANDBOX_QUEUE_FULL or
        SANDBOX_QUEUE_TIMEOUT) when the request may not run. A cancelled waiter leaves
        the queue without taking a slot.
        """
        held = self._per_tenant.get(tenant, 0)
        if held >= self._max_per_tenant:
            raise ResourceExhausted(
                f"tenant already has {held} sandbox executions running or queued (limit {self._max_per_tenant})",
                reason=TENANT_CONCURRENCY_LIMIT,
                metadata={"tenant": tenant, "limit": str(self._max_per_tenant)},
            )
        in_flight = self._running + self.stats().queued
        if in_flight >= self._max_running + self._max_queued:
            raise ResourceExhausted(
                f"sandbox is full: {in_flight} executions running or queued; try again later",
                reason=SANDBOX_QUEUE_FULL,
                metadata={"limit": str(self._max_running + self._max_queued)},
            )
        self._per_tenant[tenant] = held + 1
        try:
            await self._acquire()
            try:
                yield
            finally:
                self._release()
        finally:
            left = self._per_tenant[tenant] - 1
            if left:
                self._per_tenant[tenant] = left
            else:
                del self._per_tenant[tenant]

    async def _acquire(self) -> None:
        if self._running < self._max_running and not self.stats().queued:
            self._running += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            # shield: a timeout or cancel must not cancel a slot already handed to us.
            await asyncio.wait_for(asyncio.shield(waiter), self._queue_timeout_s)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # The slot arrived as we gave up: pass it on instead of leaking it.
                self._release()
            else:
                waiter.cancel()
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise ResourceExhausted(
                    f"no sandbox slot came free within {self._queue_timeout_s:g} s",
                    reason=SANDBOX_QUEUE_TIMEOUT,
                    metadata={"queue_timeout_s": f"{self._queue_timeout_s:g}"},
                ) from None
            raise

    def _release(self) -> None:
        # Hand the slot straight to the oldest live waiter, so `running` never dips and
        # a newcomer cannot overtake the queue.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._running -= 1
