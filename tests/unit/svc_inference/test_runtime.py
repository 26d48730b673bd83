from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import numpy as np
import pytest

from mesh.errors import InvalidArgument, NotFound, ResourceExhausted
from svc_inference.domain.endpoints import CosineReranker
from svc_inference.domain.model import (
    EmbedRequest,
    EmbedResult,
    FinishReason,
    GenerateRequest,
    GenerationChunk,
    GenerationStats,
    GenerationSummary,
    ModelInfo,
    ModelRole,
    Priority,
    RerankRequest,
    RerankResult,
    ScoredDocument,
)
from svc_inference.domain.model_config import RerankerConfig
from svc_inference.domain.runtime import Defaults, ModelRuntime


class FakeLLM:
    def __init__(self, name: str, *, busy: bool = False) -> None:
        self.info = ModelInfo(name, ModelRole.LLM, "llamacpp", "inprocess", 512)
        self.seen: list[GenerateRequest] = []
        self.busy = busy

    async def generate(self, request: GenerateRequest) -> AsyncIterator[GenerationChunk]:
        if self.busy:
            raise ResourceExhausted("busy", reason="QUEUE_FULL")
        self.seen.append(request)
        yield GenerationChunk(delta="hi")
        yield GenerationChunk(summary=GenerationSummary(self.info.name, 3, 1, FinishReason.STOP, 12.0, 0.0, 20.0))

    async def stats(self) -> GenerationStats:
        return GenerationStats(started=len(self.seen))

    async def close(self) -> None:
        pass


class FakeEmbedder:
    def __init__(self, name: str) -> None:
        self.info = ModelInfo(name, ModelRole.EMBEDDER, "sentence-transformers", "inprocess", 256, dimensions=2)
        self.reranked: list[RerankRequest] = []

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        dense = np.ones((len(request.texts), 2), dtype=np.float32) / np.sqrt(2)
        return EmbedResult(request.model, dense, None, batch_size=len(request.texts))

    async def rerank(self, request: RerankRequest) -> RerankResult:
        self.reranked.append(request)
        return RerankResult(request.model, "embedding-cosine", (ScoredDocument(0, 1.0),), batch_size=2)

    async def close(self) -> None:
        pass


def _runtime(llm: FakeLLM | None = None) -> tuple[ModelRuntime, FakeEmbedder]:
    embedder = FakeEmbedder("emb")
    cosine = CosineReranker(RerankerConfig(name="emb-cosine", backend="embedding-cosine", embedder="emb"), embedder)
    runtime = ModelRuntime(
        llms={"gen": llm or FakeLLM("gen"), "other": FakeLLM("other")},
        embedders={"emb": embedder},
        rerankers={"emb-cosine": cosine},
        defaults=Defaults("gen", "emb", "emb-cosine"),
    )
    return runtime, embedder


async def _collect(runtime: ModelRuntime, request: GenerateRequest) -> list[GenerationChunk]:
    return [chunk async for chunk in runtime.generate(request)]


async def test_empty_model_name_means_the_default_and_is_resolved() -> None:
    llm = FakeLLM("gen")
    runtime, _ = _runtime(llm)
    chunks = await _collect(runtime, GenerateRequest(prompt="x"))
    assert [c.delta for c in chunks] == ["hi", ""]
    assert llm.seen[0].model == "gen"


@pytest.mark.parametrize("call", ["generate", "embed", "rerank"])
async def test_unknown_models_are_not_found(call: str) -> None:
    runtime, _ = _runtime()
    with pytest.raises(NotFound) as info:
        if call == "generate":
            await _collect(runtime, GenerateRequest(model="nope", prompt="x"))
        elif call == "embed":
            await runtime.embed(EmbedRequest(texts=("a",), model="nope"))
        else:
            await runtime.rerank(RerankRequest(query="q", documents=("d",), model="nope"))
    assert info.value.reason == "MODEL_NOT_FOUND"
    assert info.value.metadata == {"model": "nope"}


async def test_an_llm_name_is_not_an_embedder() -> None:
    runtime, _ = _runtime()
    with pytest.raises(NotFound):
        await runtime.embed(EmbedRequest(texts=("a",), model="gen"))


async def test_bad_input_is_refused_before_the_backend() -> None:
    llm = FakeLLM("gen")
    runtime, _ = _runtime(llm)
    with pytest.raises(InvalidArgument):
        await _collect(runtime, GenerateRequest(prompt="  "))
    with pytest.raises(InvalidArgument):
        await _collect(runtime, GenerateRequest(prompt="x", json_schema="{nope"))
    with pytest.raises(InvalidArgument):
        await _collect(runtime, GenerateRequest(prompt="x", json_schema='{"type": "integer", "maximum": 3}'))
    assert llm.seen == []


async def test_cosine_reranker_asks_its_embedder_under_its_own_name() -> None:
    runtime, embedder = _runtime()
    result = await runtime.rerank(RerankRequest(query="q", documents=("d",)))
    assert embedder.reranked[0].model == "emb-cosine"
    assert result.method == "embedding-cosine"


def test_list_models_marks_defaults() -> None:
    runtime, _ = _runtime()
    models = {m.name: m for m in runtime.list_models()}
    assert {n for n, m in models.items() if m.is_default} == {"gen", "emb", "emb-cosine"}
    assert models["emb-cosine"].role is ModelRole.RERANKER
    assert models["emb-cosine"].hosting == "inprocess"


class FakeObserver:
    """Records what the runtime reports, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def request_started(self, model: str, priority: Priority) -> None:
        self.events.append(("started", model, priority))

    def request_ended(self, model: str, priority: Priority) -> None:
        self.events.append(("ended", model, priority))

    def rejected(self, model: str, reason: str) -> None:
        self.events.append(("rejected", model, reason))

    def generation_ended(self, model: str, outcome: str) -> None:
        self.events.append(("generation", model, outcome))

    def batch(self, model: str, size: int) -> None:
        self.events.append(("batch", model, size))

    def generation_summary(self, summary: GenerationSummary) -> None:
        self.events.append(("summary", summary.model, summary.completion_tokens))


async def test_the_observer_hears_what_the_backends_report() -> None:
    runtime, _ = _runtime()
    observer = FakeObserver()
    runtime.observer = observer
    await _collect(runtime, GenerateRequest(prompt="x"))
    names = [e[0] for e in observer.events]
    assert names == ["started", "summary", "ended", "generation"]
    assert observer.events[-1] == ("generation", "gen", "stop")
    runtime_busy = ModelRuntime(
        llms={"busy": FakeLLM("busy", busy=True)},
        embedders={"emb": FakeEmbedder("emb")},
        rerankers={
            "r": CosineReranker(
                RerankerConfig(name="r", backend="embedding-cosine", embedder="emb"), FakeEmbedder("emb")
            )
        },
        defaults=Defaults("busy", "emb", "r"),
        observer=observer,
    )
    observer.events.clear()
    with pytest.raises(ResourceExhausted):
        await _collect(runtime_busy, GenerateRequest(prompt="x"))
    # A refused request is counted as refused, not as a generation, and leaves the queue.
    assert [e[0] for e in observer.events] == ["started", "rejected", "ended"]
    assert observer.events[1] == ("rejected", "busy", "QUEUE_FULL")


def test_defaults_must_be_served() -> None:
    embedder = FakeEmbedder("emb")
    with pytest.raises(ValueError, match="not served"):
        ModelRuntime(llms={}, embedders={"emb": embedder}, rerankers={}, defaults=Defaults("gen", "emb", "r"))
    assert dataclasses.is_dataclass(Defaults)
