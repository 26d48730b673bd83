"""Sandbox facade with a fake runner: validation, admission, streaming, self-test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from mesh.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from svc_sandbox.domain import (
    SELF_TEST_FAILED,
    TENANT_CONCURRENCY_LIMIT,
    EffectiveLimits,
    ExecutionRequest,
    ExecutionResult,
    Isolation,
    IsolationMode,
    OutputChunk,
    OutputStream,
    ResourceLimits,
    Sandbox,
    StopReason,
)
from svc_sandbox.domain.settings import SandboxSettings

ISOLATION = Isolation(IsolationMode.BUBBLEWRAP, "/usr/bin/python3", "/usr/bin/bwrap", 65534, 65534)


def result(stdout: bytes = b"", stop: StopReason = StopReason.COMPLETED) -> ExecutionResult:
    return ExecutionResult(stop, 0, 0, stdout, b"", False, False, 1, 1, 1)


class FakeRunner:
    """Emits the chunks it was given, optionally waits for a gate, then returns a result."""

    def __init__(self, chunks: list[OutputChunk] | None = None, gate: asyncio.Event | None = None) -> None:
        self.chunks = chunks or []
        self.gate = gate
        self.calls: list[tuple[ExecutionRequest, EffectiveLimits]] = []
        self.cancelled = 0
        self.result = result(b"".join(c.data for c in self.chunks))

    async def run(
        self, request: ExecutionRequest, limits: EffectiveLimits, on_output: Callable[[OutputChunk], None] | None
    ) -> ExecutionResult:
        self.calls.append((request, limits))
        try:
            for chunk in self.chunks:
                if on_output is not None:
                    on_output(chunk)
                await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return self.result


def sandbox(runner: FakeRunner, **config: int) -> Sandbox:
    return Sandbox(SandboxSettings(**config), ISOLATION, runner=runner)  # type: ignore[arg-type]


async def test_execute_passes_resolved_limits_to_the_runner() -> None:
    runner = FakeRunner()
    request = ExecutionRequest(code="print(1)", limits=ResourceLimits(wall_timeout_ms=1234))
    assert (await sandbox(runner).execute(request, tenant="t")) is runner.result
    assert runner.calls[0][1].wall_timeout_ms == 1234


async def test_invalid_requests_never_reach_the_runner() -> None:
    runner = FakeRunner()
    with pytest.raises(InvalidArgument):
        await sandbox(runner).execute(ExecutionRequest(code=""), tenant="t")
    with pytest.raises(InvalidArgument) as error:
        await sandbox(runner).execute(ExecutionRequest(code="x"), tenant="")
    assert [v.field for v in error.value.violations] == ["tenant"]
    assert runner.calls == []


async def test_tenant_limit_applies_to_execute() -> None:
    gate = asyncio.Event()
    runner = FakeRunner(gate=gate)
    box = sandbox(runner, max_executions_per_tenant=1, max_concurrent_executions=4)
    first = asyncio.create_task(box.execute(ExecutionRequest(code="x"), tenant="t"))
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted) as error:
        await box.execute(ExecutionRequest(code="x"), tenant="t")
    assert error.value.reason == TENANT_CONCURRENCY_LIMIT
    gate.set()
    await first
    assert box.admission_stats().running == 0


async def test_stream_yields_chunks_then_the_result_last() -> None:
    chunks = [OutputChunk(OutputStream.STDOUT, b"a"), OutputChunk(OutputStream.STDERR, b"b")]
    runner = FakeRunner(chunks)
    events = [e async for e in sandbox(runner).stream_execute(ExecutionRequest(code="x"), tenant="t")]
    assert events == [*chunks, runner.result]


async def test_stream_releases_the_slot_before_the_result() -> None:
    box = sandbox(FakeRunner())
    stream = box.stream_execute(ExecutionRequest(code="x"), tenant="t")
    event = await stream.__anext__()
    assert isinstance(event, ExecutionResult)
    assert box.admission_stats().running == 0


async def test_closing_a_stream_early_cancels_the_run_and_frees_the_slot() -> None:
    gate = asyncio.Event()
    runner = FakeRunner([OutputChunk(OutputStream.STDOUT, b"a")], gate=gate)
    box = sandbox(runner)
    stream = box.stream_execute(ExecutionRequest(code="x"), tenant="t")
    assert isinstance(await stream.__anext__(), OutputChunk)
    await stream.aclose()  # type: ignore[attr-defined]
    assert runner.cancelled == 1
    stats = box.admission_stats()
    assert (stats.running, stats.per_tenant) == (0, {})


async def test_stream_errors_come_on_first_iteration() -> None:
    stream = sandbox(FakeRunner()).stream_execute(ExecutionRequest(code=""), tenant="t")
    with pytest.raises(InvalidArgument):
        await stream.__anext__()


async def test_self_test_failure_refuses_to_start() -> None:
    runner = FakeRunner()
    runner.result = result(b"0\n")  # ran as uid 0: not the sandbox user
    box = sandbox(runner)
    with pytest.raises(FailedPrecondition) as error:
        await box._self_test()
    assert error.value.reason == SELF_TEST_FAILED


async def test_self_test_passes_when_the_code_runs_as_the_sandbox_user() -> None:
    runner = FakeRunner()
    runner.result = result(b"1000\n")
    await sandbox(runner)._self_test()
