"""In-memory fakes of the retrieval ports, for unit tests of the domain logic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from mesh.errors import Unavailable
from svc_retrieval.domain import fusion
from svc_retrieval.domain.model import (
    ChunkPoint,
    DeleteStats,
    GraphCounts,
    GraphLegResult,
    GraphQuery,
    LegHit,
    Neighbourhood,
    SearchFilter,
    StoredChunk,
    VectorQuery,
    VectorResult,
)
from svc_retrieval.domain.ports import GraphWrite, GraphWriteResult, RerankResult


def _passes(chunk: StoredChunk, flt: SearchFilter) -> bool:
    if flt.source_prefix and not chunk.source_uri.startswith(flt.source_prefix):
        return False
    if flt.document_types and chunk.document_type not in flt.document_types:
        return False
    if flt.doc_ids and chunk.doc_id not in flt.doc_ids:
        return False
    return not (flt.ingested_after is not None and chunk.ingested_at <= flt.ingested_after)


@dataclass
class FakeVectorIndex:
    """Points in a dict; exact cosine and sparse dot product; RRF in Python like the engine's."""

    points: dict[str, ChunkPoint] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    down: bool = False

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise Unavailable("fake vector store is down")

    async def open(self) -> None:
        self._check("open")

    async def close(self) -> None:
        self.calls.append("close")

    async def existing_versions(self, tenant: str, chunk_ids: Sequence[str]) -> dict[str, int]:
        self._check("existing_versions")
        return {
            cid: self.points[cid].chunk.doc_version
            for cid in chunk_ids
            if cid in self.points and self.points[cid].tenant == tenant
        }

    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        self._check("upsert")
        for p in points:
            self.points[p.chunk.chunk_id] = p

    async def set_version(self, tenant: str, chunk_ids: Sequence[str], doc_version: int, ingested_at_iso: str) -> None:
        self._check("set_version")
        from dataclasses import replace
        from datetime import datetime

        for cid in chunk_ids:
            p = self.points[cid]
            chunk = replace(p.chunk, doc_version=doc_version, ingested_at=datetime.fromisoformat(ingested_at_iso))
            self.points[cid] = replace(p, chunk=chunk)

    async def delete_stale(self, tenant: str, doc_id: str, keep_version: int) -> int:
        self._check("delete_stale")
        stale = [
            cid
            for cid, p in self.points.items()
            if p.tenant == tenant and p.chunk.doc_id == doc_id and p.chunk.doc_version != keep_version
        ]
        for cid in stale:
            del self.points[cid]
        return len(stale)

    async def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> int:
        self._check("delete_documents")
        gone = [cid for cid, p in self.points.items() if p.tenant == tenant and p.chunk.doc_id in doc_ids]
        for cid in gone:
            del self.points[cid]
        return len(gone)

    async def count(self, tenant: str) -> int:
        self._check("count")
        return sum(1 for p in self.points.values() if p.tenant == tenant)

    async def fetch(self, tenant: str, chunk_ids: Sequence[str], search_filter: SearchFilter) -> dict[str, StoredChunk]:
        self._check("fetch")
        return {
            cid: self.points[cid].chunk
            for cid in chunk_ids
            if cid in self.points
            and self.points[cid].tenant == tenant
            and _passes(self.points[cid].chunk, search_filter)
        }

    async def search(self, query: VectorQuery) -> VectorResult:
        self._check("search")
        mine = [p for p in self.points.values() if p.tenant == query.tenant and _passes(p.chunk, query.filter)]
        dense: tuple[LegHit, ...] = ()
        sparse: tuple[LegHit, ...] = ()
        if query.dense is not None:
            q = query.dense
            scored = sorted(
                ((p.chunk.chunk_id, sum(a * b for a, b in zip(q, p.dense, strict=True))) for p in mine),
                key=lambda x: (-x[1], x[0]),
            )
            dense = fusion.ranked(scored[: query.leg_limit])
        if query.sparse is not None:
            terms = query.sparse.as_dict()
            scored = []
            for p in mine:
                if p.sparse is None:
                    continue
                s = sum(terms.get(i, 0.0) * v for i, v in zip(p.sparse.indices, p.sparse.values, strict=True))
                if s > 0:
                    scored.append((p.chunk.chunk_id, s))
            scored.sort(key=lambda x: (-x[1], x[0]))
            sparse = fusion.ranked(scored[: query.leg_limit])
        fused_scores = fusion.rrf([(dense, query.dense_weight), (sparse, query.sparse_weight)], query.rrf_k)
        order = fusion.best_first(fused_scores)[: query.fused_limit]
        fused = tuple(LegHit(cid, rank, fused_scores[cid]) for rank, cid in enumerate(order, start=1))
        return VectorResult(
            dense=dense, sparse=sparse, fused=fused, chunks={cid: self.points[cid].chunk for cid in order}
        )


@dataclass
class FakeGraphStore:
    """Records writes, answers the graph leg with preset hits, counts corpus versions."""

    hits: list[LegHit] = field(default_factory=list)
    writes: list[GraphWrite] = field(default_factory=list)
    deletes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    down: bool = False
    calls: list[str] = field(default_factory=list)
    searched: list[GraphQuery] = field(default_factory=list)
    version_reads: int = 0
    """Corpus-version reads of their own (``corpus_version``)."""
    version_reads_in_search: int = 0
    """Corpus versions read by the graph leg (``search``)."""

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise Unavailable("fake graph store is down", reason="GRAPH_STORE_UNAVAILABLE")

    async def open(self) -> None:
        self._check("open")

    async def close(self) -> None:
        self.calls.append("close")

    async def write(self, batch: GraphWrite) -> GraphWriteResult:
        self._check("write")
        self.writes.append(batch)
        created = len(batch.chunks)
        if batch.points_changed or created:
            self.versions[batch.tenant] = self.versions.get(batch.tenant, 0) + 1
        return GraphWriteResult(created, created, 0, self.versions.get(batch.tenant, 0))

    async def delete_documents(self, tenant: str, doc_ids: Sequence[str], points_deleted: int) -> DeleteStats:
        self._check("delete_documents")
        self.deletes.append((tenant, tuple(doc_ids)))
        self.versions[tenant] = self.versions.get(tenant, 0) + 1
        return DeleteStats(
            points_deleted=points_deleted, nodes_deleted=len(doc_ids), corpus_version=self.versions[tenant]
        )

    async def counts(self, tenant: str) -> GraphCounts:
        self._check("counts")
        return GraphCounts(documents=0, chunk_nodes=0, entity_nodes=0, relationships=0)

    async def corpus_version(self, tenant: str) -> int:
        self._check("corpus_version")
        self.version_reads += 1
        return self.versions.get(tenant, 0)

    async def search(self, query: GraphQuery) -> GraphLegResult:
        self._check("search")
        self.searched.append(query)
        self.version_reads_in_search += 1
        return GraphLegResult(list(self.hits), self.versions.get(query.tenant, 0))

    async def explore(self, tenant: str, entity: str, depth: int, max_nodes: int) -> Neighbourhood | None:
        self._check("explore")
        return None


def unit(values: Sequence[float]) -> list[float]:
    """``values`` scaled to unit length."""
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


@dataclass
class FakeEmbedder:
    """Maps known texts to preset vectors; raises Unavailable when down."""

    vectors: dict[str, list[float]] = field(default_factory=dict)
    default: list[float] = field(default_factory=lambda: unit([1.0, 0.0, 0.0]))
    down: bool = False

    async def embed_query(self, text: str) -> list[float]:
        if self.down:
            raise Unavailable("fake embedder is down")
        return self.vectors.get(text, self.default)


@dataclass
class FakeReranker:
    """Scores candidates by a preset per-text score (unknown texts score 0)."""

    scores: dict[str, float] = field(default_factory=dict)
    method_name: str = "cross-encoder"
    down: bool = False
    seen: list[list[str]] = field(default_factory=list)

    async def method(self) -> str:
        if self.down:
            raise Unavailable("fake reranker is down")
        return self.method_name

    async def rerank(self, query: str, documents: Sequence[str]) -> RerankResult:
        if self.down:
            raise Unavailable("fake reranker is down")
        self.seen.append(list(documents))
        order = sorted(range(len(documents)), key=lambda i: -self.scores.get(documents[i], 0.0))
        return RerankResult(order=[(i, self.scores.get(documents[i], 0.0)) for i in order], method=self.method_name)
