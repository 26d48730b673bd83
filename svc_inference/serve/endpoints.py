"""Endpoints that call Ray Serve deployments through DeploymentHandles (streaming handles for generation).

Handles are made once and reused for every call. A generation stream the
caller abandons (cancelled RPC, passed deadline, closed iterator) is cancelled
in Serve, which cancels the replica's generator and so stops the model. Each request
call hands the replica the current trace context, so its span joins the request's trace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from mesh import telemetry
from mesh.errors import ResourceExhausted
from svc_inference.domain.model import (
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    GenerationChunk,
    GenerationStats,
    ModelInfo,
    Priority,
    RerankRequest,
    RerankResult,
)
from svc_inference.domain.model_config import EmbedderConfig
from svc_inference.domain.scheduler import SchedulerStats
from svc_inference.serve.errors import to_mesh_error

HOSTING = "serve"


def served_info(info: ModelInfo) -> ModelInfo:
    """``info`` as reported by a replica, marked as served by Ray Serve."""
    return dataclasses.replace(info, hosting=HOSTING)


class _ServeEndpoint:
    """What every deployment endpoint shares: its handle, its info and the mapping of Serve errors."""

    def __init__(self, handle: Any, info: ModelInfo) -> None:
        self._handle = handle
        self._info = served_info(info)

    @property
    def info(self) -> ModelInfo:
        """The model as ListModels shows it."""
        return self._info

    async def _call(self, method: Any, *args: Any) -> Any:
        """Calls ``method`` on a replica, its failures mapped to mesh errors."""
        try:
            return await method.remote(*args)
        except Exception as exc:
            raise to_mesh_error(exc, self._info.name) from exc

    async def pid(self) -> int:
        """The process id of the replica that answers."""
        pid: int = await self._handle.pid.remote()
        return pid

    async def close(self) -> None:
        """Nothing to release: the deployment outlives this service's connection."""


class ServeLLM(_ServeEndpoint):
    """An LLM deployment."""

    def __init__(self, handle: Any, info: ModelInfo) -> None:
        super().__init__(handle, info)
        self._generate = handle.options(stream=True).generate_traced
        self._stats = handle.stats

    async def generate(self, request: GenerateRequest) -> AsyncIterator[GenerationChunk]:
        """Streams chunks from a replica as it produces them."""
        response = self._generate.remote(request, telemetry.carrier())
        finished = False
        try:
            async for chunk in response:
                yield chunk
            finished = True
        except Exception as exc:
            finished = True
            raise to_mesh_error(exc, self._info.name) from exc
        finally:
            if not finished:
                response.cancel()

    async def stats(self) -> GenerationStats:
        """The counters of the replica that answers (tests run one replica)."""
        stats: GenerationStats = await self._call(self._stats)
        return stats


class ServeEmbedder(_ServeEndpoint):
    """An embedder deployment (it also ranks by cosine similarity), and optionally one for batch work only."""

    def __init__(self, handle: Any, info: ModelInfo, documents: Any = None, max_interactive: int = 0) -> None:
        super().__init__(handle, info)
        self._embed = handle.embed_request
        self._rerank = handle.rerank_request
        self._queue_stats = handle.queue_stats
        # Batch (ingest) requests go to the documents deployment when the model config gives it one.
        self._embed_batch = documents.embed_request if documents is not None else self._embed
        self._max_interactive = max_interactive
        self._interactive = 0

    @property
    def interactive_in_flight(self) -> int:
        """Interactive calls (query embeddings, reranking) this process has sent and not had answered."""
        return self._interactive

    async def _interactive_call(self, method: Any, *args: Any) -> Any:
        """A call a person waits on: refused here at once when the replicas' interactive lines are full.

        The replicas would refuse it too, but only after the trip through Serve's router and the replica's
        event loop: at 64 concurrent callers on 2 cores those refusals took 280 ms (p50) to 880 ms, where
        the caller should learn it in microseconds.
        """
        if self._max_interactive and self._interactive >= self._max_interactive:
            raise ResourceExhausted(
                f"model {self._info.name} is busy: {self._interactive} interactive requests are in flight "
                f"(at most {self._max_interactive}: its replicas' running and waiting lines); retry later",
                reason="QUEUE_FULL",
                metadata={"model": self._info.name, "priority": Priority.INTERACTIVE.value},
            )
        self._interactive += 1
        try:
            return await self._call(method, *args)
        finally:
            self._interactive -= 1

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Embeds on a replica, in its priority's turn there."""
        if request.priority is Priority.BATCH:
            result: EmbedResult = await self._call(self._embed_batch, request, telemetry.carrier())
        else:
            result = await self._interactive_call(self._embed, request, telemetry.carrier())
        return result

    async def queue_stats(self) -> SchedulerStats:
        """The scheduler lines of the (query) replica that answers."""
        stats: SchedulerStats = await self._call(self._queue_stats)
        return stats

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Ranks by cosine similarity on a replica."""
        result: RerankResult = await self._interactive_call(self._rerank, request, telemetry.carrier())
        return result


def interactive_capacity(model: EmbedderConfig) -> int:
    """Interactive requests an embedder's replicas hold at most: per replica, one merged model call
    (``serving.max_batch_size`` requests) running and ``scheduling.max_waiting_interactive`` waiting."""
    return model.serving.max_replicas * (model.serving.max_batch_size + model.scheduling.max_waiting_interactive)


class ServeReranker(_ServeEndpoint):
    """A cross-encoder deployment."""

    def __init__(self, handle: Any, info: ModelInfo) -> None:
        super().__init__(handle, info)
        self._rerank = handle.rerank_request

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Scores on a replica, batched there with concurrent requests."""
        result: RerankResult = await self._call(self._rerank, request, telemetry.carrier())
        return result
