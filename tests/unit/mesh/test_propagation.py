"""Channels from the factory, async and blocking, pass identity (with its credential), request id and deadline on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from mesh import context
from mesh.channels import open_blocking_channel, open_channel
from mesh.server import ServerConfig, ServiceBinding, start_server
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from tests.support import auth as test_auth


class EchoContextSandboxServicer(pb_grpc.SandboxServiceServicer):
    """A fake that answers with the caller context it saw."""

    async def Execute(self, request: pb.ExecuteRequest, ctx: Any) -> pb.ExecuteResponse:
        current = context.current()
        assert current is not None
        who = context.identity()
        return pb.ExecuteResponse(
            result=pb.ExecutionResult(
                stdout=f"{who.tenant}|{who.subject}|{who.service}",
                stderr=current.request_id,
                wall_ms=int((context.remaining_s() or 0) * 1000),
            )
        )

    async def StreamExecute(
        self, request: pb.StreamExecuteRequest, ctx: Any
    ) -> AsyncIterator[pb.StreamExecuteResponse]:
        who = context.identity()
        yield pb.StreamExecuteResponse(
            result=pb.ExecutionResult(
                stdout=f"{who.tenant}|{who.subject}|{who.service}", wall_ms=int((context.remaining_s() or 0) * 1000)
            )
        )


@pytest.fixture
async def target() -> AsyncIterator[str]:
    binding = ServiceBinding(
        "ragmesh.sandbox.v1.SandboxService", pb_grpc.add_SandboxServiceServicer_to_server, EchoContextSandboxServicer()
    )
    server = await start_server([binding], ServerConfig(port=0), auth=test_auth.auth_settings())
    yield f"127.0.0.1:{server.port}"
    await server.stop(None)


def _person(tenant: str, subject: str) -> context.Identity:
    token = test_auth.token(tenant, subject, ("reader",))
    return context.Identity(tenant, subject, frozenset({"reader"}), token=token)


async def test_identity_request_id_and_deadline_flow_downstream(target: str) -> None:
    upstream = context.RequestContext(
        method="/x/Y",
        request_id="req-123",
        identity=_person("acme", "ann"),
        deadline_monotonic=time.monotonic() + 10,
    )
    async with open_channel(target, ["ragmesh.sandbox.v1.SandboxService"], tracing=False) as channel:
        stub = pb_grpc.SandboxServiceStub(channel)
        with context.bind(upstream):
            unary = await stub.Execute(pb.ExecuteRequest(code="x"), timeout=60)
            streamed = [m async for m in stub.StreamExecute(pb.StreamExecuteRequest(code="x"))]
    # The person's own token travelled: the callee acts as ann, not as a service.
    assert unary.result.stdout == "acme|ann|"
    assert unary.result.stderr == "req-123"
    # A small allowance for how the deadline is encoded on the wire and read back on a loaded machine.
    assert 0 < unary.result.wall_ms <= 10_500, "the 60 s timeout must be capped at the 10 s left upstream"
    assert streamed[0].result.stdout == "acme|ann|"
    assert 0 < streamed[0].result.wall_ms <= 10_500


async def test_expired_upstream_deadline_fails_fast(target: str) -> None:
    upstream = context.RequestContext("/x/Y", "r", _person("acme", "ann"), time.monotonic() - 1)
    async with open_channel(target, tracing=False) as channel:
        with context.bind(upstream), pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.SandboxServiceStub(channel).Execute(pb.ExecuteRequest(code="x"))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_background_work_acts_for_its_tenant_with_the_service_token(target: str) -> None:
    test_auth.use_service_token()
    upstream = context.RequestContext("/x/Y", "r", context.Identity("acme", "svc_ingest"), None)
    async with open_channel(target, tracing=False) as channel:
        with context.bind(upstream):
            reply = await pb_grpc.SandboxServiceStub(channel).Execute(pb.ExecuteRequest(code="x"), timeout=10)
    assert reply.result.stdout == "acme|svc_ingest|test-service"


async def test_no_credential_at_hand_is_refused_downstream(target: str) -> None:
    from mesh import auth

    auth.set_service_token_file(None)
    upstream = context.RequestContext("/x/Y", "r", context.Identity("acme"), None)
    async with open_channel(target, tracing=False) as channel:
        with context.bind(upstream), pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.SandboxServiceStub(channel).Execute(pb.ExecuteRequest(code="x"), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _blocking_execute(target: str, upstream: context.RequestContext | None, **kwargs: Any) -> pb.ExecuteResponse:
    """One Execute over the blocking channel, in a worker thread (the server runs on this test's loop)."""
    channel = open_blocking_channel(target, ["ragmesh.sandbox.v1.SandboxService"], tracing=False)
    try:
        stub = pb_grpc.SandboxServiceStub(channel)
        if upstream is None:
            reply: pb.ExecuteResponse = stub.Execute(pb.ExecuteRequest(code="x"), **kwargs)
            return reply
        with context.bind(upstream):
            reply = stub.Execute(pb.ExecuteRequest(code="x"), **kwargs)
            return reply
    finally:
        channel.close()


async def test_the_blocking_channel_propagates_like_the_async_one(target: str) -> None:
    upstream = context.RequestContext("/x/Y", "req-9", _person("acme", "ann"), time.monotonic() + 10)
    reply = await asyncio.to_thread(_blocking_execute, target, upstream, timeout=60)
    assert reply.result.stdout == "acme|ann|"
    assert reply.result.stderr == "req-9"
    assert 0 < reply.result.wall_ms <= 10_500, "the 60 s timeout must be capped at the 10 s left upstream"


async def test_the_blocking_channel_fails_fast_past_the_deadline(target: str) -> None:
    upstream = context.RequestContext("/x/Y", "r", _person("acme", "ann"), time.monotonic() - 1)
    with pytest.raises(grpc.RpcError) as info:
        await asyncio.to_thread(_blocking_execute, target, upstream, timeout=10)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]


async def test_a_worker_without_a_request_sends_the_tenant_and_credential_it_was_given(target: str) -> None:
    # Ingest's Ray workers: no request context, the job's tenant and svc_ingest's service token set explicitly.
    reply = await asyncio.to_thread(_blocking_execute, target, None, timeout=10, metadata=test_auth.as_service("acme"))
    tenant, _, service = reply.result.stdout.split("|")
    assert (tenant, service) == ("acme", "test-service")
