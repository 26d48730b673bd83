"""RetrievalService against the real stores: hybrid search, legs, filters, GetChunk, ExploreGraph."""

from __future__ import annotations

import grpc
import pytest
import pytest_asyncio
from google.protobuf import timestamp_pb2

from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from tests.support.retrieval import DocumentEmbedder, Served, ingest, upsert_requests
from tests.support.tenants import new_tenant

# The session's svc_inference answers on the session's event loop.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

DENSE, SPARSE, GRAPH = common_pb2.RETRIEVAL_LEG_DENSE, common_pb2.RETRIEVAL_LEG_SPARSE, common_pb2.RETRIEVAL_LEG_GRAPH


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(served: Served, embedder: DocumentEmbedder) -> str:
    name = new_tenant()
    await ingest(served, name, await upsert_requests(embedder))
    return name


async def test_hybrid_search_finds_the_answer_with_every_leg_reporting(served: Served, tenant: str) -> None:
    response = await served.search.Search(
        rpb.SearchRequest(query="How often does the kubelet garbage collect unused images?", top_k=3),
        metadata=served.md(tenant),
    )
    assert response.degraded_legs == []
    top = response.hits[0]
    assert top.chunk.doc_id == "gc" and "five minutes" in top.chunk.text
    assert top.chunk.title == "Garbage Collection" and top.chunk.source_uri.endswith("garbage-collection.md")
    assert top.chunk.section == "Images" and top.chunk.doc_version == 1 and top.chunk.ingested_at.seconds > 0
    assert {s.leg for s in top.leg_scores} == {DENSE, SPARSE, GRAPH}
    assert all(s.rank >= 1 for s in top.leg_scores)
    assert top.fused_score > 0 and top.HasField("rerank_score")
    assert len(response.hits) == 3
    assert response.corpus_version >= 1
    assert response.timings.total_ms > 0


async def test_skip_rerank_and_single_legs(served: Served, tenant: str) -> None:
    for leg in (DENSE, SPARSE, GRAPH):
        response = await served.search.Search(
            rpb.SearchRequest(query="taints tolerations", legs=[leg], skip_rerank=True), metadata=served.md(tenant)
        )
        assert response.hits, f"leg {leg} found nothing"
        assert all(not h.HasField("rerank_score") for h in response.hits)
        assert all({s.leg for s in h.leg_scores} == {leg} for h in response.hits)


async def test_graph_leg_follows_links_one_hop(served: Served, tenant: str) -> None:
    response = await served.search.Search(
        rpb.SearchRequest(query="taints", legs=[GRAPH], skip_rerank=True), metadata=served.md(tenant)
    )
    docs = [h.chunk.doc_id for h in response.hits]
    assert docs[0] == "taints"
    assert "scheduler" in docs, "the scheduler page is one LINKS_TO hop from the taints page"


async def test_filters_apply_to_every_leg(served: Served, tenant: str) -> None:
    flt = rpb.SearchFilter(source_prefix="file:///corpus/noise/")
    response = await served.search.Search(rpb.SearchRequest(query="taints", filter=flt), metadata=served.md(tenant))
    assert {h.chunk.doc_id for h in response.hits} <= {"duck"}
    typed = await served.search.Search(
        rpb.SearchRequest(query="taints", filter=rpb.SearchFilter(document_types=["html"])), metadata=served.md(tenant)
    )
    assert {h.chunk.document_type for h in typed.hits} <= {"html"}
    by_doc = await served.search.Search(
        rpb.SearchRequest(query="kubelet", filter=rpb.SearchFilter(doc_ids=["taints", "scheduler"])),
        metadata=served.md(tenant),
    )
    assert by_doc.hits and {h.chunk.doc_id for h in by_doc.hits} <= {"taints", "scheduler"}
    future = timestamp_pb2.Timestamp(seconds=4_102_444_800)  # 2100-01-01
    late = await served.search.Search(
        rpb.SearchRequest(query="kubelet", filter=rpb.SearchFilter(ingested_after=future)), metadata=served.md(tenant)
    )
    assert late.hits == []
    early = await served.search.Search(
        rpb.SearchRequest(query="kubelet", filter=rpb.SearchFilter(ingested_after=timestamp_pb2.Timestamp(seconds=1))),
        metadata=served.md(tenant),
    )
    assert early.hits


async def test_top_k_default_and_bound(served: Served, tenant: str) -> None:
    response = await served.search.Search(rpb.SearchRequest(query="pods nodes"), metadata=served.md(tenant))
    assert 0 < len(response.hits) <= 10
    one = await served.search.Search(rpb.SearchRequest(query="pods nodes", top_k=1), metadata=served.md(tenant))
    assert len(one.hits) == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.search.Search(rpb.SearchRequest(query="pods", top_k=51), metadata=served.md(tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_bad_requests_are_invalid_argument(served: Served, tenant: str) -> None:
    for request in (
        rpb.SearchRequest(query=""),
        rpb.SearchRequest(query="x" * 2001),
        rpb.SearchRequest(query="x", legs=[common_pb2.RETRIEVAL_LEG_UNSPECIFIED]),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await served.search.Search(request, metadata=served.md(tenant))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.search.GetChunk(rpb.GetChunkRequest(chunk_id="not-a-uuid"), metadata=served.md(tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_stop_words_only_query_returns_dense_hits(served: Served, tenant: str) -> None:
    response = await served.search.Search(rpb.SearchRequest(query="the of and"), metadata=served.md(tenant))
    assert response.degraded_legs == []
    assert all({s.leg for s in h.leg_scores} <= {DENSE} for h in response.hits)


async def test_get_chunk_round_trips_and_hides_other_tenants(served: Served, tenant: str) -> None:
    hit = (await served.search.Search(rpb.SearchRequest(query="kubelet images"), metadata=served.md(tenant))).hits[0]
    got = await served.search.GetChunk(rpb.GetChunkRequest(chunk_id=hit.chunk.chunk_id), metadata=served.md(tenant))
    assert got.chunk == hit.chunk
    upper = await served.search.GetChunk(
        rpb.GetChunkRequest(chunk_id=hit.chunk.chunk_id.upper()), metadata=served.md(tenant)
    )
    assert upper.chunk.chunk_id == hit.chunk.chunk_id
    for other_tenant, chunk_id in (
        (new_tenant(), hit.chunk.chunk_id),
        (tenant, "00000000-0000-4000-8000-000000000000"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await served.search.GetChunk(rpb.GetChunkRequest(chunk_id=chunk_id), metadata=served.md(other_tenant))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_explore_graph_is_bounded(served: Served, tenant: str) -> None:
    full = await served.search.ExploreGraph(
        rpb.ExploreGraphRequest(entity="toleration", depth=2), metadata=served.md(tenant)
    )
    assert full.nodes[0].kind == "Entity" and full.nodes[0].name == "Toleration"
    names = {n.name for n in full.nodes if n.kind == "Entity"}
    assert {"Toleration", "Taint"} <= names
    assert any(e.type == "RELATES:MATCHES" for e in full.edges)
    assert any(n.kind == "Document" and n.source_uri.endswith("taint-and-toleration.md") for n in full.nodes)
    ids = {n.node_id for n in full.nodes}
    assert all(e.source_id in ids and e.target_id in ids for e in full.edges)
    small = await served.search.ExploreGraph(
        rpb.ExploreGraphRequest(entity="toleration", depth=3, max_nodes=2), metadata=served.md(tenant)
    )
    assert len(small.nodes) <= 2 and small.truncated
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.search.ExploreGraph(rpb.ExploreGraphRequest(entity="nonexistentthing"), metadata=served.md(tenant))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.search.ExploreGraph(rpb.ExploreGraphRequest(entity="x", depth=4), metadata=served.md(tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_graph_leg_counts_chunks_again_only_when_the_corpus_moves(
    served: Served, tenant: str, embedder: DocumentEmbedder
) -> None:
    # The first search counts the tenant's chunks; the second, at the same corpus version, gets no
    # count from Neo4j and must rank with the remembered one: the same hits and scores, not degraded.
    request = rpb.SearchRequest(
        query="How do taints and tolerations keep pods off nodes?", legs=[GRAPH], skip_rerank=True
    )
    first = await served.search.Search(request, metadata=served.md(tenant))
    second = await served.search.Search(request, metadata=served.md(tenant))
    assert first.degraded_legs == [] and second.degraded_legs == []
    assert first.hits and first.corpus_version == second.corpus_version
    # The graph leg's own scores carry the entity weights, which the chunk count scales.
    assert [(h.chunk.chunk_id, [s.score for s in h.leg_scores]) for h in second.hits] == [
        (h.chunk.chunk_id, [s.score for s in h.leg_scores]) for h in first.hits
    ]
    # A new version of every document moves the corpus version; the next search counts again.
    await ingest(served, tenant, await upsert_requests(embedder, version=2))
    third = await served.search.Search(request, metadata=served.md(tenant))
    assert third.degraded_legs == [] and third.corpus_version > first.corpus_version
    assert [h.chunk.chunk_id for h in third.hits]
