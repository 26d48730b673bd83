"""InferenceService over gRPC: streamed generation and embeddings.

The channel comes from ``mesh.channels.open_channel``, which passes the
caller's identity on and caps every call at the request's remaining deadline.
A generation stream that is closed early (the client went away, or the loop
has what it needs) cancels its call, which stops the generation downstream.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Sequence

import grpc

from mesh.downstream import downstream_error
from mesh.errors import Unavailable
from mesh.validation import max_items, max_len
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from svc_agent.domain.model import Usage
from svc_agent.domain.ports import GenerationChunk, GenerationRequest

SERVICE = "ragmesh.inference.v1.InferenceService"
MAX_EMBED_TEXTS = max_items(pb.EmbedRequest, "texts")
"""Texts per Embed call (the contract's rule)."""
MAX_EMBED_CHARS = max_len(pb.EmbedRequest, "texts")
"""Longest text one Embed call accepts (the contract's rule)."""
# Token limit assumed when ListModels does not say (the smallest common encoder limit).
DEFAULT_EMBED_TOKENS = 256

_FINISH_REASONS = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_CANCELLED: "cancelled",
}


def generate_request(request: GenerationRequest, model: str = "") -> pb.StreamGenerateRequest:
    """The StreamGenerate request for a domain generation request."""
    sampling = pb.SamplingParams(
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        repeat_penalty=request.repeat_penalty,
        stop=list(request.stop),
    )
    if request.seed is not None:
        sampling.seed = request.seed
    return pb.StreamGenerateRequest(
        model=model, prompt=request.prompt, sampling=sampling, json_schema=request.json_schema
    )


class InferenceClient:
    """Generator and Embedder over InferenceService."""

    def __init__(self, channel: grpc.aio.Channel, *, llm_model: str = "", embed_model: str = "") -> None:
        self._stub = pb_grpc.InferenceServiceStub(channel)
        self._llm_model = llm_model
        self._embed_model = embed_model
        self._max_input_chars = 0

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        """Streams the completion; closing the generator early cancels the call."""
        call = self._stub.StreamGenerate(generate_request(request, self._llm_model))
        try:
            async for response in call:
                if response.HasField("summary"):
                    summary = response.summary
                    yield GenerationChunk(
                        text=response.delta,
                        usage=Usage(summary.usage.prompt_tokens, summary.usage.completion_tokens),
                        backend_ttft_ms=summary.time_to_first_token_ms,
                        finish_reason=_FINISH_REASONS.get(summary.finish_reason, ""),
                    )
                elif response.delta:
                    yield GenerationChunk(text=response.delta)
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "generating text") from exc
        finally:
            # A no-op when the call ended by itself; otherwise it stops the generation downstream.
            call.cancel()

    async def max_input_chars(self) -> int:
        """Characters that can never exceed the embedder's token limit (read once from ListModels).

        A word-piece token covers at least one character, and two special
        tokens frame every text, so ``max_tokens - 2`` characters always fit.
        """
        if not self._max_input_chars:
            try:
                models = (await self._stub.ListModels(pb.ListModelsRequest())).models
            except grpc.aio.AioRpcError as exc:
                raise downstream_error(exc, "reading the embedder's limits") from exc
            embedders = [m for m in models if m.role == pb.MODEL_ROLE_EMBEDDER]
            chosen = next(
                (m for m in embedders if (m.name == self._embed_model if self._embed_model else m.is_default)),
                None,
            )
            tokens = chosen.context_length if chosen is not None and chosen.context_length else DEFAULT_EMBED_TOKENS
            self._max_input_chars = max(16, tokens - 2)
        return self._max_input_chars

    async def embed(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        """Unit-length dense vectors, one per text, in order."""
        mode = pb.EMBED_MODE_QUERY if query else pb.EMBED_MODE_DOCUMENT
        vectors: list[list[float]] = []
        for start in range(0, len(texts), MAX_EMBED_TEXTS):
            batch = [t[:MAX_EMBED_CHARS] or " " for t in texts[start : start + MAX_EMBED_TEXTS]]
            request = pb.EmbedRequest(model=self._embed_model, texts=batch, mode=mode)
            try:
                response = await self._stub.Embed(request)
            except grpc.aio.AioRpcError as exc:
                raise downstream_error(exc, "embedding") from exc
            if len(response.embeddings) != len(batch):
                raise Unavailable(
                    f"the embedder returned {len(response.embeddings)} vectors for {len(batch)} texts",
                    reason="EMBEDDING_INVALID",
                )
            for embedding in response.embeddings:
                vector = list(embedding.dense)
                if not vector or not all(math.isfinite(x) for x in vector):
                    raise Unavailable("the embedder returned an empty or non-finite vector", reason="EMBEDDING_INVALID")
                vectors.append(vector)
        return vectors
