"""A caller that goes away stops the generation and frees the model slot (the backend's counters show it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from ragmesh.inference.v1 import inference_service_pb2 as pb
from svc_inference.domain.model import GenerationStats
from tests.integration.inference.support import ENDLESS_PROMPT, generate
from tests.support.inference import Stack

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

MAX_TOKENS = 4000


def _endless() -> pb.StreamGenerateRequest:
    return pb.StreamGenerateRequest(
        prompt=ENDLESS_PROMPT, sampling=pb.SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0, repeat_penalty=1.0)
    )


async def _wait_for(stack: Stack, done: Callable[[GenerationStats], bool], timeout_s: float = 30.0) -> GenerationStats:
    deadline = time.monotonic() + timeout_s
    while True:
        stats = await stack.runtime.stats()
        if done(stats):
            return stats
        assert time.monotonic() < deadline, f"backend counters never settled: {stats}"
        await asyncio.sleep(0.1)


async def _assert_generation_stopped(stack: Stack, before: GenerationStats) -> None:
    stats = await _wait_for(stack, lambda s: s.cancelled == before.cancelled + 1 and s.active == 0)
    assert stats.started == before.started + 1
    await asyncio.sleep(1.0)
    later = await stack.runtime.stats()
    assert later.tokens_generated == stats.tokens_generated, "tokens kept coming after the cancel"
    assert later.tokens_generated - before.tokens_generated < MAX_TOKENS


async def test_a_cancelled_stream_stops_generation(stack: Stack) -> None:
    before = await stack.runtime.stats()
    call = stack.stub.StreamGenerate(_endless(), timeout=120)
    deltas = 0
    async for message in call:
        deltas += bool(message.delta)
        if deltas == 3:
            break
    call.cancel()
    await _assert_generation_stopped(stack, before)
    # The slot is free: the next request runs at once.
    received = await generate(
        stack.stub, pb.StreamGenerateRequest(prompt="Hello", sampling=pb.SamplingParams(max_tokens=2)), timeout_s=60
    )
    assert received.summary.usage.completion_tokens >= 1


async def test_a_passed_deadline_stops_generation(stack: Stack) -> None:
    before = await stack.runtime.stats()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await generate(stack.stub, _endless(), timeout_s=2.0)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await _assert_generation_stopped(stack, before)
