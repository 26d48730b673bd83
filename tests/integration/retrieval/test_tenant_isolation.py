"""Property: no Search, GetChunk or ExploreGraph ever returns another tenant's data.

Hypothesis generates corpora for several tenants from one small shared
vocabulary, with colliding document ids and often identical text, ingests them
into the real stores through IndexService, and then searches, fetches and
explores as every tenant with queries from the same words. Every chunk,
document and entity that comes back must be the caller's own. The examples
run on the session's event loop, where svc_inference answers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.settings import MeshSettings
from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_retrieval.config import Config
from svc_retrieval.domain.ids import chunk_hash, normalize_entity, point_id
from svc_retrieval.domain.model import ChunkInput, DocumentMeta
from tests.support.retrieval import DocumentEmbedder, Served, serve_retrieval

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

VOCAB = [
    "pod", "node", "taint", "toleration", "kubelet", "scheduler", "service", "volume", "secret", "ingress",
    "deployment", "replica", "eviction", "pressure", "image", "garbage", "namespace", "quota", "label", "probe",
]  # fmt: skip
LEGS = [common_pb2.RETRIEVAL_LEG_DENSE, common_pb2.RETRIEVAL_LEG_SPARSE, common_pb2.RETRIEVAL_LEG_GRAPH]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(tmp_path_factory: pytest.TempPathFactory, settings: MeshSettings) -> AsyncIterator[Served]:
    config = Config(
        vector_backend="edge", edge_path=Path(tmp_path_factory.mktemp("iso")) / "qdrant", graph_timeout_s=30.0
    )
    async with serve_retrieval(config, settings) as served:
        yield served


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
async def test_no_tenant_ever_sees_another_tenants_data(
    service: Served,
    embedder: DocumentEmbedder,
    corpora: list[list[dict[str, Any]]],
    queries: list[str],
    skip_rerank: bool,
) -> None:
    served = service
    run = uuid.uuid4().hex[:8]
    tenants = [f"iso-{run}-{i}" for i in range(len(corpora))]
    owned: dict[str, Owned] = {}
    for tenant, docs in zip(tenants, corpora, strict=True):
        owned[tenant] = Owned()
        requests = []
        for d in docs:
            dense = await embedder.embed(d["chunks"])
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
                        ipb.IndexedChunk(chunk_index=i, text=t, dense=dense[i], mentions=d["entities"])
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
        await served.index.UpsertChunks(iter(requests), metadata=served.imd(tenant))

    for tenant in tenants:
        mine = owned[tenant]
        others = set().union(*(owned[t].chunk_ids for t in tenants if t != tenant)) - mine.chunk_ids
        for text in queries:
            for legs in ([], *([leg] for leg in LEGS)):
                request = rpb.SearchRequest(query=text, top_k=50, legs=legs, skip_rerank=skip_rerank)
                response = await served.search.Search(request, metadata=served.md(tenant))
                for hit in response.hits:
                    assert hit.chunk.chunk_id in mine.chunk_ids, f"{tenant} got a chunk it does not own"
                    assert hit.chunk.doc_id in mine.doc_ids
        for chunk_id in others:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await served.search.GetChunk(rpb.GetChunkRequest(chunk_id=chunk_id), metadata=served.md(tenant))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        for chunk_id in mine.chunk_ids:
            got = await served.search.GetChunk(rpb.GetChunkRequest(chunk_id=chunk_id), metadata=served.md(tenant))
            assert got.chunk.chunk_id == chunk_id
        for entity in VOCAB[:8]:
            try:
                found = await served.search.ExploreGraph(
                    rpb.ExploreGraphRequest(entity=entity, depth=3, max_nodes=200), metadata=served.md(tenant)
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
