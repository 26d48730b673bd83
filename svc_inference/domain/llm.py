"""The LLM model role: one plain class that Ray Serve deploys and ``hosting: inprocess`` calls directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from mesh.errors import MeshError
from svc_inference.domain.model import (
    FinishReason,
    GenerateRequest,
    GenerationChunk,
    GenerationStats,
    ModelInfo,
    ModelRole,
)
from svc_inference.domain.model_config import LLMConfig
from svc_inference.domain.plan import GenerationPlan, make_plan
from svc_inference.domain.sources import SourceSettings, resolve
from svc_inference.domain.stats import GenerationCounters
from svc_inference.domain.structured import validation_error


class GenerationBackend(Protocol):
    """What the LLM role needs from llama.cpp or vLLM."""

    name: str
    unenforceable: frozenset[str]

    @property
    def context_length(self) -> int:
        """Tokens of context, prompt plus completion."""
        ...

    def stream(self, plan: GenerationPlan, counters: GenerationCounters) -> AsyncIterator[GenerationChunk]:
        """Generates for ``plan``; the last chunk carries the summary."""
        ...

    async def check_health(self) -> None:
        """Raises when the backend can no longer serve."""
        ...

    def close(self) -> None:
        """Frees the model."""
        ...


def make_backend(config: LLMConfig, sources: SourceSettings) -> GenerationBackend:
    """The backend ``config`` names, with its model loaded."""
    if config.backend == "llamacpp":
        from svc_inference.domain.llamacpp import LlamaCppBackend

        return LlamaCppBackend(config, resolve(config.source, sources))
    from svc_inference.domain.vllm_backend import VLLMBackend, import_vllm

    import_vllm()  # fails with the reason before a model path is even looked at
    return VLLMBackend(config, resolve(config.source, sources))


class LLM:
    """Generates text with one model: chat templates, sampling defaults, schema constraints, counters."""

    def __init__(self, config: LLMConfig, sources: SourceSettings) -> None:
        self.config = config
        self._counters = GenerationCounters()
        self._backend = make_backend(config, sources)

    def info(self) -> ModelInfo:
        """How ListModels describes this model (hosting is filled in by whoever hosts it)."""
        return ModelInfo(
            name=self.config.name,
            role=ModelRole.LLM,
            backend=self._backend.name,
            hosting="",
            context_length=self._backend.context_length,
            description=self.config.description,
        )

    def plan(self, request: GenerateRequest) -> GenerationPlan:
        """Checks and resolves a request without running it (raises INVALID_ARGUMENT for bad input)."""
        return make_plan(self.config, request, unenforceable=self._backend.unenforceable, backend=self._backend.name)

    async def generate(self, request: GenerateRequest) -> AsyncIterator[GenerationChunk]:
        """Streams the completion; the last chunk carries usage, timings and the finish reason."""
        plan = self.plan(request)
        parts: list[str] | None = [] if plan.schema is not None else None
        async for chunk in self._backend.stream(plan, self._counters):
            if parts is not None:
                parts.append(chunk.delta)
                summary = chunk.summary
                if plan.schema is not None and summary is not None and summary.finish_reason is FinishReason.STOP:
                    error = validation_error(plan.schema, "".join(parts))
                    if error is not None:
                        # The grammar should make this impossible; if it happens it is a bug, not bad input.
                        raise MeshError(
                            f"constrained generation produced output that does not match the schema: {error}",
                            reason="SCHEMA_VIOLATION",
                            metadata={"model": self.config.name},
                        )
            yield chunk

    def stats(self) -> GenerationStats:
        """Counters of this backend: started, completed, cancelled, failed, tokens generated, active, waiting."""
        return self._counters.snapshot()

    async def check_health(self) -> None:
        """Raises when the backend can no longer serve (Serve's health check calls this)."""
        await self._backend.check_health()

    def close(self) -> None:
        """Frees the model."""
        self._backend.close()
