"""Indexer: idempotent upserts, version replacement, write order and input checks, over fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest

from mesh.errors import InvalidArgument
from mesh.sparse import SparseVector, default_encoder
from svc_retrieval.domain.indexing import Indexer
from svc_retrieval.domain.model import ChunkInput, DocumentMeta, Entity, Relation, UpsertBatch
from svc_retrieval.domain.versions import KnownVersions
from tests.unit.svc_retrieval.fakes import FakeGraphStore, FakeVectorIndex, unit

DIM = 3


async def stream(batches: Iterable[UpsertBatch]) -> AsyncIterator[UpsertBatch]:
    for b in batches:
        yield b


def doc(version: int = 1, doc_id: str = "d1") -> DocumentMeta:
    return DocumentMeta(doc_id, f"file:///{doc_id}.md", "Title", "markdown", version)


def chunks(*texts: str) -> tuple[ChunkInput, ...]:
    return tuple(ChunkInput(i, t, "", unit([1.0, float(i), 0.5])) for i, t in enumerate(texts))


@pytest.fixture
def stores() -> tuple[FakeVectorIndex, FakeGraphStore, Indexer]:
    vectors, graph = FakeVectorIndex(), FakeGraphStore()
    return vectors, graph, Indexer(vectors, graph, default_encoder(), DIM, KnownVersions())


async def test_reingesting_the_same_content_writes_nothing(
    stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer],
) -> None:
    vectors, _, indexer = stores
    batch = UpsertBatch(doc(), chunks("a", "b"), document_complete=True)
    first = await indexer.upsert("acme", stream([batch]))
    assert (first.points_written, first.points_unchanged, first.documents) == (2, 0, 1)
    again = await indexer.upsert("acme", stream([batch]))
    assert (again.points_written, again.points_unchanged, again.points_deleted) == (0, 2, 0)
    assert len(vectors.points) == 2
    assert vectors.calls.count("upsert") == 1


async def test_new_version_replaces_changed_chunks_after_writing_them(
    stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer],
) -> None:
    vectors, graph, indexer = stores
    await indexer.upsert("acme", stream([UpsertBatch(doc(1), chunks("a", "b"), document_complete=True)]))
    vectors.calls.clear()
    out = await indexer.upsert("acme", stream([UpsertBatch(doc(2), chunks("a", "B!"), document_complete=True)]))
    assert (out.points_written, out.points_unchanged, out.points_deleted) == (1, 1, 1)
    assert vectors.calls.index("upsert") < vectors.calls.index("delete_stale")
    texts = sorted(p.chunk.text for p in vectors.points.values())
    assert texts == ["B!", "a"]
    assert {p.chunk.doc_version for p in vectors.points.values()} == {2}
    assert graph.writes[-1].points_changed


async def test_stale_chunks_stay_until_the_document_is_complete(
    stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer],
) -> None:
    vectors, _, indexer = stores
    await indexer.upsert("acme", stream([UpsertBatch(doc(1), chunks("a"), document_complete=True)]))
    partial = UpsertBatch(doc(2), (ChunkInput(1, "new", "", unit([1, 1, 1])),))
    await indexer.upsert("acme", stream([partial]))
    assert len(vectors.points) == 2, "the old version is still served while the new one streams in"
    await indexer.upsert("acme", stream([UpsertBatch(doc(2), (), document_complete=True)]))
    assert [p.chunk.text for p in vectors.points.values()] == ["new"]


async def test_missing_sparse_vectors_are_computed_with_the_shared_encoder(
    stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer],
) -> None:
    vectors, _, indexer = stores
    await indexer.upsert("acme", stream([UpsertBatch(doc(), chunks("taints and tolerations"))]))
    (point,) = vectors.points.values()
    assert point.sparse == default_encoder().encode_document("taints and tolerations", title="Title", section="")


async def test_graph_facts_are_passed_per_chunk(stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer]) -> None:
    _, graph, indexer = stores
    batch = UpsertBatch(
        doc(),
        (ChunkInput(0, "kubelet runs pods", "", unit([1, 0, 0]), mentions=("kubelet", "Pod")),),
        entities=(Entity("kubelet", "Component"),),
        relations=(Relation("kubelet", "Pod", "RUNS"),),
        document_complete=True,
    )
    await indexer.upsert("acme", stream([batch]))
    write = graph.writes[0]
    assert write.tenant == "acme" and write.document_complete
    assert write.chunks[0][2] == ("kubelet", "Pod")
    assert write.relations == (Relation("kubelet", "Pod", "RUNS"),)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (ChunkInput(0, "x", "", [1.0, 0.0]), "chunks[0].dense"),
        (ChunkInput(0, "x", "", [3.0, 0.0, 0.0]), "chunks[0].dense"),
        (ChunkInput(0, "x", "", [float("nan"), 0.0, 0.0]), "chunks[0].dense"),
        (ChunkInput(0, "x", "", unit([1, 0, 0]), sparse=SparseVector((1, 1), (1.0, 2.0))), "chunks[0].sparse"),
    ],
)
async def test_bad_chunks_are_refused_before_anything_is_written(
    stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer], bad: ChunkInput, field: str
) -> None:
    vectors, graph, indexer = stores
    with pytest.raises(InvalidArgument) as err:
        await indexer.upsert("acme", stream([UpsertBatch(doc(), (bad,))]))
    assert err.value.violations[0].field == field
    assert vectors.points == {} and graph.writes == []


async def test_repeated_chunk_index_is_refused(stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer]) -> None:
    _, _, indexer = stores
    twice = (ChunkInput(0, "a", "", unit([1, 0, 0])), ChunkInput(0, "b", "", unit([0, 1, 0])))
    with pytest.raises(InvalidArgument):
        await indexer.upsert("acme", stream([UpsertBatch(doc(), twice)]))


async def test_a_bad_batch_keeps_earlier_batches(stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer]) -> None:
    vectors, _, indexer = stores
    good = UpsertBatch(doc(doc_id="ok"), chunks("a"), document_complete=True)
    bad = UpsertBatch(doc(doc_id="bad"), (ChunkInput(0, "x", "", [1.0]),))
    with pytest.raises(InvalidArgument):
        await indexer.upsert("acme", stream([good, bad]))
    assert [p.chunk.doc_id for p in vectors.points.values()] == ["ok"]


async def test_tenants_do_not_share_points(stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer]) -> None:
    vectors, _, indexer = stores
    batch = UpsertBatch(doc(), chunks("same text"), document_complete=True)
    await indexer.upsert("acme", stream([batch]))
    out = await indexer.upsert("other", stream([batch]))
    assert out.points_written == 1
    assert len({p.chunk.chunk_id for p in vectors.points.values()}) == 2


async def test_delete_removes_points_then_graph(stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer]) -> None:
    vectors, graph, indexer = stores
    await indexer.upsert("acme", stream([UpsertBatch(doc(), chunks("a", "b"), document_complete=True)]))
    stats = await indexer.delete_documents("acme", ["d1", "d1"])
    assert stats.points_deleted == 2
    assert graph.deletes == [("acme", ("d1",))]
    assert vectors.points == {}
    assert stats.corpus_version > 1


async def test_an_empty_stream_reports_the_current_version(
    stores: tuple[FakeVectorIndex, FakeGraphStore, Indexer],
) -> None:
    _, graph, indexer = stores
    graph.versions["acme"] = 7
    out = await indexer.upsert("acme", stream([]))
    assert (out.documents, out.points_written, out.corpus_version) == (0, 0, 7)
