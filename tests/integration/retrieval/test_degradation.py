"""Degradation with stores down, and deadlines: never INTERNAL, never a lost write."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import replace

import grpc
import pytest
from qdrant_client import AsyncQdrantClient

from mesh.settings import MeshSettings
from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_retrieval.clients.edge_index import HnswSettings
from svc_retrieval.clients.qdrant_index import QdrantServerIndex
from svc_retrieval.config import Config
from tests.support.retrieval import CORPUS, DocumentEmbedder, ingest, serve_retrieval, upsert_requests
from tests.support.tenants import new_tenant

# The session's svc_inference answers on the session's event loop.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def dead_port() -> int:
    """A port nothing listens on."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_neo4j_down_keeps_dense_and_sparse(
    config: Config, settings: MeshSettings, embedder: DocumentEmbedder
) -> None:
    tenant = new_tenant()
    async with serve_retrieval(config, settings) as served:
        written = await ingest(served, tenant, await upsert_requests(embedder))
    down = replace(settings, neo4j_uri=f"bolt://127.0.0.1:{dead_port()}")
    async with serve_retrieval(config, down) as served:
        response = await served.search.Search(
            rpb.SearchRequest(query="How often does the kubelet collect unused images?"), metadata=served.md(tenant)
        )
        assert list(response.degraded_legs) == [common_pb2.RETRIEVAL_LEG_GRAPH]
        assert response.hits and response.hits[0].chunk.doc_id == "gc"
        assert all(s.leg != common_pb2.RETRIEVAL_LEG_GRAPH for h in response.hits for s in h.leg_scores)
        assert response.corpus_version == 0, "this process never saw the version, so it reports none"
        chunk = await served.search.GetChunk(
            rpb.GetChunkRequest(chunk_id=response.hits[0].chunk.chunk_id), metadata=served.md(tenant)
        )
        assert chunk.chunk.doc_id == "gc"
        graph_only = rpb.SearchRequest(query="kubelet", legs=[common_pb2.RETRIEVAL_LEG_GRAPH])
        version_2 = await upsert_requests(embedder, CORPUS[:1], version=2)
        for call in (
            lambda: served.search.Search(graph_only, metadata=served.md(tenant)),
            lambda: served.search.ExploreGraph(rpb.ExploreGraphRequest(entity="kubelet"), metadata=served.md(tenant)),
            lambda: served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant)),
            lambda: ingest(served, tenant, version_2),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    async with serve_retrieval(config, settings) as served:
        # The failed write left more than needed, never less: retrying it completes the new version.
        retried = await ingest(served, tenant, version_2)
        assert retried.corpus_version > written.corpus_version
        stats = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
        assert stats.points == written.points_written
        assert stats.chunk_nodes == written.points_written


async def test_qdrant_server_unreachable_is_unavailable(settings: MeshSettings, embedder: DocumentEmbedder) -> None:
    client = AsyncQdrantClient(
        url=f"http://127.0.0.1:{dead_port()}",
        grpc_port=dead_port(),
        prefer_grpc=True,
        timeout=2,
        check_compatibility=False,
    )
    vectors = QdrantServerIndex(client, "chunks", 384, HnswSettings(), call_ceiling_s=5.0)
    await vectors.open()  # logs and carries on: the service starts while its store is down
    config = Config(vector_backend="qdrant")
    tenant = new_tenant()
    requests = await upsert_requests(embedder, CORPUS[:1])
    try:
        async with serve_retrieval(config, settings, vectors=vectors) as served:
            for call in (
                lambda: served.search.Search(rpb.SearchRequest(query="kubelet"), metadata=served.md(tenant)),
                lambda: served.search.GetChunk(
                    rpb.GetChunkRequest(chunk_id="00000000-0000-4000-8000-000000000000"), metadata=served.md(tenant)
                ),
                lambda: ingest(served, tenant, requests),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call()
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
    finally:
        await vectors.close()


async def test_a_passed_deadline_is_deadline_exceeded(
    config: Config, settings: MeshSettings, embedder: DocumentEmbedder
) -> None:
    tenant = new_tenant()
    async with serve_retrieval(config, settings) as served:
        await ingest(served, tenant, await upsert_requests(embedder, CORPUS[:1]))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await served.search.Search(rpb.SearchRequest(query="taints"), metadata=served.md(tenant), timeout=0.0005)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
