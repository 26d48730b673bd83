"""StreamGenerate against the real models, on Ray Serve and in-process."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from ragmesh.inference.v1 import inference_service_pb2 as pb
from tests.integration.inference.support import generate
from tests.support.inference import Stack

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_deltas_stream_before_generation_ends(stack: Stack) -> None:
    received = await generate(
        stack.stub,
        pb.StreamGenerateRequest(
            prompt="Kubernetes is", sampling=pb.SamplingParams(max_tokens=48, temperature=0.0, stop=["\n\n"])
        ),
    )
    deltas = received.deltas
    assert len(deltas) >= 3, received.text
    times = [t for t, _ in received.messages]
    assert times == sorted(times) and times[0] < times[-1]
    summary = received.summary
    assert received.messages[-1][1].delta == ""
    # Streamed, not buffered: deltas arrive spread over the decode time, not all at the end.
    decode_s = (summary.total_ms - summary.time_to_first_token_ms) / 1000.0
    assert deltas[-1][0] - deltas[0][0] > 0.1 * decode_s
    assert summary.model == "gemma3-270m"
    assert summary.usage.prompt_tokens > 0 and 0 < summary.usage.completion_tokens <= 48
    assert summary.time_to_first_token_ms > 0 and summary.tokens_per_second > 0
    assert summary.total_ms >= summary.time_to_first_token_ms
    assert summary.finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)


async def test_max_tokens_ends_with_length(stack: Stack) -> None:
    received = await generate(
        stack.stub,
        pb.StreamGenerateRequest(prompt="1, 2, 3, 4,", sampling=pb.SamplingParams(max_tokens=5, temperature=0.0)),
    )
    assert received.summary.finish_reason == pb.FINISH_REASON_LENGTH
    assert received.summary.usage.completion_tokens == 5


async def test_a_stop_sequence_ends_the_text_before_it(stack: Stack) -> None:
    received = await generate(
        stack.stub,
        pb.StreamGenerateRequest(
            prompt="1, 2, 3, 4,", sampling=pb.SamplingParams(max_tokens=40, temperature=0.0, stop=[" 7"])
        ),
    )
    assert received.summary.finish_reason == pb.FINISH_REASON_STOP
    assert " 7" not in received.text
    assert received.text.startswith(" 5, 6,"), received.text


async def test_chats_use_the_template(stack: Stack) -> None:
    received = await generate(
        stack.stub,
        pb.StreamGenerateRequest(
            messages=[
                pb.ChatMessage(role=pb.ROLE_SYSTEM, content="Answer in one short sentence."),
                pb.ChatMessage(role=pb.ROLE_USER, content="What is the capital of France?"),
            ],
            sampling=pb.SamplingParams(max_tokens=24, temperature=0.0),
        ),
    )
    # "<start_of_turn>user\n" + system + question + turn markers: more tokens than the words alone.
    assert received.summary.usage.prompt_tokens > 15
    assert "<start_of_turn>" not in received.text and "<end_of_turn>" not in received.text


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_follow_generations_and_batches(stack: Stack) -> None:
    llm = {"model": "gemma3-270m"}
    ttft_before = _sample("ragmesh_inference_time_to_first_token_seconds_count", llm)
    tokens_before = _sample("ragmesh_inference_tokens_generated_total", llm)
    received = await generate(
        stack.stub, pb.StreamGenerateRequest(prompt="Hello", sampling=pb.SamplingParams(max_tokens=6))
    )
    assert _sample("ragmesh_inference_time_to_first_token_seconds_count", llm) == ttft_before + 1
    assert (
        _sample("ragmesh_inference_tokens_generated_total", llm)
        == tokens_before + received.summary.usage.completion_tokens
    )
    assert _sample("ragmesh_inference_queue_depth", llm) == 0
    embedder = {"model": "all-minilm-l6-v2"}
    batches_before = _sample("ragmesh_inference_batch_size_count", embedder)
    texts_before = _sample("ragmesh_inference_batch_size_sum", embedder)
    await stack.stub.Embed(pb.EmbedRequest(texts=["a", "b", "c"]), timeout=60)
    assert _sample("ragmesh_inference_batch_size_count", embedder) == batches_before + 1
    assert _sample("ragmesh_inference_batch_size_sum", embedder) >= texts_before + 3
