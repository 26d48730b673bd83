"""The mesh's interceptors trace every call: CLIENT span at the caller, SERVER span at the callee, one trace.

A real grpc.aio server (``start_server``) and a real channel (``open_channel``)
in this process; the spans go to the OpenTelemetry SDK's in-memory exporter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mesh import context, telemetry
from mesh.channels import open_blocking_channel, open_channel
from mesh.errors import NotFound
from mesh.server import ServerConfig, ServiceBinding, start_server
from ragmesh.sandbox.v1 import sandbox_service_pb2 as pb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from tests.support import auth as test_auth

_SERVICE = "ragmesh.sandbox.v1.SandboxService"


class ScriptedSandboxServicer(pb_grpc.SandboxServiceServicer):
    """A fake whose answer is chosen by the code it is sent; it notes the trace it ran in."""

    def __init__(self) -> None:
        self.trace_ids: list[int] = []
        self.request_ids: list[str | None] = []

    async def Execute(self, request: pb.ExecuteRequest, ctx: Any) -> pb.ExecuteResponse:
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        self.request_ids.append(context.request_id())
        if request.code == "missing":
            raise NotFound("no such thing", reason="TEST_NOT_FOUND")
        if request.code == "bug":
            raise RuntimeError("a bug in the handler")
        return pb.ExecuteResponse(result=pb.ExecutionResult(stdout="ok"))

    async def StreamExecute(
        self, request: pb.StreamExecuteRequest, ctx: Any
    ) -> AsyncIterator[pb.StreamExecuteResponse]:
        for text in ("a", "b"):
            yield pb.StreamExecuteResponse(result=pb.ExecutionResult(stdout=text))


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "another test installed a non-SDK tracer provider"
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()


@pytest.fixture
async def stub(exporter: InMemorySpanExporter) -> AsyncIterator[tuple[pb_grpc.SandboxServiceStub, Any]]:
    servicer = ScriptedSandboxServicer()
    server = await start_server(
        [ServiceBinding(_SERVICE, pb_grpc.add_SandboxServiceServicer_to_server, servicer)],
        ServerConfig(port=0),
        auth=test_auth.auth_settings(),
    )
    exporter.clear()
    async with open_channel(f"127.0.0.1:{server.port}", [_SERVICE]) as channel:
        yield pb_grpc.SandboxServiceStub(channel), servicer
    await server.stop(None)


def _by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.kind is kind]
    assert len(found) == 1, f"expected one {kind} span, got {[(s.name, s.kind) for s in spans]}"
    return found[0]


async def _settled(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ...]:
    """The finished spans once the server's has ended: the client may see the status a moment before."""
    for _ in range(200):
        spans = exporter.get_finished_spans()
        if any(s.kind is SpanKind.SERVER for s in spans) and any(s.kind is SpanKind.CLIENT for s in spans):
            return spans
        await asyncio.sleep(0.01)
    return exporter.get_finished_spans()


_IDENTITY = context.RequestContext(
    "/test/Caller", "req-1", context.Identity("acme", "ann", token=test_auth.token("acme", "ann")), None
)


async def test_a_call_is_one_trace_from_caller_through_server(stub: Any, exporter: InMemorySpanExporter) -> None:
    client, servicer = stub
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("caller") as outer, context.bind(_IDENTITY):
        await client.Execute(pb.ExecuteRequest(code="x"))
    spans = await _settled(exporter)
    client_span = _by_kind(spans, SpanKind.CLIENT)
    server_span = _by_kind(spans, SpanKind.SERVER)
    trace_id = outer.get_span_context().trace_id
    assert client_span.context.trace_id == server_span.context.trace_id == trace_id
    assert client_span.parent is not None and client_span.parent.span_id == outer.get_span_context().span_id
    assert server_span.parent is not None and server_span.parent.span_id == client_span.context.span_id
    assert server_span.name == client_span.name == f"/{_SERVICE}/Execute"
    for span in (client_span, server_span):
        assert span.attributes is not None
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.service"] == _SERVICE
        assert span.attributes["rpc.method"] == "Execute"
        assert span.attributes["rpc.grpc.status_code"] == 0
        assert span.status.status_code is StatusCode.UNSET
    # The handler ran inside the server span, so its logs carry this trace id, as their request id too.
    assert servicer.trace_ids == [trace_id]
    assert servicer.request_ids == [format(trace_id, "032x")]


async def test_a_callers_mistake_is_recorded_but_is_no_server_error(stub: Any, exporter: InMemorySpanExporter) -> None:
    client, _ = stub
    with context.bind(_IDENTITY), pytest.raises(grpc.aio.AioRpcError):
        await client.Execute(pb.ExecuteRequest(code="missing"))
    spans = await _settled(exporter)
    server_span = _by_kind(spans, SpanKind.SERVER)
    client_span = _by_kind(spans, SpanKind.CLIENT)
    assert server_span.attributes is not None and server_span.attributes["rpc.grpc.status_code"] == 5
    assert server_span.status.status_code is StatusCode.UNSET
    assert client_span.attributes is not None and client_span.attributes["rpc.grpc.status_code"] == 5
    assert client_span.status.status_code is StatusCode.ERROR
    assert "no such thing" in (client_span.status.description or "")


async def test_a_handler_bug_is_a_server_error_with_its_exception(stub: Any, exporter: InMemorySpanExporter) -> None:
    client, _ = stub
    with context.bind(_IDENTITY), pytest.raises(grpc.aio.AioRpcError) as info:
        await client.Execute(pb.ExecuteRequest(code="bug"))
    assert info.value.code() is grpc.StatusCode.INTERNAL
    server_span = _by_kind(await _settled(exporter), SpanKind.SERVER)
    assert server_span.attributes is not None and server_span.attributes["rpc.grpc.status_code"] == 13
    assert server_span.status.status_code is StatusCode.ERROR
    assert [e.name for e in server_span.events] == ["exception"]
    assert server_span.events[0].attributes is not None
    assert server_span.events[0].attributes["exception.message"] == "a bug in the handler"


async def test_a_streamed_calls_client_span_ends_with_the_stream(stub: Any, exporter: InMemorySpanExporter) -> None:
    client, _ = stub
    with context.bind(_IDENTITY):
        call = client.StreamExecute(pb.StreamExecuteRequest(code="x"))
        first = await call.read()
        assert first.result.stdout == "a"
        assert not [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT], "ended before the stream"
        rest = [m.result.stdout async for m in call]
    assert rest == ["b"]
    for _ in range(100):  # the span ends in a callback that runs right after the stream's end
        if [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]:
            break
        await asyncio.sleep(0.01)
    client_span = _by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    server_span = _by_kind(exporter.get_finished_spans(), SpanKind.SERVER)
    assert client_span.attributes is not None and client_span.attributes["rpc.grpc.status_code"] == 0
    assert server_span.parent is not None and server_span.parent.span_id == client_span.context.span_id


@pytest.fixture
async def served(exporter: InMemorySpanExporter) -> AsyncIterator[str]:
    server = await start_server(
        [ServiceBinding(_SERVICE, pb_grpc.add_SandboxServiceServicer_to_server, ScriptedSandboxServicer())],
        ServerConfig(port=0),
        auth=test_auth.auth_settings(),
    )
    exporter.clear()
    yield f"127.0.0.1:{server.port}"
    await server.stop(None)


async def test_a_blocking_channels_call_is_one_trace_too(served: str, exporter: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")

    def call(code: str) -> None:
        channel = open_blocking_channel(served, [_SERVICE])
        try:
            with tracer.start_as_current_span("worker"), context.bind(_IDENTITY):
                pb_grpc.SandboxServiceStub(channel).Execute(pb.ExecuteRequest(code=code))
        finally:
            channel.close()

    await asyncio.to_thread(call, "x")
    client_span = _by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    server_span = _by_kind(exporter.get_finished_spans(), SpanKind.SERVER)
    assert client_span.context.trace_id == server_span.context.trace_id
    assert server_span.parent is not None and server_span.parent.span_id == client_span.context.span_id
    assert client_span.attributes is not None and client_span.attributes["rpc.grpc.status_code"] == 0
    exporter.clear()
    with pytest.raises(grpc.RpcError):
        await asyncio.to_thread(call, "missing")
    client_span = _by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    assert client_span.attributes is not None and client_span.attributes["rpc.grpc.status_code"] == 5
    assert client_span.status.status_code is StatusCode.ERROR


def test_the_sampler_follows_the_caller_and_samples_its_own_traces_at_the_ratio() -> None:
    from opentelemetry.sdk.trace.sampling import Decision
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    never = telemetry.TracingSettings(sample_ratio=0.0).sampler()
    always = telemetry.TracingSettings().sampler()
    trace_id = 0x5B8EFFF798038103D269B633813FC60C
    assert never.should_sample(None, trace_id, "root").decision is Decision.DROP
    assert always.should_sample(None, trace_id, "root").decision is Decision.RECORD_AND_SAMPLE
    sampled_parent = SpanContext(trace_id, 0xEEE19B7EC3C1B174, is_remote=True, trace_flags=TraceFlags(1))
    parent = trace.set_span_in_context(NonRecordingSpan(sampled_parent))
    assert never.should_sample(parent, trace_id, "child").decision is Decision.RECORD_AND_SAMPLE
    with pytest.raises(ValueError, match="RAGMESH_OTEL_SAMPLE_RATIO"):
        telemetry.TracingSettings(sample_ratio=1.5)
    assert not telemetry.TracingSettings().exporting, "no endpoint: spans are made but not exported"
    assert telemetry.TracingSettings(endpoint="127.0.0.1:4317").exporting


def test_work_in_another_process_joins_the_trace_through_the_carrier(exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("job") as job:
        headers = telemetry.carrier()
    assert headers["traceparent"].split("-")[1] == format(job.get_span_context().trace_id, "032x")
    with telemetry.remote_span("worker stage", headers, {"n": 3}), telemetry.store_span("qdrant", "upsert"):
        pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    stage, store = spans["worker stage"], spans["qdrant upsert"]
    assert stage.context.trace_id == job.get_span_context().trace_id
    assert stage.parent is not None and stage.parent.span_id == job.get_span_context().span_id
    assert store.parent is not None and store.parent.span_id == stage.context.span_id
    assert store.kind is SpanKind.CLIENT
    assert store.attributes is not None and store.attributes["db.system"] == "qdrant"


async def test_a_store_call_outside_any_request_makes_no_span(exporter: InMemorySpanExporter) -> None:
    exporter.clear()

    @telemetry.traced_store("redis", "get")
    async def lookup(key: str) -> str:
        return key.upper()

    assert await lookup("a") == "A"
    assert exporter.get_finished_spans() == ()
    with trace.get_tracer("test").start_as_current_span("request"):
        assert await lookup("b") == "B"
    assert [s.name for s in exporter.get_finished_spans()] == ["redis get", "request"]
