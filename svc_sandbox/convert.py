"""Every proto <-> domain mapping of svc_sandbox, and nothing else."""

from __future__ import annotations

from collections.abc import Sequence

from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from svc_sandbox.domain import (
    ExecutionRequest,
    ExecutionResult,
    OutputChunk,
    OutputStream,
    ResourceLimits,
    StopReason,
)

_STOP_REASONS = {
    StopReason.COMPLETED: pb.STOP_REASON_COMPLETED,
    StopReason.TIMEOUT: pb.STOP_REASON_TIMEOUT,
    StopReason.MEMORY_LIMIT: pb.STOP_REASON_MEMORY_LIMIT,
    StopReason.OUTPUT_LIMIT: pb.STOP_REASON_OUTPUT_LIMIT,
    StopReason.KILLED: pb.STOP_REASON_KILLED,
    StopReason.ERROR: pb.STOP_REASON_ERROR,
}
_STREAMS = {OutputStream.STDOUT: pb.OUTPUT_STREAM_STDOUT, OutputStream.STDERR: pb.OUTPUT_STREAM_STDERR}


def _zero_to_none(value: int) -> int | None:
    return value or None


def request_from_proto(
    code: str, stdin: bytes, files: Sequence[pb.InputFile], limits: pb.ExecutionLimits
) -> ExecutionRequest:
    """Both request messages carry the same fields; 0 in a limit means the default."""
    return ExecutionRequest(
        code=code,
        stdin=stdin,
        files={f.name: f.content for f in files},
        limits=ResourceLimits(
            wall_timeout_ms=_zero_to_none(limits.wall_timeout_ms),
            cpu_time_ms=_zero_to_none(limits.cpu_time_ms),
            memory_bytes=_zero_to_none(limits.memory_bytes),
            output_bytes=_zero_to_none(limits.output_bytes),
        ),
    )


def result_to_proto(result: ExecutionResult) -> pb.ExecutionResult:
    return pb.ExecutionResult(
        exit_code=result.exit_code,
        signal=result.signal,
        stdout=result.stdout.decode("utf-8", errors="replace"),
        stderr=result.stderr.decode("utf-8", errors="replace"),
        stdout_truncated=result.stdout_truncated,
        stderr_truncated=result.stderr_truncated,
        stop_reason=_STOP_REASONS[result.stop_reason],
        wall_ms=result.wall_ms,
        cpu_ms=result.cpu_ms,
        peak_memory_bytes=result.peak_memory_bytes,
        detail=result.detail,
    )


def chunk_to_proto(chunk: OutputChunk) -> pb.OutputChunk:
    return pb.OutputChunk(stream=_STREAMS[chunk.stream], data=chunk.data)
