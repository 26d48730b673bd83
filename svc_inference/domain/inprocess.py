"""``hosting: inprocess``: the model role classes run inside the service process.

The very classes Ray Serve deploys, behind a bounded queue (AdmissionGate, or
for the embedder the priority scheduler) and model threads, so blocking model
calls never stall the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from svc_inference.domain.admission import AdmissionGate
from svc_inference.domain.embedder import Embedder
from svc_inference.domain.endpoints import CosineReranker, EmbedderEndpoint, LLMEndpoint, RerankerEndpoint
from svc_inference.domain.llm import LLM
from svc_inference.domain.model import (
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    GenerationChunk,
    GenerationStats,
    ModelInfo,
    RerankRequest,
    RerankResult,
)
from svc_inference.domain.model_config import EmbedderConfig, LLMConfig, Profile, RerankerConfig, ServingConfig
from svc_inference.domain.reranker import CrossEncoderReranker
from svc_inference.domain.runtime import Defaults, ModelRuntime
from svc_inference.domain.scheduled_embedder import ScheduledEmbedder
from svc_inference.domain.scheduler import SchedulerStats
from svc_inference.domain.sources import SourceSettings

HOSTING = "inprocess"


def _gate(name: str, serving: ServingConfig) -> AdmissionGate:
    return AdmissionGate(name, max_running=serving.inprocess_concurrency, max_waiting=serving.max_queued_requests)


class InProcessLLM:
    """An LLM running in this process."""

    def __init__(self, model: LLM) -> None:
        self._model = model
        self._gate = _gate(model.config.name, model.config.serving)
        self._info = dataclasses.replace(model.info(), hosting=HOSTING)

    @classmethod
    async def load(cls, config: LLMConfig, sources: SourceSettings) -> InProcessLLM:
        """Loads the model on a worker thread."""
        return cls(await asyncio.to_thread(LLM, config, sources))

    @property
    def info(self) -> ModelInfo:
        """The model as ListModels shows it."""
        return self._info

    async def generate(self, request: GenerateRequest) -> AsyncIterator[GenerationChunk]:
        """Streams a completion once the queue admits the request (interactive requests first)."""
        async with self._gate.admit(request.priority):
            async for chunk in self._model.generate(request):
                yield chunk

    async def stats(self) -> GenerationStats:
        """The backend's counters."""
        return self._model.stats()

    async def close(self) -> None:
        """Frees the model."""
        await asyncio.to_thread(self._model.close)


class _ThreadedModel(Protocol):
    """What ``_OnModelThreads`` needs of a model: its config, its info and a way to free it."""

    @property
    def config(self) -> EmbedderConfig | RerankerConfig:
        """The model's settings."""
        ...

    def info(self) -> ModelInfo:
        """The model as ListModels shows it."""
        ...

    def close(self) -> None:
        """Frees the model."""
        ...


_Model = TypeVar("_Model", bound=_ThreadedModel)
_Arg = TypeVar("_Arg")
_Result = TypeVar("_Result")


class _OnModelThreads(Generic[_Model]):
    """A model whose blocking calls run on its own threads once the queue admits them."""

    def __init__(self, model: _Model) -> None:
        serving = model.config.serving
        self._model = model
        self._gate = _gate(model.config.name, serving)
        self._executor = ThreadPoolExecutor(serving.inprocess_concurrency, thread_name_prefix=model.config.name)
        self._info = dataclasses.replace(model.info(), hosting=HOSTING)

    @property
    def info(self) -> ModelInfo:
        """The model as ListModels shows it."""
        return self._info

    async def _run(self, fn: Callable[[_Arg], _Result], arg: _Arg) -> _Result:
        async with self._gate.admit():
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, arg)

    async def close(self) -> None:
        """Stops the thread and drops the model."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model.close()


class InProcessEmbedder:
    """An embedder running in this process, on model threads behind the priority scheduler."""

    def __init__(self, model: Embedder) -> None:
        self._model = model
        self._scheduled = ScheduledEmbedder(model, merge=model.config.serving.max_batch_size)
        self._info = dataclasses.replace(model.info(), hosting=HOSTING)

    @classmethod
    async def load(cls, config: EmbedderConfig, sources: SourceSettings) -> InProcessEmbedder:
        """Loads the model on a worker thread."""
        return cls(await asyncio.to_thread(Embedder, config, sources))

    @property
    def info(self) -> ModelInfo:
        """The model as ListModels shows it."""
        return self._info

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Checks the request, then embeds it on the model's thread in its priority's turn."""
        return await self._scheduled.embed(request)

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Ranks by cosine similarity on the model's thread, ahead of batch work."""
        return await self._scheduled.rerank(request)

    async def queue_stats(self) -> SchedulerStats:
        """The scheduler's lines now."""
        return self._scheduled.stats()

    async def close(self) -> None:
        """Ends what waits, stops the thread and drops the model."""
        self._scheduled.close()
        self._model.close()


class InProcessReranker(_OnModelThreads[CrossEncoderReranker]):
    """A cross-encoder running in this process."""

    @classmethod
    async def load(cls, config: RerankerConfig, sources: SourceSettings) -> InProcessReranker:
        """Loads the model on a worker thread."""
        return cls(await asyncio.to_thread(CrossEncoderReranker, config, sources))

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Scores the request on the model's thread."""
        return await self._run(self._model.rerank, request)


async def open_inprocess_runtime(profile: Profile, sources: SourceSettings) -> ModelRuntime:
    """Loads every model of ``profile`` into this process, one after another (to keep the peak low)."""
    llms: dict[str, LLMEndpoint] = {}
    embedders: dict[str, EmbedderEndpoint] = {}
    rerankers: dict[str, RerankerEndpoint] = {}
    loaded: list[LLMEndpoint | EmbedderEndpoint | RerankerEndpoint] = []
    try:
        for llm in profile.llms:
            llms[llm.name] = await InProcessLLM.load(llm, sources)
            loaded.append(llms[llm.name])
        for embedder in profile.embedders:
            embedders[embedder.name] = await InProcessEmbedder.load(embedder, sources)
            loaded.append(embedders[embedder.name])
        for reranker in profile.rerankers:
            if reranker.backend == "embedding-cosine":
                rerankers[reranker.name] = CosineReranker(reranker, embedders[reranker.embedder])
            else:
                rerankers[reranker.name] = await InProcessReranker.load(reranker, sources)
                loaded.append(rerankers[reranker.name])
    except BaseException:
        for endpoint in loaded:
            await endpoint.close()
        raise
    return ModelRuntime(
        llms=llms,
        embedders=embedders,
        rerankers=rerankers,
        defaults=Defaults(profile.default_llm, profile.default_embedder, profile.default_reranker),
    )
