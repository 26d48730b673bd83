"""Every proto <-> domain mapping of svc_inference, and nothing else."""

from __future__ import annotations

from collections.abc import Iterable

from mesh.priority import priority_of
from ragmesh.common.v1 import common_pb2
from ragmesh.inference.v1 import inference_service_pb2 as pb
from svc_inference.domain.model import (
    ChatMessage,
    ChatRole,
    EmbedMode,
    EmbedRequest,
    EmbedResult,
    FinishReason,
    GenerateRequest,
    GenerationChunk,
    ModelInfo,
    ModelRole,
    Priority,
    RerankRequest,
    RerankResult,
    Sampling,
)

_ROLES = {pb.ROLE_SYSTEM: ChatRole.SYSTEM, pb.ROLE_USER: ChatRole.USER, pb.ROLE_ASSISTANT: ChatRole.ASSISTANT}
_FINISH = {
    FinishReason.STOP: pb.FINISH_REASON_STOP,
    FinishReason.LENGTH: pb.FINISH_REASON_LENGTH,
    FinishReason.CANCELLED: pb.FINISH_REASON_CANCELLED,
}
_MODEL_ROLES = {
    ModelRole.LLM: pb.MODEL_ROLE_LLM,
    ModelRole.EMBEDDER: pb.MODEL_ROLE_EMBEDDER,
    ModelRole.RERANKER: pb.MODEL_ROLE_RERANKER,
}


def priority(metadata: Iterable[tuple[str, str | bytes]] | None) -> Priority:
    """The call's priority from its ``x-ragmesh-priority`` metadata (interactive when absent)."""
    return Priority(priority_of(metadata))


def generate_request(
    request: pb.StreamGenerateRequest, timeout_s: float | None, priority: Priority = Priority.INTERACTIVE
) -> GenerateRequest:
    """A StreamGenerate request in domain terms; ``timeout_s`` is what the caller's deadline leaves."""
    params = request.sampling
    sampling = Sampling(
        temperature=params.temperature if params.HasField("temperature") else None,
        top_p=params.top_p if params.HasField("top_p") else None,
        max_tokens=params.max_tokens if params.HasField("max_tokens") else None,
        repeat_penalty=params.repeat_penalty if params.HasField("repeat_penalty") else None,
        stop=tuple(params.stop),
        seed=params.seed if params.HasField("seed") else None,
    )
    return GenerateRequest(
        model=request.model,
        prompt=request.prompt,
        messages=tuple(ChatMessage(_ROLES[m.role], m.content) for m in request.messages),
        sampling=sampling,
        json_schema=request.json_schema,
        timeout_s=timeout_s,
        priority=priority,
    )


def generate_response(chunk: GenerationChunk) -> pb.StreamGenerateResponse:
    """One streamed message: a delta, or the closing summary."""
    summary = chunk.summary
    if summary is None:
        return pb.StreamGenerateResponse(delta=chunk.delta)
    return pb.StreamGenerateResponse(
        delta=chunk.delta,
        summary=pb.GenerationSummary(
            usage=common_pb2.Usage(prompt_tokens=summary.prompt_tokens, completion_tokens=summary.completion_tokens),
            finish_reason=_FINISH[summary.finish_reason],
            time_to_first_token_ms=summary.time_to_first_token_ms,
            tokens_per_second=summary.tokens_per_second,
            total_ms=summary.total_ms,
            model=summary.model,
        ),
    )


def embed_request(request: pb.EmbedRequest, priority: Priority = Priority.INTERACTIVE) -> EmbedRequest:
    """An Embed request in domain terms (unspecified mode means document)."""
    mode = EmbedMode.QUERY if request.mode == pb.EMBED_MODE_QUERY else EmbedMode.DOCUMENT
    return EmbedRequest(
        texts=tuple(request.texts),
        model=request.model,
        mode=mode,
        include_sparse=request.include_sparse,
        priority=priority,
    )


def embed_response(result: EmbedResult) -> pb.EmbedResponse:
    """The embeddings, in input order."""
    response = pb.EmbedResponse(model=result.model, dimensions=result.dimensions)
    sparse = result.sparse
    for i, row in enumerate(result.dense.tolist()):
        embedding = response.embeddings.add()
        embedding.dense.extend(row)
        if sparse is not None:
            embedding.sparse.indices.extend(sparse[i].indices)
            embedding.sparse.values.extend(sparse[i].values)
    return response


def rerank_request(request: pb.RerankRequest) -> RerankRequest:
    """A Rerank request in domain terms."""
    return RerankRequest(
        query=request.query, documents=tuple(request.documents), model=request.model, top_n=request.top_n
    )


def rerank_response(result: RerankResult) -> pb.RerankResponse:
    """The documents best first."""
    return pb.RerankResponse(
        model=result.model,
        method=result.method,
        results=[pb.RerankResult(index=r.index, score=r.score) for r in result.results],
    )


def list_models_response(models: list[ModelInfo]) -> pb.ListModelsResponse:
    """Every served model."""
    return pb.ListModelsResponse(
        models=[
            pb.ModelInfo(
                name=m.name,
                role=_MODEL_ROLES[m.role],
                backend=m.backend,
                hosting=m.hosting,
                context_length=m.context_length,
                dimensions=m.dimensions,
                is_default=m.is_default,
                description=m.description,
            )
            for m in models
        ]
    )
