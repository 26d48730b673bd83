"""SandboxService over gRPC: run Python the user supplied, under the sandbox's default limits."""

from __future__ import annotations

import grpc

from mesh.downstream import downstream_error
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from svc_agent.domain.ports import CodeResult

SERVICE = "ragmesh.sandbox.v1.SandboxService"

_STOP_REASONS = {
    pb.STOP_REASON_COMPLETED: "completed",
    pb.STOP_REASON_TIMEOUT: "timeout",
    pb.STOP_REASON_MEMORY_LIMIT: "memory limit",
    pb.STOP_REASON_OUTPUT_LIMIT: "output limit",
    pb.STOP_REASON_KILLED: "killed",
    pb.STOP_REASON_ERROR: "sandbox error",
}


class SandboxClient:
    """CodeRunner over SandboxService.Execute."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.SandboxServiceStub(channel)

    async def run_python(self, code: str) -> CodeResult:
        """Runs ``code`` to completion; the sandbox's own limits bound it."""
        try:
            response = await self._stub.Execute(pb.ExecuteRequest(code=code))
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "running the code in the sandbox") from exc
        result = response.result
        return CodeResult(
            stdout=result.stdout,
            stderr=result.stderr,
            exit_code=result.exit_code,
            stop_reason=_STOP_REASONS.get(result.stop_reason, "unknown"),
            detail=result.detail,
        )
