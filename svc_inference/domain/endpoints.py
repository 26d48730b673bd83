"""How the service reaches a model, whatever hosts it: the same interface for Ray Serve and in-process hosting."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Protocol

from svc_inference.domain.model import (
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    GenerationChunk,
    GenerationStats,
    ModelInfo,
    ModelRole,
    RerankRequest,
    RerankResult,
)
from svc_inference.domain.model_config import RerankerConfig
from svc_inference.domain.scheduler import SchedulerStats


class LLMEndpoint(Protocol):
    """A served LLM."""

    @property
    def info(self) -> ModelInfo:
        """The model as ListModels shows it."""
        ...

    def generate(self, request: GenerateRequest) -> AsyncIterator[GenerationChunk]:
        """Streams a completion; closing the iterator early cancels the generation."""
        ...

    async def stats(self) -> GenerationStats:
        """The backend's counters (one replica's, when served by Ray Serve)."""
        ...

    async def close(self) -> None:
        """Releases what this endpoint holds."""
        ...


class EmbedderEndpoint(Protocol):
    """A served embedder; it also scores documents by cosine similarity."""

    @property
    def info(self) -> ModelInfo:
        """The model as ListModels shows it."""
        ...

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Embeds the request's texts."""
        ...

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Ranks documents by the cosine similarity of their embeddings to the query's."""
        ...

    async def queue_stats(self) -> SchedulerStats:
        """The priority scheduler's lines (one replica's, when served by Ray Serve)."""
        ...

    async def close(self) -> None:
        """Releases what this endpoint holds."""
        ...


class RerankerEndpoint(Protocol):
    """A served reranker."""

    @property
    def info(self) -> ModelInfo:
        """The model as ListModels shows it."""
        ...

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Ranks the request's documents, best first."""
        ...

    async def close(self) -> None:
        """Releases what this endpoint holds."""
        ...


class CosineReranker:
    """The reranker role played by an embedder: cosine similarity, for profiles without a cross-encoder."""

    def __init__(self, config: RerankerConfig, embedder: EmbedderEndpoint) -> None:
        self._name = config.name
        self._embedder = embedder
        self._info = ModelInfo(
            name=config.name,
            role=ModelRole.RERANKER,
            backend="embedding-cosine",
            hosting=embedder.info.hosting,
            context_length=embedder.info.context_length,
            description=config.description,
        )

    @property
    def info(self) -> ModelInfo:
        """The reranker as ListModels shows it."""
        return self._info

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Asks the embedder to rank by cosine similarity, under this reranker's name."""
        return await self._embedder.rerank(dataclasses.replace(request, model=self._name))

    async def close(self) -> None:
        """Nothing of its own to release: the embedder is closed by its owner."""
