"""The embedder behind the scheduler, with a fake model: batch requests are sliced and put back in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from mesh.errors import ResourceExhausted
from svc_inference.domain.embedder import PreparedEmbed
from svc_inference.domain.model import (
    EmbedMode,
    EmbedRequest,
    EmbedResult,
    Priority,
    RerankRequest,
    RerankResult,
    SparseVector,
)
from svc_inference.domain.model_config import EmbedderConfig, ModelSource, SchedulingConfig, ServingConfig
from svc_inference.domain.scheduled_embedder import ScheduledEmbedder, join, split

CONFIG = EmbedderConfig(
    name="fake-embedder",
    source=ModelSource(kind="none"),
    dimensions=2,
    max_tokens=16,
    serving=ServingConfig(max_ongoing_requests=16, max_batch_size=4),
    scheduling=SchedulingConfig(document_slice_texts=3, max_waiting_interactive=4, max_waiting_batch=1),
)


class FakeEmbeddingModel:
    """Embeds text ``"<n>"`` as the vector (n, 1); records the texts of each model call."""

    config = CONFIG

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def prepare(self, request: EmbedRequest) -> PreparedEmbed:
        return PreparedEmbed(request=request, inputs=tuple(request.texts))

    def embed_batch(self, prepared: Sequence[PreparedEmbed]) -> list[EmbedResult]:
        self.calls.append([t for p in prepared for t in p.inputs])
        out = []
        for p in prepared:
            dense = np.array([[float(t), 1.0] for t in p.inputs], dtype=np.float32)
            sparse = tuple(SparseVector((int(t),), (1.0,)) for t in p.inputs)
            out.append(EmbedResult(CONFIG.name, dense, sparse, batch_size=len(self.calls[-1])))
        return out

    def rerank_batch(self, requests: Sequence[RerankRequest]) -> list[RerankResult]:
        raise AssertionError("not used")

    def twin(self) -> FakeEmbeddingModel:
        return self


@pytest.fixture
def embedder_of() -> Iterator[list[ScheduledEmbedder]]:
    made: list[ScheduledEmbedder] = []
    yield made
    for embedder in made:
        embedder.close()


def _scheduled(model: FakeEmbeddingModel, made: list[ScheduledEmbedder]) -> ScheduledEmbedder:
    made.append(ScheduledEmbedder(model, merge=4))
    return made[-1]


async def test_a_batch_request_runs_in_slices_and_comes_back_whole(embedder_of: list[ScheduledEmbedder]) -> None:
    model = FakeEmbeddingModel()
    embedder = _scheduled(model, embedder_of)
    texts = tuple(str(i) for i in range(8))
    request = EmbedRequest(texts, mode=EmbedMode.DOCUMENT, include_sparse=True, priority=Priority.BATCH)
    result = await embedder.embed(request)
    assert model.calls == [["0", "1", "2"], ["3", "4", "5"], ["6", "7"]]
    assert result.dense[:, 0].tolist() == list(range(8))
    assert result.sparse is not None and [v.indices[0] for v in result.sparse] == list(range(8))
    # The same request as interactive work is one model call.
    model.calls.clear()
    interactive = await embedder.embed(EmbedRequest(texts, mode=EmbedMode.QUERY))
    assert model.calls == [list(texts)]
    np.testing.assert_array_equal(interactive.dense, result.dense)


async def test_batch_requests_beyond_the_line_are_refused(embedder_of: list[ScheduledEmbedder]) -> None:
    model = FakeEmbeddingModel()
    embedder = _scheduled(model, embedder_of)
    batch = EmbedRequest(tuple(str(i) for i in range(6)), priority=Priority.BATCH)
    first = asyncio.create_task(embedder.embed(batch))
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted):
        await embedder.embed(batch)
    await first
    assert embedder.stats().rejected_batch == 1


def test_split_and_join_keep_order_and_the_request_fields() -> None:
    request = EmbedRequest(("1", "2", "3", "4"), model="m", mode=EmbedMode.DOCUMENT, priority=Priority.BATCH)
    prepared = PreparedEmbed(request=request, inputs=("p1", "p2", "p3", "p4"))
    parts = split(prepared, 3)
    assert [p.request.texts for p in parts] == [("1", "2", "3"), ("4",)]
    assert [p.inputs for p in parts] == [("p1", "p2", "p3"), ("p4",)]
    assert all(p.request.model == "m" and p.request.priority is Priority.BATCH for p in parts)
    assert split(prepared, 4) == [prepared]
    results = [
        EmbedResult("m", np.ones((3, 2), dtype=np.float32), None, batch_size=3),
        EmbedResult("m", np.zeros((1, 2), dtype=np.float32), None, batch_size=1),
    ]
    joined = join(results)
    assert joined.dense.shape == (4, 2) and joined.sparse is None and joined.batch_size == 3
