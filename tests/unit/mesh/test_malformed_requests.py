"""Request bytes that are not the method's message, on a real in-process grpc.aio server.

grpc.aio decodes a request before any interceptor wrapper runs; the mesh
interceptor turns a decode failure into INVALID_ARGUMENT (reason
MALFORMED_REQUEST) for unary and streaming requests alike, after the token
check, and nothing of the decoder's exception reaches the caller.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2

from mesh import status
from mesh.server import MeshServer, ServerConfig, ServiceBinding, start_server
from ragmesh.ingest.v1 import ingest_service_pb2 as ingest_pb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from tests.support.auth import auth_settings, bearer

TENANT = bearer("acme")

# Bytes no protobuf decoder accepts, each for a different reason.
UNDECODABLE = {
    "invalid tag": b"\xff" * 64,
    "truncated length-delimited field": b"\x0a\x05ab",
    "invalid UTF-8 in a string field": b"\x0a\x02\xff\xfe",
    "unterminated varint": b"\x10" + b"\x80" * 11,
}
# What must never reach a caller: exception class names, tracebacks, source paths.
LEAK = re.compile(r"DecodeError|Traceback|Exception|Error parsing|<class |\.py\b|/site-packages/")


class FakeSandboxServicer(pb_grpc.SandboxServiceServicer):  # type: ignore[misc]
    """A fake sandbox that records the requests that reached it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def Execute(self, request: pb.ExecuteRequest, ctx: grpc.aio.ServicerContext) -> pb.ExecuteResponse:
        self.calls.append(request.code)
        return pb.ExecuteResponse(result=pb.ExecutionResult(stdout=request.code))

    async def StreamExecute(
        self, request: pb.StreamExecuteRequest, ctx: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamExecuteResponse]:
        self.calls.append(request.code)
        yield pb.StreamExecuteResponse(result=pb.ExecutionResult(stdout=request.code))


class FakeIngestServicer(ingest_grpc.IngestServiceServicer):  # type: ignore[misc]
    """A fake ingest service whose UploadDocuments records each file name it read."""

    def __init__(self) -> None:
        self.filenames: list[str] = []

    async def UploadDocuments(
        self, requests: AsyncIterator[ingest_pb.UploadDocumentsRequest], ctx: grpc.aio.ServicerContext
    ) -> ingest_pb.UploadDocumentsResponse:
        async for request in requests:
            self.filenames.append(request.filename)
        return ingest_pb.UploadDocumentsResponse()


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeSandboxServicer, FakeIngestServicer, MeshServer]]:
    sandbox, ingest = FakeSandboxServicer(), FakeIngestServicer()
    bindings = [
        ServiceBinding("ragmesh.sandbox.v1.SandboxService", pb_grpc.add_SandboxServiceServicer_to_server, sandbox),
        ServiceBinding("ragmesh.ingest.v1.IngestService", ingest_grpc.add_IngestServiceServicer_to_server, ingest),
    ]
    server = await start_server(bindings, ServerConfig(port=0), auth=auth_settings())
    yield sandbox, ingest, server
    await server.stop(None)


def _assert_malformed(err: grpc.aio.AioRpcError, message_type: str) -> None:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    details = err.details() or ""
    assert message_type in details
    assert not LEAK.search(details), details
    decoded = status.status_from_metadata(err.trailing_metadata())
    assert decoded is not None, "rich status details missing"
    assert decoded.code == code_pb2.INVALID_ARGUMENT
    assert not LEAK.search(decoded.message), decoded.message
    info = status.error_info(decoded)
    assert info is not None and info.reason == "MALFORMED_REQUEST"
    assert info.metadata["message_type"] == message_type


@pytest.mark.parametrize("raw", UNDECODABLE.values(), ids=list(UNDECODABLE))
async def test_unary_unary_undecodable_request_is_invalid_argument(served, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    sandbox, _, server = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary("/ragmesh.sandbox.v1.SandboxService/Execute")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(raw, metadata=TENANT, timeout=5)
    _assert_malformed(info.value, "ragmesh.sandbox.v1.ExecuteRequest")
    assert sandbox.calls == []


@pytest.mark.parametrize("raw", UNDECODABLE.values(), ids=list(UNDECODABLE))
async def test_unary_stream_undecodable_request_is_invalid_argument(served, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    sandbox, _, server = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_stream("/ragmesh.sandbox.v1.SandboxService/StreamExecute")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in call(raw, metadata=TENANT, timeout=5):
                pass
    _assert_malformed(info.value, "ragmesh.sandbox.v1.StreamExecuteRequest")
    assert sandbox.calls == []


async def test_stream_unary_undecodable_message_midstream_is_invalid_argument(served) -> None:  # type: ignore[no-untyped-def]
    _, ingest, server = served
    good = ingest_pb.UploadDocumentsRequest(filename="a.txt", data=b"hello").SerializeToString()

    async def requests() -> AsyncIterator[bytes]:
        yield good
        yield UNDECODABLE["invalid tag"]
        yield good

    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.stream_unary("/ragmesh.ingest.v1.IngestService/UploadDocuments")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(requests(), metadata=TENANT, timeout=5)
    _assert_malformed(info.value, "ragmesh.ingest.v1.UploadDocumentsRequest")
    # The handler read the good first message and nothing after the bad one.
    assert ingest.filenames == ["a.txt"]


async def test_undecodable_request_without_token_is_unauthenticated(served) -> None:  # type: ignore[no-untyped-def]
    # The token is checked first: an anonymous caller learns nothing about the decoding.
    sandbox, _, server = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary("/ragmesh.sandbox.v1.SandboxService/Execute")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(UNDECODABLE["invalid tag"], timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert sandbox.calls == []


async def test_decodable_requests_still_reach_the_handler(served) -> None:  # type: ignore[no-untyped-def]
    sandbox, _, server = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.SandboxServiceStub(channel)
        response = await stub.Execute(pb.ExecuteRequest(code="hi"), metadata=TENANT, timeout=5)
    assert response.result.stdout == "hi"
    assert sandbox.calls == ["hi"]
