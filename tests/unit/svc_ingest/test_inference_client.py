"""svc_ingest's Embed client against a fake InferenceService on a real in-process gRPC server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from mesh.errors import FailedPrecondition, ResourceExhausted
from mesh.priority import BATCH, PRIORITY_HEADER
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from svc_ingest.clients.inference import EmbedClient


class FakeBusyInference(pb_grpc.InferenceServiceServicer):
    """Answers RESOURCE_EXHAUSTED ``busy`` times (as a full batch line does), then embeds; records priorities."""

    def __init__(self, busy: int, code: grpc.StatusCode = grpc.StatusCode.RESOURCE_EXHAUSTED) -> None:
        self.busy = busy
        self.code = code
        self.calls = 0
        self.priorities: list[str] = []

    def Embed(self, request: pb.EmbedRequest, context: grpc.ServicerContext) -> pb.EmbedResponse:
        self.calls += 1
        self.priorities.append(dict(context.invocation_metadata()).get(PRIORITY_HEADER, ""))
        if self.busy > 0:
            self.busy -= 1
            context.abort(self.code, "model busy: 8 batch requests are already waiting")
        response = pb.EmbedResponse(model="fake", dimensions=2)
        for _ in request.texts:
            response.embeddings.add().dense.extend([1.0, 0.0])
        return response


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[grpc.Server] = []

    def start(servicer: FakeBusyInference) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(2))
        pb_grpc.add_InferenceServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)


def test_a_busy_embedder_is_waited_out_and_every_call_is_marked_batch(serve: Any) -> None:
    fake = FakeBusyInference(busy=3)
    client = EmbedClient(serve(fake), "tenant-a", timeout_s=10, busy_budget_s=30)
    try:
        assert client.embed(["one", "two"]) == [[1.0, 0.0], [1.0, 0.0]]
    finally:
        client.close()
    assert client.busy_retries == 3
    assert fake.calls == 4
    assert fake.priorities == [BATCH] * 4


def test_the_client_gives_up_when_its_busy_budget_is_spent(serve: Any) -> None:
    fake = FakeBusyInference(busy=1000)
    client = EmbedClient(serve(fake), "tenant-a", timeout_s=10, busy_budget_s=0.3)
    try:
        with pytest.raises(ResourceExhausted, match="RESOURCE_EXHAUSTED"):
            client.embed(["one"])
    finally:
        client.close()
    assert 1 <= client.busy_retries < 1000


def test_other_errors_are_not_waited_out(serve: Any) -> None:
    fake = FakeBusyInference(busy=1, code=grpc.StatusCode.INVALID_ARGUMENT)
    client = EmbedClient(serve(fake), "tenant-a", timeout_s=10)
    try:
        with pytest.raises(FailedPrecondition, match="INVALID_ARGUMENT"):
            client.embed(["one"])
    finally:
        client.close()
    assert fake.calls == 1 and client.busy_retries == 0


def test_unavailable_is_retried_by_the_channels_service_config_not_by_the_client(serve: Any) -> None:
    fake = FakeBusyInference(busy=1, code=grpc.StatusCode.UNAVAILABLE)
    client = EmbedClient(serve(fake), "tenant-a", timeout_s=10)
    try:
        assert client.embed(["one"]) == [[1.0, 0.0]]
    finally:
        client.close()
    assert fake.calls == 2 and client.busy_retries == 0
