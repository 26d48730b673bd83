"""How a caller marks a model call as bulk work that may wait: the ``x-ragmesh-priority`` request header.

Priority is about the call, not its content (like its deadline), so it travels
as metadata. The default is interactive: a caller can only lower its own
priority, never jump ahead of people waiting. Ingest's pipeline sends
``batch`` on its Embed and StreamGenerate calls; InferenceService then runs
them only while no interactive call waits, and refuses them at once with
RESOURCE_EXHAUSTED when its batch line is full. ``Backpressure`` is how a batch
caller answers that refusal: it waits and tries again, within a budget.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from mesh.errors import FieldViolation, InvalidArgument, ResourceExhausted

_T = TypeVar("_T")

PRIORITY_HEADER = "x-ragmesh-priority"
"""Request metadata key; its value is one of PRIORITIES."""
INTERACTIVE = "interactive"
"""A person waits on the answer (the default)."""
BATCH = "batch"
"""Bulk work (ingest): runs when no interactive call waits, and backs off when refused."""
PRIORITIES = (INTERACTIVE, BATCH)

BATCH_METADATA = ((PRIORITY_HEADER, BATCH),)
"""Metadata that marks a call as batch work."""


def priority_of(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The priority a call's metadata asks for (interactive when none); INVALID_ARGUMENT for an unknown value."""
    for key, value in metadata or ():
        if key != PRIORITY_HEADER:
            continue
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip().lower()
        if text not in PRIORITIES:
            raise InvalidArgument(
                f"metadata {PRIORITY_HEADER} is {text!r}; expected one of {list(PRIORITIES)}",
                reason="INVALID_PRIORITY",
                metadata={"header": PRIORITY_HEADER},
                violations=[FieldViolation(PRIORITY_HEADER, f"one of {list(PRIORITIES)}")],
            )
        return text
    return INTERACTIVE


class Backpressure:
    """Batch work's answer to RESOURCE_EXHAUSTED: wait a little longer each time, and try again, within a budget.

    A full batch line is the model saying "not now", not a fault: the batch caller slows
    down to what the model can take instead of failing (capped exponential back-off with
    jitter, from ``first_delay_s`` to ``max_delay_s``). Each ``call`` may spend up to
    ``budget_s`` waiting; then the ResourceExhausted goes to the caller. This is the only
    place in the mesh that tries a RESOURCE_EXHAUSTED call again (``mesh.downstream``);
    transient faults (UNAVAILABLE) are retried by the channel's service config.
    Blocking: for callers without an event loop (ingest's Ray Data workers).
    """

    def __init__(
        self,
        budget_s: float,
        *,
        first_delay_s: float = 0.05,
        max_delay_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._budget_s = budget_s
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._sleep = sleep
        self._clock = clock
        self.waits = 0
        """RESOURCE_EXHAUSTED answers waited out so far, over every call."""

    def call(self, attempt: Callable[[], _T]) -> _T:
        """``attempt()``, tried again after each ResourceExhausted it raises while the budget lasts."""
        delay = self._first_delay_s
        until = self._clock() + self._budget_s
        while True:
            try:
                return attempt()
            except ResourceExhausted:
                if self._clock() + delay >= until:
                    raise
                self.waits += 1
                self._sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._max_delay_s)
