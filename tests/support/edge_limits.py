"""Calls through the edge that wait out a tenant's rate limit, as a well-behaved client does.

The edge answers a tenant over its per-tenant limit with RESOURCE_EXHAUSTED and
``x-ratelimit-reset`` (seconds until its window resets). Tests that drive many
calls for one tenant with the stack's default limits (20 calls a second in the
``default`` family) wait that long and call again; any other error, and a
RESOURCE_EXHAUSTED that is not the edge's rate limit, is raised at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

T = TypeVar("T")

#: The most a test waits out the limit for one call before it lets the refusal fail the test.
MAX_WAITS = 5


def _reset_s(error: grpc.RpcError) -> float | None:
    """Seconds the edge says to wait, when ``error`` is its rate-limit refusal; else None."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    metadata = [*(error.initial_metadata() or ()), *(error.trailing_metadata() or ())]  # type: ignore[attr-defined]
    for key, value in metadata:
        if key == "x-ratelimit-reset":
            return max(float(value), 0.0)
    return None


def within_limits(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, called again after the edge's reset hint while the tenant is over its limit."""
    for wait in range(MAX_WAITS + 1):
        try:
            return call(*args, **kwargs)
        except grpc.RpcError as error:
            reset_s = _reset_s(error)
            if reset_s is None or wait == MAX_WAITS:
                raise
            time.sleep(reset_s + 0.05)
    raise AssertionError("unreachable")
