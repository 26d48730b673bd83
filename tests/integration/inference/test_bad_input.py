"""Every kind of bad input gets its own status code and reason, on both hostings."""

from __future__ import annotations

import json

import grpc
import pytest

from ragmesh.inference.v1 import inference_service_pb2 as pb
from tests.integration.inference.support import generate, reason, violation_fields
from tests.support.inference import TIGHT, TIGHT_CONTEXT, Stack

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def _generate_error(stack: Stack, request: pb.StreamGenerateRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await generate(stack.stub, request, timeout_s=60)
    return info.value


@pytest.mark.parametrize(
    ("request_", "expected_reason", "field"),
    [
        (pb.StreamGenerateRequest(), "VALIDATION_FAILED", "(message)"),
        (pb.StreamGenerateRequest(prompt=" \n\t "), "EMPTY_PROMPT", "prompt"),
        (
            pb.StreamGenerateRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="   ")]),
            "EMPTY_PROMPT",
            "messages",
        ),
        (
            pb.StreamGenerateRequest(prompt="x", sampling=pb.SamplingParams(temperature=3.0)),
            "VALIDATION_FAILED",
            "sampling.temperature",
        ),
        (pb.StreamGenerateRequest(prompt="x", json_schema="{not json"), "INVALID_JSON_SCHEMA", "json_schema"),
        (
            pb.StreamGenerateRequest(prompt="x", json_schema='{"type": "objekt"}'),
            "INVALID_JSON_SCHEMA",
            "json_schema",
        ),
        (
            pb.StreamGenerateRequest(
                prompt="x", json_schema=json.dumps({"type": "object", "properties": {"n": {"minimum": 1}}})
            ),
            "UNSUPPORTED_JSON_SCHEMA",
            "json_schema",
        ),
        (pb.StreamGenerateRequest(prompt="x", json_schema=" " * 40_000), "VALIDATION_FAILED", "json_schema"),
    ],
    ids=["nothing", "whitespace", "empty-chat", "temperature", "not-json", "not-a-schema", "minimum", "too-long"],
)
async def test_bad_generation_requests(
    stack: Stack, request_: pb.StreamGenerateRequest, expected_reason: str, field: str
) -> None:
    error = await _generate_error(stack, request_)
    assert error.code() == INVALID, error.details()
    assert reason(error) == expected_reason
    assert field in violation_fields(error)


async def test_a_prompt_longer_than_the_context(stack: Stack) -> None:
    before = await stack.runtime.stats(TIGHT)
    error = await _generate_error(stack, pb.StreamGenerateRequest(model=TIGHT, prompt="word " * (TIGHT_CONTEXT + 50)))
    assert error.code() == INVALID
    assert reason(error) == "PROMPT_TOO_LONG"
    assert str(TIGHT_CONTEXT) in error.details()
    assert (await stack.runtime.stats(TIGHT)).started == before.started  # no model time spent


async def test_unknown_models_are_not_found(stack: Stack) -> None:
    error = await _generate_error(stack, pb.StreamGenerateRequest(model="gpt-17", prompt="x"))
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")
    with pytest.raises(grpc.aio.AioRpcError) as embed:
        await stack.stub.Embed(pb.EmbedRequest(model="gpt-17", texts=["x"]), timeout=30)
    assert embed.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as rerank:
        await stack.stub.Rerank(pb.RerankRequest(model="gemma3-270m", query="q", documents=["d"]), timeout=30)
    assert rerank.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("texts", "expected_reason", "field"),
    [
        ([], "VALIDATION_FAILED", "texts"),
        (["x"] * 257, "VALIDATION_FAILED", "texts"),
        (["x" * 32_769], "VALIDATION_FAILED", "texts[0]"),
        (["", "x"], "VALIDATION_FAILED", "texts[0]"),
        (["short", "kubernetes " * 300], "TEXT_TOO_LONG", "texts[1]"),
    ],
    ids=["none", "too-many", "too-many-chars", "empty-text", "too-many-tokens"],
)
async def test_bad_embed_requests(stack: Stack, texts: list[str], expected_reason: str, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stack.stub.Embed(pb.EmbedRequest(texts=texts), timeout=60)
    assert info.value.code() == INVALID, info.value.details()
    assert reason(info.value) == expected_reason
    assert field in violation_fields(info.value)
    if expected_reason == "TEXT_TOO_LONG":
        assert "256 tokens" in info.value.details()


async def test_bad_rerank_requests(stack: Stack) -> None:
    for request in (
        pb.RerankRequest(query="", documents=["d"]),
        pb.RerankRequest(query="q", documents=[]),
        pb.RerankRequest(query="q", documents=["d"], top_n=300),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stack.stub.Rerank(request, timeout=30)
        assert info.value.code() == INVALID
        assert reason(info.value) == "VALIDATION_FAILED"


async def test_bad_input_leaves_the_service_working(stack: Stack) -> None:
    response = await stack.stub.Embed(pb.EmbedRequest(texts=["still here"]), timeout=60)
    assert len(response.embeddings) == 1
