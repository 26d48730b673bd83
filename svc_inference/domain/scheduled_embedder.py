"""An embedder behind the priority scheduler: what both hostings (a Serve replica, in-process) run.

Queries and cosine reranking are interactive; an Embed request marked batch
(ingest's document embeddings) is cut into slices of
``scheduling.document_slice_texts`` texts that run only while no interactive
request waits, and its results are put back together in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Protocol

import numpy as np

from svc_inference.domain.embedder import PreparedEmbed
from svc_inference.domain.model_config import EmbedderConfig
from svc_inference.domain.scheduler import Lane, PriorityScheduler, SchedulerLimits, SchedulerStats, slices_of
from svc_inference.domain.types import EmbedRequest, EmbedResult, Priority, RerankRequest, RerankResult


class EmbeddingModel(Protocol):
    """What the scheduler needs of an embedder (the real Embedder, or a fake in unit tests)."""

    @property
    def config(self) -> EmbedderConfig:
        """The model's settings."""
        ...

    def prepare(self, request: EmbedRequest) -> PreparedEmbed:
        """Checks one request; raises INVALID_ARGUMENT."""
        ...

    def embed_batch(self, prepared: Sequence[PreparedEmbed]) -> list[EmbedResult]:
        """Embeds several checked requests in one model call."""
        ...

    def rerank_batch(self, requests: Sequence[RerankRequest]) -> list[RerankResult]:
        """Ranks several requests by cosine similarity in one model call."""
        ...


def limits_of(config: EmbedderConfig, serving_batch_size: int) -> SchedulerLimits:
    """The scheduler limits an embedder config asks for."""
    return SchedulerLimits(
        max_waiting_interactive=config.scheduling.max_waiting_interactive,
        max_waiting_batch=config.scheduling.max_waiting_batch,
        max_interactive_merge=serving_batch_size,
    )


def split(prepared: PreparedEmbed, size: int) -> list[PreparedEmbed]:
    """``prepared`` cut into requests of at most ``size`` texts, in order."""
    if len(prepared.inputs) <= size:
        return [prepared]
    texts = prepared.request.texts
    return [
        PreparedEmbed(
            request=dataclasses.replace(prepared.request, texts=tuple(texts[r.start : r.stop])),
            inputs=prepared.inputs[r.start : r.stop],
        )
        for r in slices_of(len(prepared.inputs), size)
    ]


def join(parts: Sequence[EmbedResult]) -> EmbedResult:
    """The results of a request's slices as one result, in order."""
    if len(parts) == 1:
        return parts[0]
    sparse = None
    if all(p.sparse is not None for p in parts):
        sparse = tuple(v for p in parts for v in (p.sparse or ()))
    return EmbedResult(
        model=parts[0].model,
        dense=np.concatenate([p.dense for p in parts], axis=0),
        sparse=sparse,
        batch_size=max(p.batch_size for p in parts),
    )


class ScheduledEmbedder:
    """Embeds and ranks on one model thread, interactive requests first."""

    def __init__(self, model: EmbeddingModel, executor: Executor, *, merge: int) -> None:
        self._model = model
        self._slice = model.config.scheduling.document_slice_texts
        self._scheduler = PriorityScheduler(model.config.name, limits_of(model.config, merge), executor)
        self._embed: Lane[PreparedEmbed, EmbedResult] = Lane("embed", model.embed_batch)
        self._rerank: Lane[RerankRequest, RerankResult] = Lane("rerank", model.rerank_batch)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Checks the request (it fails alone), then embeds it in its class's turn."""
        prepared = self._model.prepare(request)
        if request.priority is Priority.BATCH:
            return join(await self._scheduler.batch(self._embed, split(prepared, self._slice)))
        return await self._scheduler.interactive(self._embed, prepared)

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Ranks by cosine similarity, ahead of batch work."""
        return await self._scheduler.interactive(self._rerank, request)

    def stats(self) -> SchedulerStats:
        """The scheduler's lines now."""
        return self._scheduler.stats()

    def close(self) -> None:
        """Ends every waiting request with UNAVAILABLE."""
        self._scheduler.close()
