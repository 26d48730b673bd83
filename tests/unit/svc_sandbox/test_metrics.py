"""svc_sandbox's metrics: executions by stop reason."""

from __future__ import annotations

from svc_sandbox import metrics
from svc_sandbox.domain import ExecutionResult, StopReason


def test_each_execution_is_counted_by_stop_reason_with_its_wall_time() -> None:
    runs = metrics.EXECUTIONS.labels("TIMEOUT")
    seconds = metrics.EXECUTION_SECONDS.labels("TIMEOUT")
    before, sum_before = runs._value.get(), seconds._sum.get()
    metrics.observe(ExecutionResult(StopReason.TIMEOUT, -1, 9, b"", b"", False, False, 2500, 1, 1))
    assert runs._value.get() == before + 1
    assert seconds._sum.get() == sum_before + 2.5
