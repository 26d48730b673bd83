"""The one deadline-derived timeout: what is left of the request's deadline, at most the caller's ceiling."""

from __future__ import annotations

import time

import pytest

from mesh import context
from mesh.errors import DeadlineExceeded


def serving(deadline_in_s: float | None) -> context.RequestContext:
    deadline = None if deadline_in_s is None else time.monotonic() + deadline_in_s
    return context.RequestContext("/x/Y", "r", context.Identity("acme"), deadline)


def test_without_a_request_the_ceiling_is_all_there_is() -> None:
    assert context.call_timeout_s(7.5) == 7.5
    assert context.call_timeout_s(None) is None
    with context.bind(serving(None)):
        assert context.call_timeout_s(7.5) == 7.5


def test_the_request_deadline_caps_the_ceiling() -> None:
    with context.bind(serving(2.0)):
        assert 1.0 < context.call_timeout_s(30.0) <= 2.0
        assert context.call_timeout_s(0.5) == 0.5
        left = context.call_timeout_s(None)
        assert left is not None and 1.0 < left <= 2.0


def test_a_passed_deadline_starts_no_call() -> None:
    with context.bind(serving(-1.0)), pytest.raises(DeadlineExceeded) as info:
        context.call_timeout_s(30.0)
    assert info.value.reason == "DEADLINE_PASSED"
