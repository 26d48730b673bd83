"""An embedder behind the priority scheduler: what both hostings (a Serve replica, in-process) run.

Queries and cosine reranking are interactive; an Embed request marked batch
(ingest's document embeddings) is cut into slices of
``scheduling.document_slice_texts`` texts that run only while no interactive
request waits, and its results are put back together in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from svc_inference.domain.embedder import PreparedEmbed
from svc_inference.domain.model import EmbedRequest, EmbedResult, Priority, RerankRequest, RerankResult
from svc_inference.domain.model_config import EmbedderConfig
from svc_inference.domain.scheduler import Lane, PriorityScheduler, SchedulerLimits, SchedulerStats, slices_of


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

    def twin(self) -> EmbeddingModel:
        """A copy of the model another thread may run at the same time."""
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
    """Embeds and ranks interactive requests first: between batch slices on one model thread, or, with
    ``scheduling.interactive_thread``, beside them on a second thread over a twin of the model."""

    def __init__(self, model: EmbeddingModel, *, merge: int) -> None:
        scheduling = model.config.scheduling
        self._model = model
        self._slice = scheduling.document_slice_texts
        self._executors = [ThreadPoolExecutor(1, thread_name_prefix=f"embed-{model.config.name}")]
        interactive_model = model
        interactive_executor = None
        if scheduling.interactive_thread:
            interactive_model = model.twin()
            interactive_executor = ThreadPoolExecutor(1, thread_name_prefix=f"query-{model.config.name}")
            self._executors.append(interactive_executor)
        self._scheduler = PriorityScheduler(
            model.config.name, limits_of(model.config, merge), self._executors[0], interactive_executor
        )
        self._embed_batch: Lane[PreparedEmbed, EmbedResult] = Lane("embed-batch", model.embed_batch)
        self._embed: Lane[PreparedEmbed, EmbedResult] = Lane("embed", interactive_model.embed_batch)
        self._rerank: Lane[RerankRequest, RerankResult] = Lane("rerank", interactive_model.rerank_batch)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Checks the request (it fails alone), then embeds it in its class's turn."""
        prepared = self._model.prepare(request)
        if request.priority is Priority.BATCH:
            return join(await self._scheduler.batch(self._embed_batch, split(prepared, self._slice)))
        return await self._scheduler.interactive(self._embed, prepared)

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Ranks by cosine similarity, ahead of batch work."""
        return await self._scheduler.interactive(self._rerank, request)

    def stats(self) -> SchedulerStats:
        """The scheduler's lines now."""
        return self._scheduler.stats()

    def close(self) -> None:
        """Ends every waiting request with UNAVAILABLE and stops the model threads."""
        self._scheduler.close()
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)
