"""A fake ragmesh edge for the SDK's unit tests: a real in-process grpcio server, scripted answers.

It serves the public RPCs the SDK calls with the grpcio (pb2) messages the real
services use, so the SDK's betterproto2 messages cross a real wire. Each test
scripts what a method answers, call by call: a response, a list of stream
messages (optionally ending in an error), or a ``MeshError``, sent as the mesh
sends errors (code, message, ``google.rpc.Status`` details in the trailer).
Every call's metadata is recorded.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from mesh.errors import MeshError
from mesh.status import grpc_code, trailing_metadata
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.ingest.v1 import ingest_service_pb2 as ipb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.sandbox.v1 import sandbox_service_pb2 as spb


@dataclass
class Stream:
    """A scripted server stream: these messages, then ``error`` (if any)."""

    messages: list[Any]
    error: MeshError | None = None


_METHODS: dict[str, tuple[str, Any, bool]] = {
    # route -> (service, request type, server streaming)
    "/ragmesh.agent.v1.AgentService/StreamChat": ("ragmesh.agent.v1.AgentService", apb.StreamChatRequest, True),
    "/ragmesh.agent.v1.AgentService/GetSession": ("ragmesh.agent.v1.AgentService", apb.GetSessionRequest, False),
    "/ragmesh.agent.v1.AgentService/ListSessions": ("ragmesh.agent.v1.AgentService", apb.ListSessionsRequest, False),
    "/ragmesh.agent.v1.AgentService/DeleteSession": ("ragmesh.agent.v1.AgentService", apb.DeleteSessionRequest, False),
    "/ragmesh.agent.v1.AgentService/SubmitFeedback": (
        "ragmesh.agent.v1.AgentService",
        apb.SubmitFeedbackRequest,
        False,
    ),
    "/ragmesh.retrieval.v1.RetrievalService/Search": (
        "ragmesh.retrieval.v1.RetrievalService",
        rpb.SearchRequest,
        False,
    ),
    "/ragmesh.retrieval.v1.RetrievalService/GetChunk": (
        "ragmesh.retrieval.v1.RetrievalService",
        rpb.GetChunkRequest,
        False,
    ),
    "/ragmesh.ingest.v1.IngestService/CreateIngestJob": (
        "ragmesh.ingest.v1.IngestService",
        ipb.CreateIngestJobRequest,
        False,
    ),
    "/ragmesh.ingest.v1.IngestService/StreamIngestJob": (
        "ragmesh.ingest.v1.IngestService",
        ipb.StreamIngestJobRequest,
        True,
    ),
    "/ragmesh.ingest.v1.IngestService/CancelIngestJob": (
        "ragmesh.ingest.v1.IngestService",
        ipb.CancelIngestJobRequest,
        False,
    ),
    "/ragmesh.ingest.v1.IngestService/ListDocuments": (
        "ragmesh.ingest.v1.IngestService",
        ipb.ListDocumentsRequest,
        False,
    ),
    "/ragmesh.ingest.v1.IngestService/DeleteDocument": (
        "ragmesh.ingest.v1.IngestService",
        ipb.DeleteDocumentRequest,
        False,
    ),
    "/ragmesh.sandbox.v1.SandboxService/Execute": ("ragmesh.sandbox.v1.SandboxService", spb.ExecuteRequest, False),
    "/ragmesh.sandbox.v1.SandboxService/StreamExecute": (
        "ragmesh.sandbox.v1.SandboxService",
        spb.StreamExecuteRequest,
        True,
    ),
}


@dataclass
class Received:
    """One call the fake answered."""

    route: str
    request: Any
    metadata: dict[str, str]
    timeout_s: float | None


@dataclass
class FakeMesh:
    """The fake edge; ``script(route, *answers)`` queues what the next calls of ``route`` get."""

    address: str = ""
    calls: list[Received] = field(default_factory=list)
    _answers: dict[str, deque[Any]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: grpc.Server | None = None

    def script(self, route: str, *answers: Any) -> None:
        with self._lock:
            self._answers[route].extend(answers)

    def calls_to(self, route: str) -> list[Received]:
        return [c for c in self.calls if c.route == route]

    def _next(self, route: str, request: Any, context: grpc.ServicerContext) -> Any:
        remaining = context.time_remaining()
        with self._lock:
            self.calls.append(
                Received(
                    route,
                    request,
                    {k: v for k, v in context.invocation_metadata() if isinstance(v, str)},
                    remaining,
                )
            )
            queue = self._answers[route]
            if not queue:
                raise AssertionError(f"the fake has no answer scripted for {route}")
            return queue.popleft()

    @staticmethod
    def _fail(context: grpc.ServicerContext, error: MeshError) -> None:
        context.set_trailing_metadata(trailing_metadata(error))
        context.abort(grpc_code(error.code), error.message)

    def _unary(self, route: str) -> Any:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            answer = self._next(route, request, context)
            if isinstance(answer, MeshError):
                self._fail(context, answer)
            return answer

        return handle

    def _streaming(self, route: str) -> Any:
        def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            answer = self._next(route, request, context)
            if isinstance(answer, MeshError):
                self._fail(context, answer)
            yield from answer.messages
            if answer.error is not None:
                self._fail(context, answer.error)

        return handle

    def start(self) -> FakeMesh:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = defaultdict(dict)
        for route, (service, request_type, streaming) in _METHODS.items():
            method = route.rsplit("/", 1)[1]
            if streaming:
                handler = grpc.unary_stream_rpc_method_handler(
                    self._streaming(route),
                    request_deserializer=request_type.FromString,
                    response_serializer=lambda m: m.SerializeToString(),
                )
            else:
                handler = grpc.unary_unary_rpc_method_handler(
                    self._unary(route),
                    request_deserializer=request_type.FromString,
                    response_serializer=lambda m: m.SerializeToString(),
                )
            by_service[service][method] = handler
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(name, handlers) for name, handlers in by_service.items()]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self.address = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0)
