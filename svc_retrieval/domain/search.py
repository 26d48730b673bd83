"""Hybrid search: dense + sparse in the vector engine, the graph leg beside it, RRF, rerank.

The legs run concurrently where they can: the query is embedded while the graph
leg (which reads the corpus version in its first round trip; without it, a
version read) is already in flight. The vector index's fused list and the graph
leg are merged with one RRF formula; each chunk then gets a share
of its document's other retrieved chunks' scores (document support), the head
is reranked, and each document's chunks beyond ``max_chunks_per_doc`` move
behind the other documents. A leg whose store or model is down (or, for the
graph, slower than its budget) is reported in ``degraded_legs`` and the others
still answer; only when no requested leg can run does the search fail
(UNAVAILABLE).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from mesh.errors import DeadlineExceeded, NotFound, ResourceExhausted, Unavailable
from mesh.sparse import SparseEncoder
from svc_retrieval.domain import fusion
from svc_retrieval.domain.model import (
    GraphLegResult,
    GraphQuery,
    Leg,
    LegHit,
    Neighbourhood,
    SearchFilter,
    SearchHit,
    SearchOutcome,
    SearchQuery,
    SearchTimings,
    StoredChunk,
    VectorQuery,
    VectorResult,
)
from svc_retrieval.domain.ports import Embedder, GraphStore, Reranker, VectorIndex
from svc_retrieval.domain.settings import SearchSettings
from svc_retrieval.domain.versions import KnownVersions

log = logging.getLogger(__name__)

# Faults that make a leg degrade instead of failing the search: its dependency is down, late or
# saturated. A dependency that refuses the request or fails with a bug fails the search, visibly.
_LEG_FAULTS = (Unavailable, DeadlineExceeded, ResourceExhausted)

_EMPTY_VECTOR_RESULT = VectorResult(dense=(), sparse=(), fused=(), chunks={})


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


class Searcher:
    """Runs searches, chunk look-ups and graph exploration for one tenant at a time."""

    def __init__(
        self,
        vectors: VectorIndex,
        graph: GraphStore,
        embedder: Embedder,
        reranker: Reranker | None,
        encoder: SparseEncoder,
        settings: SearchSettings,
        versions: KnownVersions,
    ) -> None:
        self._vectors = vectors
        self._graph = graph
        self._embedder = embedder
        self._reranker = reranker
        self._encoder = encoder
        self._settings = settings
        self._versions = versions

    async def search(self, tenant: str, query: SearchQuery) -> SearchOutcome:
        """Searches the tenant's corpus; see the module docstring for how legs degrade."""
        started = time.perf_counter()
        settings = self._settings
        degraded: list[Leg] = []

        graph_task: asyncio.Task[tuple[GraphLegResult, float]] | None = None
        version_task: asyncio.Task[int] | None = None
        if Leg.GRAPH in query.legs:
            # The graph leg reads the corpus version in its own first round trip.
            graph_task = asyncio.create_task(self._graph_leg(tenant, query))
        else:
            version_task = asyncio.create_task(self._corpus_version(tenant))
        for task in (graph_task, version_task):
            if task is not None:
                # A search that fails early never awaits these; their faults must not go unretrieved.
                task.add_done_callback(_retrieve_exception)

        try:
            dense: list[float] | None = None
            embed_ms = 0.0
            if Leg.DENSE in query.legs:
                embed_started = time.perf_counter()
                try:
                    dense = await self._embedder.embed_query(query.text)
                except _LEG_FAULTS as exc:
                    log.warning("dense leg degraded: %s", exc)
                    degraded.append(Leg.DENSE)
                embed_ms = _ms(embed_started)
            sparse = self._encoder.encode_query(query.text) if Leg.SPARSE in query.legs else None
            # A query of stop words only has no sparse terms: the leg runs and finds nothing.
            if sparse is not None and not len(sparse):
                sparse = None

            vector_started = time.perf_counter()
            result = _EMPTY_VECTOR_RESULT
            if dense is not None or sparse is not None:
                result = await self._vectors.search(
                    VectorQuery(
                        tenant=tenant,
                        dense=dense,
                        sparse=sparse,
                        filter=query.filter,
                        leg_limit=settings.leg_limit,
                        fused_limit=settings.fused_limit,
                        rrf_k=settings.rrf_k,
                        dense_weight=settings.dense_weight,
                        sparse_weight=settings.sparse_weight,
                        hnsw_ef=settings.hnsw_ef,
                    )
                )
            vector_ms = _ms(vector_started)

            graph_hits: list[LegHit] = []
            graph_ms = 0.0
            graph_version: int | None = None
            if graph_task is not None:
                try:
                    graph, graph_ms = await asyncio.wait_for(graph_task, self._graph_budget_s(started))
                    graph_hits, graph_version = graph.hits, graph.corpus_version
                except TimeoutError:
                    log.warning("graph leg degraded: slower than %.3f s", settings.graph_timeout_s)
                    degraded.append(Leg.GRAPH)
                except _LEG_FAULTS as exc:
                    log.warning("graph leg degraded: %s", exc)
                    degraded.append(Leg.GRAPH)
        except BaseException:
            for task in (graph_task, version_task):
                if task is not None and not task.done():
                    task.cancel()
            raise

        if degraded and set(degraded) >= query.legs:
            raise Unavailable(
                "no retrieval leg could run: " + ", ".join(leg.name.lower() for leg in degraded),
                reason="ALL_LEGS_UNAVAILABLE",
            )

        fused = {hit.chunk_id: hit.score for hit in result.fused}
        merged = fusion.merge_graph(fused, graph_hits, settings.graph_weight, settings.rrf_k)
        chunks = dict(result.chunks)
        missing = [cid for cid in merged if cid not in chunks]
        if missing:
            # Graph-only hits: their payload comes from the vector store, which also
            # re-applies the tenant and metadata filters server-side.
            chunks.update(await self._vectors.fetch(tenant, missing, query.filter))
        found = {cid: score for cid, score in merged.items() if cid in chunks}
        doc_of = {cid: chunks[cid].doc_id for cid in found}
        supported = fusion.document_support(found, doc_of, settings.doc_support_weight, settings.doc_support_chunks)
        candidates = fusion.best_first(supported)

        rerank_started = time.perf_counter()
        candidates, rerank_scores = await self._rerank(query, candidates, supported, chunks)
        rerank_ms = _ms(rerank_started)

        candidates = fusion.cap_per_document(candidates, doc_of, settings.max_chunks_per_doc)
        legs_by_chunk = _leg_index(result, graph_hits)
        hits = tuple(
            SearchHit(
                chunk=chunks[cid],
                fused_score=merged[cid],
                rerank_score=rerank_scores.get(cid),
                legs=legs_by_chunk.get(cid, ()),
            )
            for cid in candidates[: query.top_k]
        )
        if graph_version is not None:
            self._versions.remember(tenant, graph_version)
            version = graph_version
        elif version_task is not None:
            version = await self._settle_version(version_task, tenant, started)
        else:
            # The graph leg (and its version read) gave up: the last version seen, or 0 (not cacheable).
            version = self._versions.last_known(tenant)
        timings = SearchTimings(
            embed_ms=embed_ms, vector_ms=vector_ms, graph_ms=graph_ms, rerank_ms=rerank_ms, total_ms=_ms(started)
        )
        return SearchOutcome(hits=hits, degraded_legs=tuple(degraded), timings=timings, corpus_version=version)

    async def _rerank(
        self, query: SearchQuery, candidates: list[str], scores: dict[str, float], chunks: dict[str, StoredChunk]
    ) -> tuple[list[str], dict[str, float]]:
        """The candidates with the reranker's order blended into the head, and the reranker's scores."""
        settings = self._settings
        if query.skip_rerank or self._reranker is None or not candidates or settings.rerank_depth <= 0:
            return candidates, {}
        try:
            weight = settings.rerank_weight(await self._reranker.method())
            # A zero weight could not change the order: the (costly) call is not made.
            if weight <= 0:
                return candidates, {}
            head = candidates[: settings.rerank_depth]
            reranked = await self._reranker.rerank(query.text, [chunks[cid].text for cid in head])
        except _LEG_FAULTS as exc:
            # Reranking refines an order that is already usable: keep the fused one.
            log.warning("rerank skipped: %s", exc)
            return candidates, {}
        blended = fusion.blend_rerank(head, scores, reranked.order, weight, settings.rrf_k)
        return blended.order + candidates[len(head) :], blended.rerank_scores

    async def get_chunk(self, tenant: str, chunk_id: str) -> StoredChunk:
        """One of the tenant's chunks; NOT_FOUND for unknown ids and other tenants' chunks alike."""
        found = await self._vectors.fetch(tenant, [chunk_id], SearchFilter())
        chunk = found.get(chunk_id)
        if chunk is None:
            raise NotFound(f"chunk {chunk_id} not found", reason="CHUNK_NOT_FOUND", metadata={"chunk_id": chunk_id})
        return chunk

    async def explore(self, tenant: str, entity: str, depth: int, max_nodes: int) -> Neighbourhood:
        """The neighbourhood of the entity best matching ``entity``; NOT_FOUND when none does."""
        found = await self._graph.explore(tenant, entity, depth, max_nodes)
        if found is None:
            raise NotFound(f"no entity matches {entity!r}", reason="ENTITY_NOT_FOUND", metadata={"entity": entity})
        return found

    async def _graph_leg(self, tenant: str, query: SearchQuery) -> tuple[GraphLegResult, float]:
        started = time.perf_counter()
        result = await self._graph.search(
            GraphQuery(tenant=tenant, text=query.text, filter=query.filter, limit=self._settings.graph_limit)
        )
        return result, _ms(started)

    async def _corpus_version(self, tenant: str) -> int:
        version = await self._graph.corpus_version(tenant)
        self._versions.remember(tenant, version)
        return version

    async def _settle_version(self, task: asyncio.Task[int], tenant: str, started: float) -> int:
        try:
            return await asyncio.wait_for(task, self._graph_budget_s(started))
        except (TimeoutError, *_LEG_FAULTS):
            return self._versions.last_known(tenant)

    def _graph_budget_s(self, started: float) -> float:
        # A slow graph store must not hold the whole search: past its budget the leg degrades.
        return max(0.0, self._settings.graph_timeout_s - (time.perf_counter() - started))


def _retrieve_exception(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()


def _leg_index(result: VectorResult, graph: Sequence[LegHit]) -> dict[str, tuple[tuple[Leg, LegHit], ...]]:
    out: dict[str, list[tuple[Leg, LegHit]]] = {}
    for leg, hits in ((Leg.DENSE, result.dense), (Leg.SPARSE, result.sparse), (Leg.GRAPH, graph)):
        for hit in hits:
            out.setdefault(hit.chunk_id, []).append((leg, hit))
    return {cid: tuple(legs) for cid, legs in out.items()}
