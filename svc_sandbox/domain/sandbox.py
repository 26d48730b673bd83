"""The sandbox's entry point: validate, admit, run in isolation, classify, stream.

``Sandbox`` is what the gRPC servicer calls::

    sandbox = await Sandbox.start(Config.from_env().settings)   # at server startup
    result = await sandbox.execute(request, tenant=tenant)        # Execute
    async for event in sandbox.stream_execute(request, tenant=tenant):  # StreamExecute
        ...  # OutputChunk..., then one ExecutionResult

Errors are domain errors from ``mesh.errors``: InvalidArgument for a bad request,
ResourceExhausted when fair-use limits say no, FailedPrecondition at startup when the
sandbox cannot work. What the code itself does (crash, time out, blow its memory) is
never an error: it is an ExecutionResult with a StopReason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from mesh.errors import FailedPrecondition, FieldViolation, InvalidArgument
from svc_sandbox.domain.admission import Admission, AdmissionStats
from svc_sandbox.domain.classify import classify
from svc_sandbox.domain.isolation import (
    SANDBOX_UID,
    SELF_TEST_FAILED,
    Isolation,
    IsolationMode,
    decide_isolation,
)
from svc_sandbox.domain.model import (
    EffectiveLimits,
    ExecutionEvent,
    ExecutionRequest,
    ExecutionResult,
    OutputChunk,
    StopReason,
)
from svc_sandbox.domain.process import OutputSink, SandboxRun
from svc_sandbox.domain.validation import VALIDATION_FAILED, resolve

if TYPE_CHECKING:
    from svc_sandbox.domain.settings import SandboxSettings


class Runner(Protocol):
    """Runs one validated request to its end; the seam where unit tests put a fake."""

    async def run(
        self, request: ExecutionRequest, limits: EffectiveLimits, on_output: OutputSink | None
    ) -> ExecutionResult:
        """Run ``request`` under ``limits``, passing output to ``on_output`` as it comes."""
        ...


class ProcessRunner:
    """The real runner: one isolated process tree per execution (see ``process.py``)."""

    def __init__(self, isolation: Isolation, *, work_dir_bytes: int, scratch_dir_bytes: int) -> None:
        """Run under ``isolation`` with private tmpfs mounts of the given sizes."""
        self._isolation = isolation
        self._work_dir_bytes = work_dir_bytes
        self._scratch_dir_bytes = scratch_dir_bytes

    async def run(
        self, request: ExecutionRequest, limits: EffectiveLimits, on_output: OutputSink | None
    ) -> ExecutionResult:
        """Run to the end; on cancellation the process tree is killed and reaped before returning."""
        run = SandboxRun.start(
            self._isolation,
            request,
            limits,
            work_dir_bytes=self._work_dir_bytes,
            scratch_dir_bytes=self._scratch_dir_bytes,
            on_output=on_output,
        )
        try:
            outcome = await run.wait()
        finally:
            run.close()
        return classify(outcome, limits)


class Sandbox:
    """Isolated execution of untrusted Python with per-tenant fair use."""

    def __init__(
        self,
        config: SandboxSettings,
        isolation: Isolation,
        *,
        runner: Runner | None = None,
        admission: Admission | None = None,
    ) -> None:
        """Assemble from parts; services use ``Sandbox.start``, tests may pass fakes."""
        self._config = config
        self._isolation = isolation
        self._runner: Runner = runner or ProcessRunner(
            isolation, work_dir_bytes=config.work_dir_bytes, scratch_dir_bytes=config.scratch_dir_bytes
        )
        self._admission = admission or Admission(
            max_running=config.effective_concurrency,
            max_queued=config.max_queued_executions,
            max_per_tenant=config.max_executions_per_tenant,
            queue_timeout_s=config.queue_timeout_s,
        )

    @classmethod
    async def start(cls, config: SandboxSettings, *, self_test: bool = True) -> Sandbox:
        """Decide the isolation, prove it works with one trivial execution, and return the sandbox.

        Raises FailedPrecondition when bwrap is missing (naming the apt package
        ``bubblewrap``) and insecure mode is off, when the interpreter is missing, or
        when the self-test fails (for example user namespaces disabled by the kernel).
        """
        sandbox = cls(config, decide_isolation(config))
        if self_test:
            await sandbox._self_test()
        return sandbox

    @property
    def isolation(self) -> Isolation:
        """The isolation chosen at startup."""
        return self._isolation

    def admission_stats(self) -> AdmissionStats:
        """Running and queued executions, overall and per tenant."""
        return self._admission.stats()

    async def _self_test(self) -> None:
        request = ExecutionRequest(code="import os\nprint(os.getuid())\n")
        limits = resolve(request, self._config)
        result = await self._runner.run(request, limits, None)
        expected = str(SANDBOX_UID) if self._isolation.mode is IsolationMode.BUBBLEWRAP else None
        got = result.stdout.decode("utf-8", "replace").strip()
        if result.stop_reason is not StopReason.COMPLETED or result.exit_code != 0 or expected not in (None, got):
            stderr = result.stderr.decode("utf-8", "replace").strip()[-500:]
            raise FailedPrecondition(
                f"sandbox self-test failed ({result.stop_reason.value}: {result.detail}); stderr: {stderr!r}",
                reason=SELF_TEST_FAILED,
                metadata={"isolation": self._isolation.mode.value},
            )

    def _check(self, request: ExecutionRequest, tenant: str) -> EffectiveLimits:
        if not tenant:
            violation = FieldViolation("tenant", "must not be empty")
            raise InvalidArgument("tenant must not be empty", reason=VALIDATION_FAILED, violations=[violation])
        return resolve(request, self._config)

    async def execute(self, request: ExecutionRequest, *, tenant: str) -> ExecutionResult:
        """Run ``request`` for ``tenant`` and return its result once it has ended.

        Raises InvalidArgument (bad request, limits over the configured maxima) and
        ResourceExhausted (TENANT_CONCURRENCY_LIMIT, SANDBOX_QUEUE_FULL,
        SANDBOX_QUEUE_TIMEOUT). Cancelling the call kills the execution.
        """
        limits = self._check(request, tenant)
        async with self._admission.slot(tenant):
            return await self._runner.run(request, limits, None)

    async def stream_execute(self, request: ExecutionRequest, *, tenant: str) -> AsyncIterator[ExecutionEvent]:
        """Run ``request`` and yield its output as it is produced, then the result, last.

        Output chunks stay within the output cap; the final ExecutionResult still holds
        the whole captured stdout and stderr. Errors are those of ``execute`` and are
        raised on the first iteration. Closing the iterator early kills the execution.
        """
        limits = self._check(request, tenant)
        async with self._admission.slot(tenant):
            chunks: asyncio.Queue[OutputChunk | None] = asyncio.Queue()
            task = asyncio.create_task(self._runner.run(request, limits, chunks.put_nowait))
            task.add_done_callback(lambda _: chunks.put_nowait(None))
            try:
                while (chunk := await chunks.get()) is not None:
                    yield chunk
                result = await task
            finally:
                if not task.done():
                    task.cancel()
                    # The runner kills and reaps synchronously when cancelled, so this is
                    # one loop turn; asyncio.wait lets our own cancellation through.
                    await asyncio.wait([task])
                    if not task.cancelled():
                        task.exception()
        # The slot is free before the caller sees the result.
        yield result
