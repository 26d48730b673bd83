"""Channels from the factory pass identity, request id and the remaining deadline downstream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from mesh import context
from mesh.channels import open_channel
from mesh.server import ServerConfig, ServiceBinding, start_server
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc


class EchoContextSandboxServicer(pb_grpc.SandboxServiceServicer):
    """A fake that answers with the caller context it saw."""

    async def Execute(self, request: pb.ExecuteRequest, ctx: Any) -> pb.ExecuteResponse:
        current = context.current()
        assert current is not None
        return pb.ExecuteResponse(
            result=pb.ExecutionResult(
                stdout=context.tenant(), stderr=current.request_id, wall_ms=int((context.remaining_s() or 0) * 1000)
            )
        )

    async def StreamExecute(
        self, request: pb.StreamExecuteRequest, ctx: Any
    ) -> AsyncIterator[pb.StreamExecuteResponse]:
        yield pb.StreamExecuteResponse(
            result=pb.ExecutionResult(stdout=context.tenant(), wall_ms=int((context.remaining_s() or 0) * 1000))
        )


@pytest.fixture
async def target() -> AsyncIterator[str]:
    binding = ServiceBinding(
        "ragmesh.sandbox.v1.SandboxService", pb_grpc.add_SandboxServiceServicer_to_server, EchoContextSandboxServicer()
    )
    server = await start_server([binding], ServerConfig(port=0))
    yield f"127.0.0.1:{server.port}"
    await server.stop(None)


async def test_identity_request_id_and_deadline_flow_downstream(target: str) -> None:
    upstream = context.RequestContext(
        method="/x/Y", request_id="req-123", identity=context.Identity("acme"), deadline_monotonic=time.monotonic() + 10
    )
    async with open_channel(target, ["ragmesh.sandbox.v1.SandboxService"], tracing=False) as channel:
        stub = pb_grpc.SandboxServiceStub(channel)
        with context.bind(upstream):
            unary = await stub.Execute(pb.ExecuteRequest(code="x"), timeout=60)
            streamed = [m async for m in stub.StreamExecute(pb.StreamExecuteRequest(code="x"))]
    assert unary.result.stdout == "acme"
    assert unary.result.stderr == "req-123"
    # A small allowance for how the deadline is encoded on the wire and read back on a loaded machine.
    assert 0 < unary.result.wall_ms <= 10_500, "the 60 s timeout must be capped at the 10 s left upstream"
    assert streamed[0].result.stdout == "acme"
    assert 0 < streamed[0].result.wall_ms <= 10_500


async def test_expired_upstream_deadline_fails_fast(target: str) -> None:
    upstream = context.RequestContext("/x/Y", "r", context.Identity("acme"), time.monotonic() - 1)
    async with open_channel(target, tracing=False) as channel:
        with context.bind(upstream), pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.SandboxServiceStub(channel).Execute(pb.ExecuteRequest(code="x"))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
