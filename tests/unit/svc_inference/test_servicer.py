from __future__ import annotations

from typing import Any

import numpy as np

from mesh.priority import BATCH_METADATA
from ragmesh.inference.v1 import inference_service_pb2 as pb
from svc_inference.domain.endpoints import CosineReranker
from svc_inference.domain.model import (
    EmbedRequest,
    EmbedResult,
    ModelInfo,
    ModelRole,
    Priority,
    RerankRequest,
    RerankResult,
    ScoredDocument,
)
from svc_inference.domain.model_config import RerankerConfig
from svc_inference.domain.runtime import Defaults, ModelRuntime
from svc_inference.servicer import InferenceServiceServicer


class FakeEmbedder:
    info = ModelInfo("emb", ModelRole.EMBEDDER, "sentence-transformers", "inprocess", 256, dimensions=3)
    priorities: list[Priority] = []

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        self.priorities.append(request.priority)
        dense = np.eye(3, dtype=np.float32)[: len(request.texts)]
        return EmbedResult(request.model, dense, None, batch_size=len(request.texts))

    async def rerank(self, request: RerankRequest) -> RerankResult:
        return RerankResult(request.model, "embedding-cosine", (ScoredDocument(1, 0.8), ScoredDocument(0, 0.1)), 3)

    async def close(self) -> None:
        pass


class FakeLLM:
    info = ModelInfo("gen", ModelRole.LLM, "llamacpp", "inprocess", 512)

    async def generate(self, request: Any) -> Any:
        yield None

    async def stats(self) -> Any:
        return None

    async def close(self) -> None:
        pass


def _servicer() -> InferenceServiceServicer:
    embedder = FakeEmbedder()
    runtime = ModelRuntime(
        llms={"gen": FakeLLM()},
        embedders={"emb": embedder},
        rerankers={
            "cos": CosineReranker(RerankerConfig(name="cos", backend="embedding-cosine", embedder="emb"), embedder)
        },
        defaults=Defaults("gen", "emb", "cos"),
    )
    return InferenceServiceServicer(runtime)


async def test_embed_maps_request_and_response() -> None:
    response = await _servicer().Embed(pb.EmbedRequest(texts=["a", "b"]), None)  # type: ignore[arg-type]
    assert response.model == "emb" and response.dimensions == 3
    assert [list(e.dense) for e in response.embeddings] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


async def test_rerank_reports_method_and_order() -> None:
    response = await _servicer().Rerank(pb.RerankRequest(query="q", documents=["x", "y"]), None)  # type: ignore[arg-type]
    assert response.model == "cos" and response.method == "embedding-cosine"
    assert [r.index for r in response.results] == [1, 0]


async def test_list_models() -> None:
    response = await _servicer().ListModels(pb.ListModelsRequest(), None)  # type: ignore[arg-type]
    assert [(m.name, m.role, m.is_default) for m in response.models] == [
        ("gen", pb.MODEL_ROLE_LLM, True),
        ("emb", pb.MODEL_ROLE_EMBEDDER, True),
        ("cos", pb.MODEL_ROLE_RERANKER, True),
    ]


class FakeContext:
    """Just the request metadata of a servicer context."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


async def test_embed_takes_its_priority_from_the_call_metadata() -> None:
    FakeEmbedder.priorities = []
    servicer = _servicer()
    request = pb.EmbedRequest(texts=["a"])
    await servicer.Embed(request, FakeContext(BATCH_METADATA))  # type: ignore[arg-type]
    await servicer.Embed(request, FakeContext(()))  # type: ignore[arg-type]
    assert FakeEmbedder.priorities == [Priority.BATCH, Priority.INTERACTIVE]
