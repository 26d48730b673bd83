"""ServeEmbedder over a fake deployment handle: a call a person waits on is refused at once when the
replicas' interactive lines are full, without the trip to a replica; batch work is never refused here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mesh.errors import ResourceExhausted
from svc_inference.domain.model import EmbedMode, EmbedRequest, ModelInfo, ModelRole, Priority, RerankRequest
from svc_inference.domain.model_config import EmbedderConfig, load_model
from svc_inference.serve.endpoints import ServeEmbedder, interactive_capacity

MODELS = Path(__file__).resolve().parents[3] / "svc_inference" / "models"


class FakeMethod:
    """A handle method whose calls wait until released; counts the calls that reached it."""

    def __init__(self) -> None:
        self.reached = 0
        self.release = asyncio.Event()

    def remote(self, *args: Any) -> Any:
        self.reached += 1

        async def answer() -> str:
            await self.release.wait()
            return "done"

        return answer()


class FakeHandle:
    def __init__(self) -> None:
        self.embed_request = FakeMethod()
        self.rerank_request = FakeMethod()
        self.queue_stats = FakeMethod()


INFO = ModelInfo(name="minilm", role=ModelRole.EMBEDDER, backend="fake", hosting="serve", context_length=256)


async def test_interactive_calls_past_the_replicas_lines_are_refused_at_once() -> None:
    handle = FakeHandle()
    embedder = ServeEmbedder(handle, INFO, max_interactive=3)
    query = EmbedRequest(texts=("q",), mode=EmbedMode.QUERY)
    running = [asyncio.create_task(embedder.embed(query)) for _ in range(2)]
    running.append(asyncio.create_task(embedder.rerank(RerankRequest(query="q", documents=("a",)))))
    await asyncio.sleep(0)
    assert embedder.interactive_in_flight == 3

    with pytest.raises(ResourceExhausted) as refused:
        await embedder.embed(query)
    assert refused.value.reason == "QUEUE_FULL"
    assert handle.embed_request.reached == 2  # the refused call never went to a replica

    # Batch work has its own line in the replica (and its own back-off): it is not counted or refused here.
    batch = asyncio.create_task(embedder.embed(EmbedRequest(texts=("d",), priority=Priority.BATCH)))
    await asyncio.sleep(0)
    assert handle.embed_request.reached == 3

    handle.embed_request.release.set()
    handle.rerank_request.release.set()
    assert await asyncio.gather(*running, batch) == ["done"] * 4
    assert embedder.interactive_in_flight == 0
    assert await embedder.embed(query) == "done"


async def test_no_bound_means_every_call_goes_to_the_replicas() -> None:
    handle = FakeHandle()
    embedder = ServeEmbedder(handle, INFO)
    calls = [asyncio.create_task(embedder.embed(EmbedRequest(texts=("q",)))) for _ in range(100)]
    await asyncio.sleep(0)
    assert handle.embed_request.reached == 100
    handle.embed_request.release.set()
    await asyncio.gather(*calls)


def test_the_bound_is_what_the_replicas_hold() -> None:
    model = load_model(MODELS / "embedder" / "all-minilm-l6-v2.yaml")
    assert isinstance(model, EmbedderConfig)
    # One replica: one merged call of 8 running, 32 waiting.
    assert interactive_capacity(model) == 1 * (8 + 32)
