"""Searcher: legs, fusion, degradation and reranking, over in-memory fakes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from mesh.errors import NotFound, Unavailable
from mesh.sparse import default_encoder
from svc_retrieval.domain.model import (
    ALL_LEGS,
    ChunkPoint,
    GraphLegResult,
    GraphQuery,
    Leg,
    LegHit,
    SearchFilter,
    SearchQuery,
    StoredChunk,
)
from svc_retrieval.domain.search import Searcher
from svc_retrieval.domain.settings import SearchSettings
from svc_retrieval.domain.versions import KnownVersions
from tests.unit.svc_retrieval.fakes import FakeEmbedder, FakeGraphStore, FakeReranker, FakeVectorIndex, unit

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def chunk(cid: str, text: str, doc: str = "d1", tenant: str = "acme", dense: list[float] | None = None) -> ChunkPoint:
    stored = StoredChunk(
        chunk_id=cid,
        doc_id=doc,
        source_uri=f"file:///docs/{doc}.md",
        title=doc,
        section="",
        chunk_index=0,
        chunk_hash="h",
        text=text,
        document_type="markdown",
        doc_version=1,
        ingested_at=T0,
    )
    return ChunkPoint(tenant, stored, dense or unit([1.0, 0.0, 0.0]), default_encoder().encode_document(text))


@pytest.fixture
def vectors() -> FakeVectorIndex:
    index = FakeVectorIndex()
    for p in (
        chunk("c-dense", "completely unrelated words", dense=unit([1.0, 0.1, 0.0])),
        chunk("c-both", "taints repel pods from nodes", dense=unit([0.9, 0.2, 0.0])),
        chunk("c-sparse", "taints and tolerations", dense=unit([0.0, 0.0, 1.0])),
        chunk("c-graph", "graph only passage", dense=unit([0.0, 1.0, 0.0]), doc="d2"),
        chunk("x-other", "taints repel pods from nodes", tenant="other", dense=unit([1.0, 0.1, 0.0])),
    ):
        index.points[p.chunk.chunk_id] = p
    return index


def make(
    vectors: FakeVectorIndex,
    graph: FakeGraphStore | None = None,
    embedder: FakeEmbedder | None = None,
    reranker: FakeReranker | None = None,
    **settings: object,
) -> Searcher:
    return Searcher(
        vectors,
        graph or FakeGraphStore(),
        embedder or FakeEmbedder(),
        reranker,
        default_encoder(),
        # Plain RRF with a flat k and no document-level steps unless a test asks: the fixture's
        # orderings then follow from the legs alone, whatever the tuned defaults are.
        SearchSettings(**{"rrf_k": 60, "doc_support_weight": 0.0, "max_chunks_per_doc": 0, **settings}),  # type: ignore[arg-type]
        KnownVersions(),
    )


def query(text: str = "taints", **kw: object) -> SearchQuery:
    return SearchQuery(text=text, top_k=int(kw.pop("top_k", 10)), **kw)  # type: ignore[arg-type]


async def test_hybrid_ranks_agreement_first_and_reports_every_leg(vectors: FakeVectorIndex) -> None:
    graph = FakeGraphStore(hits=[LegHit("c-graph", 1, 3.0), LegHit("c-both", 2, 1.0)])
    out = await make(vectors, graph).search("acme", query())
    ids = [h.chunk.chunk_id for h in out.hits]
    assert ids[0] == "c-both"
    assert "c-graph" in ids, "a graph-only hit gets its payload from the vector store"
    assert "x-other" not in ids
    both = out.hits[0]
    assert {leg for leg, _ in both.legs} == set(ALL_LEGS)
    assert out.degraded_legs == ()
    assert both.rerank_score is None


async def test_each_leg_runs_alone(vectors: FakeVectorIndex) -> None:
    graph = FakeGraphStore(hits=[LegHit("c-graph", 1, 3.0)])
    searcher = make(vectors, graph)
    sparse_only = await searcher.search("acme", query(legs=frozenset({Leg.SPARSE})))
    assert {h.chunk.chunk_id for h in sparse_only.hits} == {"c-both", "c-sparse"}
    assert all(leg is Leg.SPARSE for h in sparse_only.hits for leg, _ in h.legs)
    vectors.calls.clear()
    graph_only = await searcher.search("acme", query(legs=frozenset({Leg.GRAPH})))
    assert [h.chunk.chunk_id for h in graph_only.hits] == ["c-graph"]
    assert "search" not in vectors.calls, "no vector search when only the graph leg is asked for"


async def test_graph_down_degrades_that_leg_only(vectors: FakeVectorIndex) -> None:
    out = await make(vectors, FakeGraphStore(down=True)).search("acme", query())
    assert out.degraded_legs == (Leg.GRAPH,)
    assert out.hits and out.hits[0].chunk.chunk_id == "c-both"


async def test_embedder_down_degrades_the_dense_leg(vectors: FakeVectorIndex) -> None:
    out = await make(vectors, embedder=FakeEmbedder(down=True)).search("acme", query())
    assert Leg.DENSE in out.degraded_legs
    assert {h.chunk.chunk_id for h in out.hits} >= {"c-both", "c-sparse"}


async def test_no_leg_left_is_unavailable(vectors: FakeVectorIndex) -> None:
    searcher = make(vectors, FakeGraphStore(down=True), FakeEmbedder(down=True))
    with pytest.raises(Unavailable):
        await searcher.search("acme", query(legs=frozenset({Leg.DENSE, Leg.GRAPH})))


async def test_vector_store_down_is_unavailable(vectors: FakeVectorIndex) -> None:
    vectors.down = True
    with pytest.raises(Unavailable):
        await make(vectors).search("acme", query())


async def test_filters_reach_every_leg_and_graph_hits_are_refiltered(vectors: FakeVectorIndex) -> None:
    graph = FakeGraphStore(hits=[LegHit("c-graph", 1, 3.0)])
    flt = SearchFilter(doc_ids=("d1",))
    out = await make(vectors, graph).search("acme", query(filter=flt))
    assert graph.searched[0].filter == flt
    assert all(h.chunk.doc_id == "d1" for h in out.hits)


async def test_graph_hits_of_another_tenant_never_surface(vectors: FakeVectorIndex) -> None:
    graph = FakeGraphStore(hits=[LegHit("x-other", 1, 9.0)])
    out = await make(vectors, graph).search("acme", query(legs=frozenset({Leg.GRAPH})))
    assert out.hits == ()


async def test_top_k_bounds_the_hits(vectors: FakeVectorIndex) -> None:
    out = await make(vectors).search("acme", query(top_k=1))
    assert len(out.hits) == 1


async def test_rerank_reorders_and_skip_rerank_is_honoured(vectors: FakeVectorIndex) -> None:
    reranker = FakeReranker()
    searcher = make(vectors, reranker=reranker, rerank_weights={"cross-encoder": 5.0}, rrf_k=2)
    fused_order = [h.chunk.chunk_id for h in (await searcher.search("acme", query(skip_rerank=True))).hits]
    assert reranker.seen == [], "skip_rerank must not call the reranker"
    last = vectors.points[fused_order[-1]].chunk.text
    reranker.scores = {last: 10.0}
    out = await searcher.search("acme", query())
    assert out.hits[0].chunk.chunk_id == fused_order[-1]
    assert out.hits[0].rerank_score == 10.0
    assert all(h.rerank_score is not None for h in out.hits)
    assert len(reranker.seen) == 1


async def test_rerank_depth_limits_what_the_reranker_sees(vectors: FakeVectorIndex) -> None:
    reranker = FakeReranker()
    await make(vectors, reranker=reranker, rerank_depth=2).search("acme", query(top_k=3))
    assert len(reranker.seen[0]) == 2


async def test_a_zero_weight_reranker_is_not_called(vectors: FakeVectorIndex) -> None:
    reranker = FakeReranker(scores={"taints and tolerations": 10.0}, method_name="embedding-cosine")
    out = await make(vectors, reranker=reranker).search("acme", query())
    assert reranker.seen == []
    assert out.hits[0].chunk.chunk_id == "c-both"
    assert all(h.rerank_score is None for h in out.hits)


async def test_reranker_down_keeps_the_fused_order(vectors: FakeVectorIndex) -> None:
    out = await make(vectors, reranker=FakeReranker(down=True)).search("acme", query())
    assert out.hits[0].chunk.chunk_id == "c-both"
    assert out.degraded_legs == ()


async def test_corpus_version_falls_back_to_the_last_known(vectors: FakeVectorIndex) -> None:
    graph = FakeGraphStore(versions={"acme": 7})
    searcher = make(vectors, graph)
    assert (await searcher.search("acme", query())).corpus_version == 7
    graph.down = True
    out = await searcher.search("acme", query())
    assert out.corpus_version == 7
    assert out.degraded_legs == (Leg.GRAPH,)


async def test_the_graph_leg_reads_the_corpus_version_so_a_search_makes_no_read_of_its_own(
    vectors: FakeVectorIndex,
) -> None:
    graph = FakeGraphStore(versions={"acme": 4})
    searcher = make(vectors, graph)
    assert (await searcher.search("acme", query())).corpus_version == 4
    assert (graph.version_reads_in_search, graph.version_reads) == (1, 0)
    # Without the graph leg, the version is read on its own.
    out = await searcher.search("acme", query(legs=frozenset({Leg.DENSE, Leg.SPARSE})))
    assert out.corpus_version == 4
    assert (graph.version_reads_in_search, graph.version_reads) == (1, 1)


async def test_get_chunk_is_not_found_across_tenants(vectors: FakeVectorIndex) -> None:
    searcher = make(vectors)
    assert (await searcher.get_chunk("acme", "c-both")).text == "taints repel pods from nodes"
    with pytest.raises(NotFound):
        await searcher.get_chunk("acme", "x-other")
    with pytest.raises(NotFound):
        await searcher.get_chunk("acme", "missing")


async def test_explore_without_a_match_is_not_found(vectors: FakeVectorIndex) -> None:
    with pytest.raises(NotFound):
        await make(vectors).explore("acme", "kubelet", 1, 10)


async def test_timings_are_filled(vectors: FakeVectorIndex) -> None:
    out = await make(vectors).search("acme", query())
    assert out.timings.total_ms >= out.timings.vector_ms >= 0.0


async def test_a_slow_graph_store_degrades_instead_of_holding_the_search(vectors: FakeVectorIndex) -> None:
    class SlowGraph(FakeGraphStore):
        async def search(self, query: GraphQuery) -> GraphLegResult:
            await asyncio.sleep(5)
            return GraphLegResult([], 99)

        async def corpus_version(self, tenant: str) -> int:
            await asyncio.sleep(5)
            return 99

    started = asyncio.get_running_loop().time()
    out = await make(vectors, SlowGraph(), graph_timeout_s=0.05).search("acme", query())
    assert asyncio.get_running_loop().time() - started < 2
    assert out.degraded_legs == (Leg.GRAPH,)
    assert out.hits and out.corpus_version == 0


async def test_document_support_and_the_per_document_cap_shape_the_result() -> None:
    index = FakeVectorIndex()
    for p in (
        # The stub is 2nd by meaning and 1st by terms; the concept page's chunks fill the other places.
        chunk("stub", "eviction eviction", doc="glossary", dense=unit([0.95, 0.3, 0.0])),
        chunk(
            "p1", "eviction of pods under memory pressure on busy nodes at night", doc="concept", dense=unit([1, 0, 0])
        ),
        chunk("p2", "eviction thresholds", doc="concept", dense=unit([0.9, 0.4, 0.0])),
        chunk("p3", "pressure triggers eviction", doc="concept", dense=unit([0.7, 0.5, 0.0])),
    ):
        index.points[p.chunk.chunk_id] = p
    plain = await make(index).search("acme", query("eviction"))
    assert [h.chunk.doc_id for h in plain.hits][:2] == ["glossary", "concept"]
    tuned = await make(index, rrf_k=2, doc_support_weight=0.3, max_chunks_per_doc=1).search("acme", query("eviction"))
    assert [h.chunk.doc_id for h in tuned.hits][:2] == ["concept", "glossary"], "the page with more evidence first"
    assert len(tuned.hits) == 4, "capped chunks follow, none is dropped"
