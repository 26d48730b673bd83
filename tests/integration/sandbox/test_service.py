"""SandboxService over real gRPC (in-process server on port 0) with the real bubblewrap sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from mesh import status
from mesh.server import MeshServer, ServerConfig, ServiceBinding, start_server
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from svc_sandbox.domain import Sandbox
from svc_sandbox.domain.settings import SandboxSettings
from svc_sandbox.servicer import SandboxServiceServicer
from tests.support.auth import auth_settings, bearer

pytestmark = pytest.mark.integration


def _md(tenant: str = "acme") -> tuple[tuple[str, str], ...]:
    return bearer(tenant)


@pytest.fixture
async def stub() -> AsyncIterator[pb_grpc.SandboxServiceStub]:
    sandbox = await Sandbox.start(SandboxSettings(max_executions_per_tenant=1, max_concurrent_executions=2))
    binding = ServiceBinding(
        "ragmesh.sandbox.v1.SandboxService",
        pb_grpc.add_SandboxServiceServicer_to_server,
        SandboxServiceServicer(sandbox),
    )
    server: MeshServer = await start_server([binding], ServerConfig(port=0), auth=auth_settings())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield pb_grpc.SandboxServiceStub(channel)
    await server.stop(None)


async def test_execute_returns_output_and_usage(stub: pb_grpc.SandboxServiceStub) -> None:
    reply = await stub.Execute(
        pb.ExecuteRequest(code="import sys\nprint(sum(range(10)))\nprint('e', file=sys.stderr)\nraise SystemExit(3)"),
        metadata=_md(),
        timeout=30,
    )
    result = reply.result
    assert result.stdout == "45\n"
    assert result.stderr == "e\n"
    assert result.exit_code == 3
    assert result.stop_reason == pb.STOP_REASON_COMPLETED
    assert result.wall_ms > 0 and result.peak_memory_bytes > 0


async def test_stream_execute_streams_output_then_the_result(stub: pb_grpc.SandboxServiceStub) -> None:
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)\n"
    events = [e async for e in stub.StreamExecute(pb.StreamExecuteRequest(code=code), metadata=_md(), timeout=30)]
    outputs = [e.output.data for e in events if e.WhichOneof("event") == "output"]
    assert b"".join(outputs) == b"0\n1\n2\n"
    assert len(outputs) >= 2, "output should arrive as it is produced"
    assert events[-1].WhichOneof("event") == "result"
    assert events[-1].result.stop_reason == pb.STOP_REASON_COMPLETED


async def test_timeout_is_a_stop_reason_not_an_error(stub: pb_grpc.SandboxServiceStub) -> None:
    reply = await stub.Execute(
        pb.ExecuteRequest(code="while True: pass", limits=pb.ExecutionLimits(wall_timeout_ms=500, cpu_time_ms=400)),
        metadata=_md(),
        timeout=30,
    )
    assert reply.result.stop_reason == pb.STOP_REASON_TIMEOUT


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ExecuteRequest(code=""), "code"),
        (pb.ExecuteRequest(code="pass", files=[pb.InputFile(name="../x", content=b"")]), "files[0].name"),
        (
            pb.ExecuteRequest(code="pass", limits=pb.ExecutionLimits(wall_timeout_ms=3_600_000)),
            "limits.wall_timeout_ms",
        ),
        (pb.ExecuteRequest(code="pass", limits=pb.ExecutionLimits(memory_bytes=1 << 40)), "limits.memory_bytes"),
    ],
)
async def test_bad_input_is_invalid_argument(
    stub: pb_grpc.SandboxServiceStub, request_: pb.ExecuteRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Execute(request_, metadata=_md(), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    decoded = status.status_from_metadata(info.value.trailing_metadata())
    assert decoded is not None
    bad = status.bad_request(decoded)
    assert bad is not None and field in [v.field for v in bad.field_violations]


async def test_tenant_concurrency_limit_is_resource_exhausted(stub: pb_grpc.SandboxServiceStub) -> None:
    slow = pb.ExecuteRequest(code="import time; time.sleep(1.5)", limits=pb.ExecutionLimits(wall_timeout_ms=5000))
    first = asyncio.ensure_future(stub.Execute(slow, metadata=_md("busy"), timeout=30))
    await asyncio.sleep(0.5)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Execute(pb.ExecuteRequest(code="pass"), metadata=_md("busy"), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    other = await stub.Execute(pb.ExecuteRequest(code="print('ok')"), metadata=_md("other"), timeout=30)
    assert other.result.stdout == "ok\n"
    assert (await first).result.stop_reason == pb.STOP_REASON_COMPLETED
