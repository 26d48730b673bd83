"""Store-call timeouts from the current request's deadline."""

from __future__ import annotations

from mesh import context
from mesh.errors import DeadlineExceeded


def call_timeout_s(ceiling_s: float) -> float:
    """Seconds a store call may take: the request's remaining time, at most ``ceiling_s``.

    Raises DEADLINE_EXCEEDED when the request has no time left, so no store call
    starts that could only be wasted.
    """
    remaining = context.remaining_s()
    if remaining is None:
        return ceiling_s
    if remaining <= 0.0:
        raise DeadlineExceeded("the request's deadline passed before the store call", reason="DEADLINE_PASSED")
    return min(ceiling_s, remaining)
