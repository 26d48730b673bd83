"""Query embeddings over InferenceService: queries waiting together go in one Embed call (fake stub)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from mesh import context
from mesh.errors import DeadlineExceeded, InvalidArgument, Unavailable
from ragmesh.inference.v1 import inference_service_pb2 as pb
from svc_retrieval.clients.inference import InferenceClient

DIM = 3


class FakeEmbedStub:
    """Records each Embed call; holds calls while ``gate`` is clear; answers [len(text), i, tenant hash]."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str, float | None]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_with: BaseException | None = None
        self.dim = DIM

    async def Embed(self, request: pb.EmbedRequest, **options: Any) -> pb.EmbedResponse:
        ctx = context.current()
        self.calls.append((list(request.texts), "" if ctx is None else ctx.request_id, options.get("timeout")))
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return pb.EmbedResponse(
            embeddings=[
                pb.Embedding(dense=[float(len(t)), float(i), 0.0][: self.dim]) for i, t in enumerate(request.texts)
            ],
            model="fake",
        )


def client(stub: FakeEmbedStub, **kwargs: Any) -> InferenceClient:
    unused = SimpleNamespace(**{kind: lambda *a, **k: None for kind in ("unary_unary", "unary_stream")})
    c = InferenceClient(channel=unused, dense_dim=DIM, **kwargs)  # type: ignore[arg-type]
    c._stub = stub  # type: ignore[assignment]
    return c


def ask(c: InferenceClient, text: str, tenant: str = "acme", request_id: str = "r", deadline_s: float = 5.0) -> Any:
    async def run() -> list[float]:
        deadline = time.monotonic() + deadline_s
        ctx = context.RequestContext("Search", request_id, context.Identity(tenant), deadline)
        with context.bind(ctx):
            return await c.embed_query(text)

    return asyncio.create_task(run())


async def test_a_lone_query_is_sent_at_once() -> None:
    stub = FakeEmbedStub()
    assert await ask(client(stub), "pods") == [4.0, 0.0, 0.0]
    assert [texts for texts, _, _ in stub.calls] == [["pods"]]


async def test_queries_that_arrive_during_a_call_go_together_in_the_next() -> None:
    stub = FakeEmbedStub()
    c = client(stub)
    stub.gate.clear()
    first = ask(c, "a", request_id="r1")
    await asyncio.sleep(0)
    others = [ask(c, "bb", request_id="r2"), ask(c, "ccc", request_id="r3", deadline_s=9.0)]
    await asyncio.sleep(0.01)
    assert [texts for texts, _, _ in stub.calls] == [["a"]]
    stub.gate.set()
    assert await first == [1.0, 0.0, 0.0]
    # Each query gets its own vector; the call carries the context of the query that may wait longest.
    assert [await t for t in others] == [[2.0, 0.0, 0.0], [3.0, 1.0, 0.0]]
    assert [texts for texts, _, _ in stub.calls] == [["a"], ["bb", "ccc"]]
    assert stub.calls[1][1] == "r3"


async def test_tenants_never_share_a_call() -> None:
    stub = FakeEmbedStub()
    c = client(stub)
    stub.gate.clear()
    tasks = [ask(c, "a", tenant="acme"), ask(c, "b", tenant="other")]
    await asyncio.sleep(0.01)
    stub.gate.set()
    await asyncio.gather(*tasks)
    assert sorted(texts for texts, _, _ in stub.calls) == [["a"], ["b"]]


async def test_a_call_carries_at_most_embed_batch_max_queries() -> None:
    stub = FakeEmbedStub()
    c = client(stub, embed_batch_max=2)
    stub.gate.clear()
    tasks = [ask(c, t) for t in ("a", "b", "c", "d", "e")]
    await asyncio.sleep(0.01)
    stub.gate.set()
    await asyncio.gather(*tasks)
    assert [texts for texts, _, _ in stub.calls] == [["a", "b"], ["c", "d"], ["e"]]


async def test_batching_off_sends_each_query_on_its_own() -> None:
    stub = FakeEmbedStub()
    c = client(stub, embed_batch_max=1)
    stub.gate.clear()
    tasks = [ask(c, t) for t in ("a", "b")]
    await asyncio.sleep(0.01)
    assert [texts for texts, _, _ in stub.calls] == [["a"], ["b"]]
    stub.gate.set()
    await asyncio.gather(*tasks)


async def test_a_failed_call_fails_every_query_it_carried() -> None:
    stub = FakeEmbedStub()
    c = client(stub)
    stub.gate.clear()
    stub.fail_with = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="model down"
    )
    first = ask(c, "a")
    await asyncio.sleep(0)
    others = [ask(c, "b"), ask(c, "c")]
    await asyncio.sleep(0.01)
    stub.gate.set()
    for task in (first, *others):
        with pytest.raises(Unavailable):
            await task


async def test_a_query_whose_search_gave_up_is_left_out_of_the_next_call() -> None:
    stub = FakeEmbedStub()
    c = client(stub)
    stub.gate.clear()
    first = ask(c, "a")
    await asyncio.sleep(0)
    late = ask(c, "short deadline", deadline_s=0.02)
    kept = ask(c, "b")
    with pytest.raises(DeadlineExceeded):
        await late
    stub.gate.set()
    await asyncio.gather(first, kept)
    assert [texts for texts, _, _ in stub.calls] == [["a"], ["b"]]


async def test_vectors_of_another_dimension_are_refused() -> None:
    stub = FakeEmbedStub()
    stub.dim = 2
    with pytest.raises(InvalidArgument):
        await ask(client(stub), "pods")
