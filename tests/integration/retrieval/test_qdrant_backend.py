"""The Qdrant-server backend's code, run against qdrant-client's local mode (same API, no server).

The same service, the same contracts: idempotent upserts, version replacement,
filters, fusion with per-leg ranks, GetChunk across tenants, deletes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from qdrant_client import AsyncQdrantClient

from mesh.settings import MeshSettings
from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_retrieval.clients.edge_index import HnswSettings
from svc_retrieval.clients.qdrant_index import QdrantServerIndex
from svc_retrieval.config import Config
from tests.support.retrieval import CORPUS, DocumentEmbedder, Served, ingest, serve_retrieval, upsert_requests
from tests.support.tenants import new_tenant

# The session's svc_inference answers on the session's event loop.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def served(settings: MeshSettings) -> AsyncIterator[Served]:
    vectors = QdrantServerIndex(AsyncQdrantClient(location=":memory:"), "chunks", 384, HnswSettings())
    await vectors.open()
    try:
        async with serve_retrieval(
            Config(vector_backend="qdrant", graph_timeout_s=30.0), settings, vectors=vectors
        ) as s:
            yield s
    finally:
        await vectors.close()


async def test_server_backend_end_to_end(served: Served, embedder: DocumentEmbedder) -> None:
    tenant, other = new_tenant(), new_tenant()
    first = await ingest(served, tenant, await upsert_requests(embedder))
    again = await ingest(served, tenant, await upsert_requests(embedder))
    assert first.points_written == sum(len(d["chunks"]) for d in CORPUS)
    assert (again.points_written, again.points_unchanged) == (0, first.points_written)

    response = await served.search.Search(
        rpb.SearchRequest(query="How often does the kubelet garbage collect unused images?", top_k=5, skip_rerank=True),
        metadata=served.md(tenant),
    )
    top = response.hits[0]
    assert top.chunk.doc_id == "gc"
    assert {s.leg for s in top.leg_scores} >= {common_pb2.RETRIEVAL_LEG_DENSE, common_pb2.RETRIEVAL_LEG_SPARSE}

    flt = rpb.SearchFilter(source_prefix="file:///corpus/noise/", document_types=["html"])
    filtered = await served.search.Search(rpb.SearchRequest(query="kubelet", filter=flt), metadata=served.md(tenant))
    assert {h.chunk.doc_id for h in filtered.hits} <= {"duck"}

    got = await served.search.GetChunk(rpb.GetChunkRequest(chunk_id=top.chunk.chunk_id), metadata=served.md(tenant))
    assert got.chunk == top.chunk
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.search.GetChunk(rpb.GetChunkRequest(chunk_id=top.chunk.chunk_id), metadata=served.md(other))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await served.search.Search(rpb.SearchRequest(query="kubelet"), metadata=served.md(other))).hits == []

    changed = dict(CORPUS[2])
    changed["chunks"] = [CORPUS[2]["chunks"][0], ("Containers", "Dead containers are removed by the kubelet hourly.")]
    replaced = await ingest(served, tenant, await upsert_requests(embedder, [changed], version=2))
    assert (replaced.points_written, replaced.points_unchanged, replaced.points_deleted) == (1, 1, 1)

    deleted = await served.index.DeleteDocuments(
        ipb.DeleteDocumentsRequest(doc_ids=[d["doc_id"] for d in CORPUS]), metadata=served.imd(tenant)
    )
    assert deleted.points_deleted == first.points_written
    stats = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
    assert (stats.points, stats.documents, stats.entity_nodes) == (0, 0, 0)
