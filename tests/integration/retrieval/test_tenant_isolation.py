"""Property: no Search, GetChunk or ExploreGraph ever returns another tenant's data.

Hypothesis generates corpora for several tenants from one small shared
vocabulary, with colliding document ids and often identical text, ingests them
into the real stores through IndexService, and then searches, fetches and
explores as every tenant with queries from the same words. Every chunk,
document and entity that comes back must be the caller's own.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.settings import MeshSettings
from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_retrieval.config import Config
from svc_retrieval.domain.ids import chunk_hash, normalize_entity, point_id
from svc_retrieval.domain.model import ChunkInput, DocumentMeta
from tests.integration.retrieval.conftest import MiniLm, Served, serve_retrieval

pytestmark = pytest.mark.integration

T = TypeVar("T")

VOCAB = [
    "pod", "node", "taint", "toleration", "kubelet", "scheduler", "service", "volume", "secret", "ingress",
    "deployment", "replica", "eviction", "pressure", "image", "garbage", "namespace", "quota", "label", "probe",
]  # fmt: skip
LEGS = [common_pb2.RETRIEVAL_LEG_DENSE, common_pb2.RETRIEVAL_LEG_SPARSE, common_pb2.RETRIEVAL_LEG_GRAPH]


class LoopThread:
    """An event loop on its own thread, so hypothesis can drive async gRPC calls from a sync test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 300.0) -> T:
        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, settings: MeshSettings, minilm: MiniLm
) -> Iterator[tuple[LoopThread, Served]]:
    runner = LoopThread()
    config = Config(
        vector_backend="edge", edge_path=Path(tmp_path_factory.mktemp("iso")) / "qdrant", graph_timeout_s=30.0
    )
    holder: dict[str, Any] = {}
    opened = asyncio.Event()
    done = asyncio.Event()

    async def keep_serving() -> None:
        async with serve_retrieval(config, settings, minilm) as served:
            holder["served"] = served
            opened.set()
            await done.wait()

    task = asyncio.run_coroutine_threadsafe(keep_serving(), runner.loop)
    runner.run(opened.wait)
    try:
        yield runner, holder["served"]
    finally:
        runner.loop.call_soon_threadsafe(done.set)
        task.result(60)
        runner.stop()


words = st.lists(st.sampled_from(VOCAB), min_size=3, max_size=10).map(" ".join)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    chunks = draw(st.lists(words, min_size=1, max_size=3))
    entities = draw(st.lists(st.sampled_from(VOCAB), max_size=4, unique=True))
    return {
        "doc_id": draw(st.sampled_from(["d0", "d1", "d2"])),
        "title": draw(words),
        "chunks": chunks,
        "entities": entities,
        "links": draw(st.lists(st.sampled_from(["d0", "d1", "d2"]), max_size=2, unique=True)),
    }


@dataclass
class Owned:
    """What one tenant put in the index."""

    chunk_ids: set[str] = field(default_factory=set)
    doc_ids: set[str] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)


corpora = st.lists(
    st.lists(documents(), min_size=1, max_size=3, unique_by=lambda d: d["doc_id"]), min_size=2, max_size=3
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(corpora=corpora, queries=st.lists(words, min_size=1, max_size=3), skip_rerank=st.booleans())
def test_no_tenant_ever_sees_another_tenants_data(
    service: tuple[LoopThread, Served],
    minilm: MiniLm,
    corpora: list[list[dict[str, Any]]],
    queries: list[str],
    skip_rerank: bool,
) -> None:
    runner, served = service
    run = uuid.uuid4().hex[:8]
    tenants = [f"iso-{run}-{i}" for i in range(len(corpora))]
    owned: dict[str, Owned] = {}
    for tenant, docs in zip(tenants, corpora, strict=True):
        owned[tenant] = Owned()
        requests = []
        for d in docs:
            dense = minilm.embed(d["chunks"])
            meta = DocumentMeta(d["doc_id"], f"file:///{d['doc_id']}.md", d["title"], "markdown", 1)
            for i, text in enumerate(d["chunks"]):
                owned[tenant].chunk_ids.add(
                    point_id(tenant, d["doc_id"], i, chunk_hash(meta, ChunkInput(i, text, "", [])))
                )
            owned[tenant].doc_ids.add(d["doc_id"])
            owned[tenant].entities |= {normalize_entity(e) for e in d["entities"]}
            requests.append(
                ipb.UpsertChunksRequest(
                    document=ipb.IndexedDocument(
                        doc_id=d["doc_id"],
                        source_uri=meta.source_uri,
                        title=d["title"],
                        document_type=meta.document_type,
                        doc_version=1,
                        links_to=d["links"],
                    ),
                    chunks=[
                        ipb.IndexedChunk(
                            chunk_index=i, text=t, dense=[float(x) for x in dense[i]], mentions=d["entities"]
                        )
                        for i, t in enumerate(d["chunks"])
                    ],
                    entities=[ipb.GraphEntity(name=e, label="Concept") for e in d["entities"]],
                    relations=[
                        ipb.GraphRelation(source=a, target=b, type="RELATED_TO")
                        for a, b in zip(d["entities"], d["entities"][1:], strict=False)
                    ],
                    document_complete=True,
                )
            )
        runner.run(lambda t=tenant, r=requests: served.index.UpsertChunks(iter(r), metadata=served.md(t)))

    for tenant in tenants:
        mine = owned[tenant]
        others = set().union(*(owned[t].chunk_ids for t in tenants if t != tenant)) - mine.chunk_ids
        for text in queries:
            for legs in ([], *([leg] for leg in LEGS)):
                request = rpb.SearchRequest(query=text, top_k=50, legs=legs, skip_rerank=skip_rerank)
                response = runner.run(lambda r=request, t=tenant: served.search.Search(r, metadata=served.md(t)))
                for hit in response.hits:
                    assert hit.chunk.chunk_id in mine.chunk_ids, f"{tenant} got a chunk it does not own"
                    assert hit.chunk.doc_id in mine.doc_ids
        for chunk_id in others:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                runner.run(
                    lambda c=chunk_id, t=tenant: served.search.GetChunk(
                        rpb.GetChunkRequest(chunk_id=c), metadata=served.md(t)
                    )
                )
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        for chunk_id in mine.chunk_ids:
            got = runner.run(
                lambda c=chunk_id, t=tenant: served.search.GetChunk(
                    rpb.GetChunkRequest(chunk_id=c), metadata=served.md(t)
                )
            )
            assert got.chunk.chunk_id == chunk_id
        for entity in VOCAB[:8]:
            try:
                found = runner.run(
                    lambda e=entity, t=tenant: served.search.ExploreGraph(
                        rpb.ExploreGraphRequest(entity=e, depth=3, max_nodes=200), metadata=served.md(t)
                    )
                )
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
                continue
            for node in found.nodes:
                kind, _, key = node.node_id.partition(":")
                if kind == "chunk":
                    assert key in mine.chunk_ids
                elif kind == "document":
                    assert key in mine.doc_ids
                else:
                    assert key in mine.entities
