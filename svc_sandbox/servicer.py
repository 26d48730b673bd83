"""gRPC servicer of svc_sandbox: isolated execution of untrusted Python."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from mesh import context
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc
from svc_sandbox import convert, metrics
from svc_sandbox.domain import ExecutionResult, Sandbox


class SandboxServiceServicer(sandbox_service_pb2_grpc.SandboxServiceServicer):
    """``ragmesh.sandbox.v1.SandboxService``: one thin method per RPC (proto -> domain -> proto)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    async def Execute(self, request: pb.ExecuteRequest, ctx: grpc.aio.ServicerContext[Any, Any]) -> pb.ExecuteResponse:
        domain_request = convert.request_from_proto(request.code, request.stdin, request.files, request.limits)
        result = await self._sandbox.execute(domain_request, tenant=context.tenant())
        metrics.observe(result)
        return pb.ExecuteResponse(result=convert.result_to_proto(result))

    async def StreamExecute(
        self, request: pb.StreamExecuteRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamExecuteResponse]:
        domain_request = convert.request_from_proto(request.code, request.stdin, request.files, request.limits)
        async for event in self._sandbox.stream_execute(domain_request, tenant=context.tenant()):
            if isinstance(event, ExecutionResult):
                metrics.observe(event)
                yield pb.StreamExecuteResponse(result=convert.result_to_proto(event))
            else:
                yield pb.StreamExecuteResponse(output=convert.chunk_to_proto(event))
