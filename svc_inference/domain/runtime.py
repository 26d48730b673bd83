"""The served models by name and role: request routing, fast input checks and what they report.

The servicer talks only to this. It resolves a model name (empty means the
role's default; an unknown one is NOT_FOUND), refuses input it can judge
without a model before any backend time is spent, and reports what the backends
report to its observer (svc_inference.domain.observer; the service records
them as metrics).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from mesh.errors import MeshError, NotFound, ResourceExhausted
from svc_inference.domain.chat_templates import check_not_empty
from svc_inference.domain.endpoints import EmbedderEndpoint, LLMEndpoint, RerankerEndpoint
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
from svc_inference.domain.observer import InferenceObserver, NullObserver
from svc_inference.domain.scheduler import SchedulerStats
from svc_inference.domain.structured import LLAMACPP_UNENFORCEABLE, check_enforceable, parse_schema
from svc_inference.domain.vllm_backend import VLLM_UNENFORCEABLE

E = TypeVar("E", LLMEndpoint, EmbedderEndpoint, RerankerEndpoint)

_UNENFORCEABLE = {"llamacpp": LLAMACPP_UNENFORCEABLE, "vllm": VLLM_UNENFORCEABLE}


@dataclasses.dataclass(frozen=True)
class Defaults:
    """The model used when a request names none, per role."""

    llm: str
    embedder: str
    reranker: str


class ModelRuntime:
    """Every model the service serves, reachable by name."""

    def __init__(
        self,
        *,
        llms: Mapping[str, LLMEndpoint],
        embedders: Mapping[str, EmbedderEndpoint],
        rerankers: Mapping[str, RerankerEndpoint],
        defaults: Defaults,
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
        observer: InferenceObserver | None = None,
    ) -> None:
        self._llms = dict(llms)
        self.observer: InferenceObserver = observer or NullObserver()
        self._embedders = dict(embedders)
        self._rerankers = dict(rerankers)
        self._defaults = defaults
        self._on_close = list(on_close)
        for name, group in (
            (defaults.llm, self._llms),
            (defaults.embedder, self._embedders),
            (defaults.reranker, self._rerankers),
        ):
            if name not in group:
                raise ValueError(f"default model {name!r} is not served")

    def list_models(self) -> list[ModelInfo]:
        """Every served model, LLMs first, with the role defaults marked."""
        defaults = {self._defaults.llm, self._defaults.embedder, self._defaults.reranker}
        out: list[ModelInfo] = []
        for group in (self._llms, self._embedders, self._rerankers):
            for endpoint in group.values():
                info = endpoint.info
                out.append(dataclasses.replace(info, is_default=info.name in defaults))
        return out

    def llm(self, name: str) -> LLMEndpoint:
        """The LLM called ``name`` (empty: the default); NOT_FOUND otherwise."""
        return _pick(self._llms, name or self._defaults.llm, "LLM")

    async def generate(self, request: GenerateRequest) -> AsyncIterator[GenerationChunk]:
        """Streams a completion from the named LLM, reporting it to the observer."""
        endpoint = self.llm(request.model)
        model = endpoint.info.name
        # What needs no model is refused here, before a Serve round trip or a queue slot.
        check_not_empty(request.prompt, request.messages)
        schema = parse_schema(request.json_schema)
        if schema is not None:
            backend = endpoint.info.backend
            check_enforceable(schema, _UNENFORCEABLE.get(backend, frozenset()), backend)
        observer = self.observer
        observer.request_started(model, request.priority)
        outcome = "cancelled"
        try:
            async for chunk in endpoint.generate(dataclasses.replace(request, model=model)):
                if chunk.summary is not None:
                    outcome = chunk.summary.finish_reason.value
                    observer.generation_summary(chunk.summary)
                yield chunk
        except ResourceExhausted as exc:
            outcome = "rejected"
            observer.rejected(model, exc.reason)
            raise
        except MeshError:
            outcome = "error"
            raise
        finally:
            observer.request_ended(model, request.priority)
            if outcome != "rejected":
                observer.generation_ended(model, outcome)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Embeds with the named embedder."""
        endpoint = _pick(self._embedders, request.model or self._defaults.embedder, "embedding model")
        model = endpoint.info.name
        call = endpoint.embed(dataclasses.replace(request, model=model))
        result = await _tracked(self.observer, model, call, request.priority)
        self.observer.batch(model, result.batch_size)
        return result

    async def rerank(self, request: RerankRequest) -> RerankResult:
        """Ranks with the named reranker."""
        endpoint = _pick(self._rerankers, request.model or self._defaults.reranker, "reranker")
        model = endpoint.info.name
        result = await _tracked(self.observer, model, endpoint.rerank(dataclasses.replace(request, model=model)))
        self.observer.batch(model, result.batch_size)
        return result

    async def stats(self, model: str = "") -> GenerationStats:
        """The counters of the named LLM's backend."""
        return await self.llm(model).stats()

    async def queue_stats(self, model: str = "") -> SchedulerStats:
        """The priority scheduler's lines of the named embedder (one replica's, when served by Ray Serve)."""
        return await _pick(self._embedders, model or self._defaults.embedder, "embedding model").queue_stats()

    async def close(self) -> None:
        """Closes every endpoint, then runs the hosting's own clean-up."""
        for group in (self._rerankers, self._embedders, self._llms):
            for endpoint in group.values():
                await endpoint.close()
        for close in self._on_close:
            await close()


T = TypeVar("T")


async def _tracked(
    observer: InferenceObserver, model: str, call: Awaitable[T], priority: Priority = Priority.INTERACTIVE
) -> T:
    observer.request_started(model, priority)
    try:
        return await call
    except ResourceExhausted as exc:
        observer.rejected(model, exc.reason)
        raise
    finally:
        observer.request_ended(model, priority)


def _pick(group: Mapping[str, E], name: str, what: str) -> E:
    endpoint = group.get(name)
    if endpoint is None:
        raise NotFound(
            f"no {what} named {name!r}; this service has {sorted(group)}",
            reason="MODEL_NOT_FOUND",
            metadata={"model": name},
        )
    return endpoint
