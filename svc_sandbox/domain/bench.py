"""Cost of isolation: an empty execution through the sandbox against a bare ``python3 -c pass``.

For ``ragmesh bench sandbox``: the caller prints and stores the figures; nothing here
prints. Both paths run in the same process, alternating in rounds so that drift (other
load on the machine, CPU frequency) affects both alike.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import TYPE_CHECKING, Any

from svc_sandbox.domain.model import ExecutionRequest, StopReason
from svc_sandbox.domain.sandbox import Sandbox

if TYPE_CHECKING:
    from svc_sandbox.domain.settings import SandboxSettings

_TENANT = "bench"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _sandbox_once(sandbox: Sandbox, request: ExecutionRequest) -> float:
    start = time.perf_counter()
    result = await sandbox.execute(request, tenant=_TENANT)
    elapsed = (time.perf_counter() - start) * 1000
    if result.stop_reason is not StopReason.COMPLETED or result.exit_code != 0:
        raise RuntimeError(f"empty execution failed: {result.stop_reason.value} {result.detail}")
    return elapsed


async def _baseline_once(python: str) -> float:
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(python, "-c", "pass")
    if await proc.wait() != 0:
        raise RuntimeError(f"{python} -c pass failed")
    return (time.perf_counter() - start) * 1000


def _summary(prefix: str, values: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_p50_ms": round(percentile(values, 50), 2),
        f"{prefix}_p99_ms": round(percentile(values, 99), 2),
        f"{prefix}_mean_ms": round(statistics.fmean(values), 2),
        f"{prefix}_min_ms": round(min(values), 2),
    }


async def run_benchmark(config: SandboxSettings, *, iterations: int = 100, rounds: int = 5) -> dict[str, Any]:
    """Measure ``iterations`` empty executions and as many bare interpreter starts.

    Returns figures in milliseconds: ``sandbox_p50_ms``/``sandbox_p99_ms`` (an empty
    execution through ``Sandbox.execute``: validation, admission, bwrap, init, reaping),
    ``baseline_p50_ms``/``baseline_p99_ms`` (``python3 -c pass`` as a plain subprocess),
    ``overhead_p50_ms``, plus the isolation mode; the machine is the bench runner's to
    record (``tests/bench/machine.py``). Raises FailedPrecondition like ``Sandbox.start``
    when the sandbox cannot run.
    """
    if iterations < 1 or rounds < 1:
        raise ValueError("iterations and rounds must be positive")
    sandbox = await Sandbox.start(config)
    python = str(config.python_path)
    request = ExecutionRequest(code="pass\n")
    # Warm the page cache and the loop's code paths for both before measuring.
    await _sandbox_once(sandbox, request)
    await _baseline_once(python)
    per_round = max(1, iterations // rounds)
    sandbox_ms: list[float] = []
    baseline_ms: list[float] = []
    for _ in range(rounds):
        for _ in range(per_round):
            sandbox_ms.append(await _sandbox_once(sandbox, request))
        for _ in range(per_round):
            baseline_ms.append(await _baseline_once(python))
    figures: dict[str, Any] = {
        "isolation": sandbox.isolation.mode.value,
        "iterations": len(sandbox_ms),
        "python": python,
    }
    figures.update(_summary("sandbox", sandbox_ms))
    figures.update(_summary("baseline", baseline_ms))
    figures["overhead_p50_ms"] = round(figures["sandbox_p50_ms"] - figures["baseline_p50_ms"], 2)
    return figures
