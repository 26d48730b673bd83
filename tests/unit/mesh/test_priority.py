from __future__ import annotations

from collections.abc import Callable

import pytest

from mesh.errors import InvalidArgument, ResourceExhausted, Unavailable
from mesh.priority import BATCH, BATCH_METADATA, INTERACTIVE, PRIORITY_HEADER, Backpressure, priority_of


def test_a_call_without_the_header_is_interactive() -> None:
    assert priority_of(None) == INTERACTIVE
    assert priority_of([("x-ragmesh-tenant", "t")]) == INTERACTIVE


def test_batch_is_read_from_text_or_bytes_values() -> None:
    assert priority_of(BATCH_METADATA) == BATCH
    assert priority_of([(PRIORITY_HEADER, b" Batch ")]) == BATCH


def test_an_unknown_priority_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as info:
        priority_of([(PRIORITY_HEADER, "urgent")])
    assert info.value.reason == "INVALID_PRIORITY"
    assert info.value.violations[0].field == PRIORITY_HEADER


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def refusing(times: int, error: Exception) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "done"

    return calls, attempt


def test_backpressure_waits_out_resource_exhausted_longer_each_time() -> None:
    clock = FakeClock()
    backpressure = Backpressure(60.0, sleep=clock.sleep, clock=lambda: clock.now)
    calls, attempt = refusing(4, ResourceExhausted("batch line full"))
    assert backpressure.call(attempt) == "done"
    assert len(calls) == 5 and backpressure.waits == 4
    assert all(later > earlier for earlier, later in zip(clock.sleeps, clock.sleeps[1:], strict=False))


def test_backpressure_gives_the_refusal_back_when_its_budget_is_spent() -> None:
    clock = FakeClock()
    backpressure = Backpressure(1.0, max_delay_s=0.2, sleep=clock.sleep, clock=lambda: clock.now)
    _, attempt = refusing(1000, ResourceExhausted("batch line full"))
    with pytest.raises(ResourceExhausted):
        backpressure.call(attempt)
    assert clock.now <= 1.0
    assert 1 <= backpressure.waits < 1000


def test_backpressure_never_tries_anything_but_resource_exhausted_again() -> None:
    clock = FakeClock()
    backpressure = Backpressure(60.0, sleep=clock.sleep, clock=lambda: clock.now)
    calls, attempt = refusing(1, Unavailable("model restarting"))
    with pytest.raises(Unavailable):
        backpressure.call(attempt)
    assert len(calls) == 1 and backpressure.waits == 0 and clock.sleeps == []
