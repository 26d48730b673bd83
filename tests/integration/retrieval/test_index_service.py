"""IndexService against the real stores: idempotent writes, versions, deletes, stats, bad input."""

from __future__ import annotations

import grpc
import neo4j
import pytest

from mesh.settings import MeshSettings
from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_retrieval.config import Config
from tests.support.retrieval import CORPUS, DocumentEmbedder, Served, ingest, serve_retrieval, upsert_requests
from tests.support.tenants import new_tenant

# The session's svc_inference answers on the session's event loop.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def graph_nodes(settings: MeshSettings, tenant: str) -> int:
    """Every node carrying ``tenant``, counted straight in Neo4j."""
    async with neo4j.AsyncGraphDatabase.driver(
        settings.neo4j_uri, auth=(settings.neo4j_user, settings.neo4j_password)
    ) as driver:
        records, _, _ = await driver.execute_query(
            "MATCH (n {tenant: $t}) WHERE NOT n:CorpusVersion RETURN count(n) AS c", t=tenant
        )
        return int(records[0]["c"])


async def test_upsert_is_idempotent_and_counts_what_it_wrote(served: Served, embedder: DocumentEmbedder) -> None:
    tenant = new_tenant()
    requests = await upsert_requests(embedder)
    first = await ingest(served, tenant, requests)
    assert first.documents == len(CORPUS)
    assert first.points_written == sum(len(d["chunks"]) for d in CORPUS)
    assert first.points_unchanged == 0
    assert first.nodes_created > 0 and first.relationships_created > 0
    stats = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
    again = await ingest(served, tenant, requests)
    assert again.points_written == 0
    assert again.points_unchanged == first.points_written
    assert again.nodes_created == 0 and again.relationships_created == 0
    assert again.corpus_version == first.corpus_version, "nothing changed, so the corpus version stays"
    after = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
    assert after == stats
    assert after.points == first.points_written
    assert after.documents == len(CORPUS)
    assert after.chunk_nodes == first.points_written
    # Taint, Toleration, Node (shared by two documents), kube-scheduler, kubelet.
    assert after.entity_nodes == 5
    assert after.corpus_version == first.corpus_version


async def test_new_version_replaces_old_chunks_and_bumps_the_corpus_version(
    served: Served, embedder: DocumentEmbedder
) -> None:
    tenant = new_tenant()
    first = await ingest(served, tenant, await upsert_requests(embedder, CORPUS[:1]))
    changed = dict(CORPUS[0])
    changed["chunks"] = [CORPUS[0]["chunks"][0], ("Concepts > Effects", "NoSchedule keeps new pods off the node.")]
    second = await ingest(served, tenant, await upsert_requests(embedder, [changed], version=2))
    assert (second.points_written, second.points_unchanged, second.points_deleted) == (1, 1, 1)
    assert second.corpus_version > first.corpus_version
    hits = await served.search.Search(
        rpb.SearchRequest(query="NoExecute evicts running pods", top_k=10, skip_rerank=True), metadata=served.md(tenant)
    )
    texts = [h.chunk.text for h in hits.hits]
    assert not any("NoExecute" in t for t in texts), "the old version's chunk is gone"
    assert any("NoSchedule" in t for t in texts)
    assert {h.chunk.doc_version for h in hits.hits} == {2}


async def test_delete_leaves_no_point_node_or_edge(
    served: Served, embedder: DocumentEmbedder, settings: MeshSettings
) -> None:
    tenant = new_tenant()
    await ingest(served, tenant, await upsert_requests(embedder))
    before = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
    deleted = await served.index.DeleteDocuments(
        ipb.DeleteDocumentsRequest(doc_ids=[d["doc_id"] for d in CORPUS]), metadata=served.imd(tenant)
    )
    assert deleted.points_deleted == before.points
    assert deleted.corpus_version > before.corpus_version
    stats = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
    assert (stats.points, stats.documents, stats.chunk_nodes, stats.entity_nodes, stats.relationships) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert await graph_nodes(settings, tenant) == 0
    again = await served.index.DeleteDocuments(
        ipb.DeleteDocumentsRequest(doc_ids=["taints"]), metadata=served.imd(tenant)
    )
    assert again.points_deleted == 0 and again.nodes_deleted == 0
    assert again.corpus_version == deleted.corpus_version


async def test_deleting_one_document_keeps_shared_entities(served: Served, embedder: DocumentEmbedder) -> None:
    tenant = new_tenant()
    await ingest(served, tenant, await upsert_requests(embedder, CORPUS[:2]))
    await served.index.DeleteDocuments(ipb.DeleteDocumentsRequest(doc_ids=["taints"]), metadata=served.imd(tenant))
    stats = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
    # kube-scheduler and Node stay (the scheduler page mentions them); taint and toleration go.
    assert stats.entity_nodes == 2
    assert stats.documents == 1
    found = await served.search.ExploreGraph(rpb.ExploreGraphRequest(entity="Node"), metadata=served.md(tenant))
    assert {n.name for n in found.nodes if n.kind == "Entity"} == {"Node", "kube-scheduler"}


async def test_corpus_version_survives_a_restart(
    config: Config, settings: MeshSettings, embedder: DocumentEmbedder
) -> None:
    tenant = new_tenant()
    async with serve_retrieval(config, settings) as served:
        written = await ingest(served, tenant, await upsert_requests(embedder, CORPUS[:1]))
    async with serve_retrieval(config, settings) as served:
        stats = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
        assert stats.corpus_version == written.corpus_version >= 1
        assert stats.points == written.points_written, "the embedded engine keeps its data across restarts"


async def test_tenants_are_counted_apart(served: Served, embedder: DocumentEmbedder) -> None:
    a, b = new_tenant(), new_tenant()
    await ingest(served, a, await upsert_requests(embedder, CORPUS[:1]))
    stats_b = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(b))
    assert (stats_b.points, stats_b.documents, stats_b.corpus_version) == (0, 0, 0)


def _bad(**chunk: object) -> ipb.UpsertChunksRequest:
    return ipb.UpsertChunksRequest(
        document=ipb.IndexedDocument(doc_id="bad", source_uri="file:///bad.md", doc_version=1),
        chunks=[ipb.IndexedChunk(chunk_index=0, text="x", **chunk)],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_bad(dense=[1.0, 0.0]), "chunks[0].dense"),
        (
            _bad(dense=[1.0] + [0.0] * 383, sparse=common_pb2.SparseVector(indices=[1, 2], values=[1.0])),
            "chunks[0].sparse",
        ),
        (
            ipb.UpsertChunksRequest(document=ipb.IndexedDocument(doc_id="", source_uri="x", doc_version=1)),
            "document.doc_id",
        ),
    ],
)
async def test_bad_input_is_invalid_argument_and_writes_nothing(
    served: Served, request_: ipb.UpsertChunksRequest, field: str
) -> None:
    from mesh import status

    tenant = new_tenant()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.index.UpsertChunks(iter([request_]), metadata=served.imd(tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    decoded = status.status_from_metadata(err.value.trailing_metadata())
    assert decoded is not None
    bad = status.bad_request(decoded)
    assert bad is not None and bad.field_violations[0].field == field
    stats = await served.index.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=served.imd(tenant))
    assert stats.points == 0 and stats.documents == 0


async def test_calls_without_identity_are_unauthenticated(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.index.GetIndexStats(ipb.GetIndexStatsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
