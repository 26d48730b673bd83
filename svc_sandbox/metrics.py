"""Prometheus metrics of svc_sandbox, beside the RPC metrics of mesh.metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from svc_sandbox.domain import ExecutionResult

EXECUTIONS = Counter(
    "ragmesh_sandbox_executions_total",
    "Executions ended, by why they stopped (COMPLETED, TIMEOUT, MEMORY_LIMIT, OUTPUT_LIMIT, KILLED).",
    ("stop_reason",),
)
EXECUTION_SECONDS = Histogram(
    "ragmesh_sandbox_execution_duration_seconds",
    "Wall-clock time of each execution, by why it stopped.",
    ("stop_reason",),
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def observe(result: ExecutionResult) -> None:
    """Counts one ended execution."""
    reason = result.stop_reason.value
    EXECUTIONS.labels(reason).inc()
    EXECUTION_SECONDS.labels(reason).observe(result.wall_ms / 1000)
