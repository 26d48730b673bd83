"""A full queue is RESOURCE_EXHAUSTED; a crashed replica is UNAVAILABLE and Ray Serve brings it back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import grpc
import pytest

from ragmesh.inference.v1 import inference_service_pb2 as pb
from svc_inference.serve.endpoints import ServeLLM
from tests.integration.inference.support import ENDLESS_PROMPT, generate, reason
from tests.support.inference import TIGHT, Stack

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def _endless() -> pb.StreamGenerateRequest:
    return pb.StreamGenerateRequest(
        model=TIGHT, prompt=ENDLESS_PROMPT, sampling=pb.SamplingParams(max_tokens=600, temperature=0.0)
    )


async def _first_delta(call: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
    async for message in call:
        if message.delta:
            return


async def _drain(call: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
    # Ends when the call is cancelled (grpc.aio raises CancelledError into a reader of a cancelled call).
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
        async for _ in call:
            pass


async def test_a_full_queue_is_resource_exhausted(stack: Stack) -> None:
    # gemma3-270m-tight runs one request and queues one.
    running = stack.stub.StreamGenerate(_endless(), timeout=120)
    await _first_delta(running)
    queued = stack.stub.StreamGenerate(_endless(), timeout=120)
    queued_task = asyncio.create_task(_drain(queued))
    await asyncio.sleep(1.0)  # let it reach the queue
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await generate(stack.stub, _endless(), timeout_s=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason(info.value) == "QUEUE_FULL"
    finally:
        running.cancel()
        queued.cancel()
        await queued_task
    # Once the queue drains, requests are admitted again.
    received = await _retry_until_admitted(stack)
    assert received.summary.usage.completion_tokens >= 1


async def _retry_until_admitted(stack: Stack):  # type: ignore[no-untyped-def]
    request = pb.StreamGenerateRequest(model=TIGHT, prompt="Hello", sampling=pb.SamplingParams(max_tokens=2))
    deadline = time.monotonic() + 60
    while True:
        try:
            return await generate(stack.stub, request, timeout_s=60)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_a_crashed_replica_is_unavailable_then_replaced(serve_stack: Stack) -> None:
    endpoint = serve_stack.runtime.llm(TIGHT)
    assert isinstance(endpoint, ServeLLM)
    pid = await endpoint.pid()
    call = serve_stack.stub.StreamGenerate(_endless(), timeout=120)
    await _first_delta(call)
    os.kill(pid, signal.SIGKILL)  # a real crash: the replica's process dies mid-generation
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(info.value) == "BACKEND_UNAVAILABLE"
    # Serve's controller notices and starts a new replica; requests succeed again.
    deadline = time.monotonic() + 180
    while True:
        try:
            received = await generate(
                serve_stack.stub,
                pb.StreamGenerateRequest(model=TIGHT, prompt="Hello", sampling=pb.SamplingParams(max_tokens=2)),
                timeout_s=120,
            )
            break
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            assert time.monotonic() < deadline, "Ray Serve did not bring the replica back"
            await asyncio.sleep(1.0)
    assert received.summary.usage.completion_tokens >= 1
    assert await endpoint.pid() != pid


async def test_list_models(stack: Stack) -> None:
    response = await stack.stub.ListModels(pb.ListModelsRequest(), timeout=10)
    models = {m.name: m for m in response.models}
    gemma = models["gemma3-270m"]
    assert (gemma.role, gemma.backend, gemma.hosting, gemma.is_default) == (
        pb.MODEL_ROLE_LLM,
        "llamacpp",
        stack.hosting,
        True,
    )
    assert gemma.context_length == 8192
    embedder = models["all-minilm-l6-v2"]
    assert (embedder.role, embedder.dimensions, embedder.context_length, embedder.is_default) == (
        pb.MODEL_ROLE_EMBEDDER,
        384,
        256,
        True,
    )
    cosine = models["all-minilm-l6-v2-cosine"]
    assert (cosine.role, cosine.backend, cosine.is_default) == (pb.MODEL_ROLE_RERANKER, "embedding-cosine", True)
    assert "cosine" in cosine.description
    assert models["tiny-cross-encoder"].backend == "cross-encoder"
    assert not models[TIGHT].is_default
