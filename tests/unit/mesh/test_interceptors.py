"""The mesh interceptor on a real in-process grpc.aio server (loopback, port 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2

from mesh import context, status
from mesh.errors import FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from mesh.server import MeshServer, ServerConfig, ServiceBinding, start_server
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from tests.support.auth import auth_settings, bearer

TENANT = bearer("acme")


class RecordingSandboxServicer(pb_grpc.SandboxServiceServicer):  # type: ignore[misc]
    """A fake servicer that records what reached it and raises on request."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.seen_tenants: list[str] = []
        self.seen_remaining: list[float | None] = []

    async def Execute(self, request: pb.ExecuteRequest, ctx: grpc.aio.ServicerContext) -> pb.ExecuteResponse:
        self.calls.append(request.code)
        self.seen_tenants.append(context.tenant())
        self.seen_remaining.append(context.remaining_s())
        if request.code == "missing":
            raise NotFound("no such thing", reason="THING_NOT_FOUND", metadata={"thing": "x"})
        if request.code == "busy":
            raise ResourceExhausted("too many", reason="TENANT_CONCURRENCY_LIMIT")
        if request.code == "bad":
            raise InvalidArgument("bad limit", violations=[FieldViolation("limits.wall_timeout_ms", "too big")])
        if request.code == "bug":
            raise RuntimeError("boom")
        return pb.ExecuteResponse(result=pb.ExecutionResult(stdout=request.code))

    async def StreamExecute(
        self, request: pb.StreamExecuteRequest, ctx: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamExecuteResponse]:
        self.calls.append(request.code)
        yield pb.StreamExecuteResponse(output=pb.OutputChunk(stream=pb.OUTPUT_STREAM_STDOUT, data=b"a"))
        if request.code == "fail-midway":
            raise ResourceExhausted("stopped", reason="OUTPUT_BUDGET")
        yield pb.StreamExecuteResponse(result=pb.ExecutionResult(stdout="done"))


@pytest.fixture
async def served() -> AsyncIterator[tuple[RecordingSandboxServicer, pb_grpc.SandboxServiceStub, MeshServer]]:
    servicer = RecordingSandboxServicer()
    binding = ServiceBinding(
        full_name="ragmesh.sandbox.v1.SandboxService",
        add_to_server=pb_grpc.add_SandboxServiceServicer_to_server,
        servicer=servicer,
    )
    server = await start_server([binding], ServerConfig(port=0), auth=auth_settings())
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    yield servicer, pb_grpc.SandboxServiceStub(channel), server
    await channel.close()
    await server.stop(None)


def _status(err: grpc.aio.AioRpcError):  # type: ignore[no-untyped-def]
    decoded = status.status_from_metadata(err.trailing_metadata())
    assert decoded is not None, "rich status details missing"
    return decoded


async def test_validation_failure_never_reaches_handler(served) -> None:  # type: ignore[no-untyped-def]
    servicer, stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Execute(pb.ExecuteRequest(code="", files=[pb.InputFile(name="../etc")]), metadata=TENANT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    decoded = _status(info.value)
    assert decoded.code == code_pb2.INVALID_ARGUMENT
    bad = status.bad_request(decoded)
    assert bad is not None
    assert {v.field for v in bad.field_violations} == {"code", "files[0].name"}
    info_detail = status.error_info(decoded)
    assert info_detail is not None and info_detail.reason == "VALIDATION_FAILED"
    assert servicer.calls == []


async def test_streaming_request_is_validated_too(served) -> None:  # type: ignore[no-untyped-def]
    servicer, stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.StreamExecute(pb.StreamExecuteRequest(code="x" * 70000), metadata=TENANT):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert servicer.calls == []


async def test_unknown_rpc_is_unimplemented(served) -> None:  # type: ignore[no-untyped-def]
    servicer, _, server = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary("/ragmesh.sandbox.v1.SandboxService/Nope")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(b"")
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert servicer.calls == []


@pytest.mark.parametrize(
    ("code", "expected", "reason"),
    [
        ("missing", grpc.StatusCode.NOT_FOUND, "THING_NOT_FOUND"),
        ("busy", grpc.StatusCode.RESOURCE_EXHAUSTED, "TENANT_CONCURRENCY_LIMIT"),
        ("bad", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        ("bug", grpc.StatusCode.INTERNAL, "INTERNAL"),
    ],
)
async def test_domain_errors_map_to_status(served, code: str, expected: grpc.StatusCode, reason: str) -> None:  # type: ignore[no-untyped-def]
    _, stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Execute(pb.ExecuteRequest(code=code), metadata=TENANT)
    assert info.value.code() == expected
    detail = status.error_info(_status(info.value))
    assert detail is not None and detail.reason == reason
    if code == "bug":
        assert "boom" not in (info.value.details() or ""), "internal details must not leak"


async def test_error_after_stream_started_keeps_code(served) -> None:  # type: ignore[no-untyped-def]
    _, stub, _ = served
    got = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for msg in stub.StreamExecute(pb.StreamExecuteRequest(code="fail-midway"), metadata=TENANT):
            got.append(msg)
    assert len(got) == 1
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_identity_and_deadline_reach_the_handler(served) -> None:  # type: ignore[no-untyped-def]
    servicer, stub, _ = served
    response = await stub.Execute(pb.ExecuteRequest(code="hi"), metadata=TENANT, timeout=7)
    assert response.result.stdout == "hi"
    assert servicer.seen_tenants == ["acme"]
    remaining = servicer.seen_remaining[0]
    assert remaining is not None and 0 < remaining <= 7.5


async def test_missing_identity_is_unauthenticated(served) -> None:  # type: ignore[no-untyped-def]
    _, stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Execute(pb.ExecuteRequest(code="hi"))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_identity_header_without_token_is_unauthenticated(served) -> None:  # type: ignore[no-untyped-def]
    servicer, stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Execute(pb.ExecuteRequest(code="hi"), metadata=((context.TENANT_HEADER, "acme"),))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in (info.value.details() or "")
    assert servicer.calls == []


async def test_forged_tenant_header_beside_a_token_is_refused(served) -> None:  # type: ignore[no-untyped-def]
    servicer, stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Execute(pb.ExecuteRequest(code="hi"), metadata=(*bearer("acme"), (context.TENANT_HEADER, "other")))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert servicer.calls == []
