"""Interactive before batch, and back-pressure, on the real embedder (Ray Serve and in-process).

Ingest's document embeddings are batch calls (metadata ``x-ragmesh-priority:
batch``); queries are interactive. The embedder runs batch requests in slices
and only while no query waits, and refuses calls at once when their line is
full. The assertions are on completion order and status codes, never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import grpc
import pytest

from mesh.priority import BATCH_METADATA
from ragmesh.inference.v1 import inference_service_pb2 as pb
from svc_inference.domain.scheduler import SchedulerStats
from tests.integration.inference.support import reason
from tests.support.inference import Stack

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# Ingest sends 64 chunks per Embed call (svc_ingest's embed_batch_size); short ones keep the test cheap.
INGEST_BATCH = [f"Chunk {i} of the bulk load: nodes, pods and services of cluster {i % 7}." for i in range(64)]
QUERY = "What is the smallest deployable unit in Kubernetes?"


def _document_call(stack: Stack) -> grpc.aio.UnaryUnaryCall:  # type: ignore[type-arg]
    request = pb.EmbedRequest(texts=INGEST_BATCH, mode=pb.EMBED_MODE_DOCUMENT)
    return stack.stub.Embed(request, timeout=120, metadata=BATCH_METADATA)


async def _until(stack: Stack, condition: Callable[[SchedulerStats], bool]) -> SchedulerStats:
    """Polls the embedder's scheduler until ``condition`` holds (what it waits for is state, not time)."""
    for _ in range(600):
        stats = await stack.runtime.queue_stats()
        if condition(stats):
            return stats
        await asyncio.sleep(0.05)
    raise AssertionError(f"the embedder never reached the expected state: {stats}")


async def _finish(calls: list[Awaitable[object]]) -> None:
    for call in calls:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            await call


async def test_a_query_during_a_document_load_is_served_before_the_queued_batches(stack: Stack) -> None:
    order: list[str] = []

    async def document(i: int) -> None:
        response = await _document_call(stack)
        assert len(response.embeddings) == len(INGEST_BATCH)
        order.append(f"batch-{i}")

    ingest = [asyncio.create_task(document(i)) for i in range(4)]
    try:
        # The load is running: one slice on the model, all four requests in the batch line.
        await _until(stack, lambda s: s.running == "batch" and s.batch_waiting == 4)
        response = await stack.stub.Embed(pb.EmbedRequest(texts=[QUERY], mode=pb.EMBED_MODE_QUERY), timeout=60)
        order.append("query")
        assert len(response.embeddings[0].dense) == response.dimensions
        await asyncio.gather(*ingest)
    finally:
        for task in ingest:
            task.cancel()
        await _finish(ingest)
    # The four batch requests may reach the replica in any order; all of them finish after the query.
    assert order[0] == "query"
    assert sorted(order[1:]) == ["batch-0", "batch-1", "batch-2", "batch-3"]


async def test_a_saturated_embedder_refuses_a_new_batch_caller_at_once(stack: Stack) -> None:
    assert (await stack.runtime.queue_stats()).batch_waiting == 0, "the embedder must start idle"
    max_waiting = 8  # scheduling.max_waiting_batch of the local profile's embedder
    held = [_document_call(stack) for _ in range(max_waiting)]
    try:
        await _until(stack, lambda s: s.batch_waiting == max_waiting)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _document_call(stack)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason(info.value) == "QUEUE_FULL"
        assert "batch" in (info.value.details() or "")
        # Refused while every request that filled the line is still waiting or running: nothing was drained.
        assert not any(call.done() for call in held)
        stats = await stack.runtime.queue_stats()
        assert stats.batch_waiting == max_waiting and stats.rejected_batch >= 1
        # The interactive line is separate: a query is still admitted and answered.
        query = await stack.stub.Embed(pb.EmbedRequest(texts=[QUERY], mode=pb.EMBED_MODE_QUERY), timeout=60)
        assert len(query.embeddings) == 1
    finally:
        for call in held:
            call.cancel()
        await _finish(held)  # type: ignore[arg-type]
    # Cancelled callers leave the line: it drains without running their remaining slices.
    await _until(stack, lambda s: s.batch_waiting == 0 and s.running == "")
