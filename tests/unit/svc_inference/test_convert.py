from __future__ import annotations

import numpy as np

from ragmesh.inference.v1 import inference_service_pb2 as pb
from svc_inference import convert
from svc_inference.domain.model import (
    ChatRole,
    EmbedMode,
    EmbedResult,
    FinishReason,
    GenerationChunk,
    GenerationSummary,
    ModelInfo,
    ModelRole,
    RerankResult,
    ScoredDocument,
    SparseVector,
)


def test_unset_sampling_fields_stay_unset() -> None:
    request = pb.StreamGenerateRequest(prompt="hi", sampling=pb.SamplingParams(temperature=0.0, stop=["\n"]))
    domain = convert.generate_request(request, timeout_s=2.5)
    assert domain.sampling.temperature == 0.0  # set to zero is not "unset"
    assert domain.sampling.top_p is None and domain.sampling.max_tokens is None and domain.sampling.seed is None
    assert domain.sampling.stop == ("\n",)
    assert domain.timeout_s == 2.5


def test_chat_messages_keep_roles_and_order() -> None:
    request = pb.StreamGenerateRequest(
        messages=[pb.ChatMessage(role=pb.ROLE_SYSTEM, content="s"), pb.ChatMessage(role=pb.ROLE_USER, content="u")],
        json_schema='{"type": "object"}',
    )
    domain = convert.generate_request(request, timeout_s=None)
    assert [(m.role, m.content) for m in domain.messages] == [(ChatRole.SYSTEM, "s"), (ChatRole.USER, "u")]
    assert domain.json_schema == '{"type": "object"}'


def test_summary_goes_on_the_last_message_only() -> None:
    assert not convert.generate_response(GenerationChunk(delta="a")).HasField("summary")
    summary = GenerationSummary("m", 3, 5, FinishReason.LENGTH, 12.5, 40.0, 200.0)
    message = convert.generate_response(GenerationChunk(summary=summary))
    assert message.delta == ""
    assert message.summary.finish_reason == pb.FINISH_REASON_LENGTH
    assert (message.summary.usage.prompt_tokens, message.summary.usage.completion_tokens) == (3, 5)
    assert message.summary.time_to_first_token_ms == 12.5 and message.summary.model == "m"


def test_embed_mode_unspecified_is_document() -> None:
    assert convert.embed_request(pb.EmbedRequest(texts=["a"])).mode is EmbedMode.DOCUMENT
    assert convert.embed_request(pb.EmbedRequest(texts=["a"], mode=pb.EMBED_MODE_QUERY)).mode is EmbedMode.QUERY


def test_embed_response_keeps_order_and_sparse() -> None:
    dense = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    sparse = (SparseVector((1, 5), (0.5, 1.5)), SparseVector((), ()))
    response = convert.embed_response(EmbedResult("m", dense, sparse, batch_size=2))
    assert response.dimensions == 2 and response.model == "m"
    assert [list(e.dense) for e in response.embeddings] == [[1.0, 0.0], [0.0, 1.0]]
    assert list(response.embeddings[0].sparse.indices) == [1, 5]
    without = convert.embed_response(EmbedResult("m", dense, None, batch_size=2))
    assert not without.embeddings[0].HasField("sparse")


def test_rerank_and_models() -> None:
    response = convert.rerank_response(RerankResult("r", "cross-encoder", (ScoredDocument(2, 0.9),), 3))
    assert (response.method, response.results[0].index) == ("cross-encoder", 2)
    models = convert.list_models_response(
        [ModelInfo("e", ModelRole.EMBEDDER, "sentence-transformers", "serve", 256, 384, True, "d")]
    )
    assert models.models[0].role == pb.MODEL_ROLE_EMBEDDER and models.models[0].dimensions == 384
