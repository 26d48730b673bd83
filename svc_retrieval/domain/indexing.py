"""Writes and deletes: the index side of svc_retrieval.

Order matters so that nothing stored is lost or duplicated, whatever fails:

1. new points are written (deterministic ids: a retry rewrites the same points);
2. unchanged points already stored move to the new document version;
3. on the document's last batch, points of other versions are deleted, only
   after the new ones exist;
4. the graph facts are MERGEd in one transaction per batch, which also removes
   the document's stale chunk nodes and bumps the tenant's corpus version when
   anything changed.

A failure after step 1 leaves the index with more than it needs, never less,
and retrying the batch finishes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from mesh.errors import FieldViolation, InvalidArgument
from mesh.sparse import SparseEncoder, SparseVector
from svc_retrieval.domain.ids import chunk_hash, point_id
from svc_retrieval.domain.model import (
    ChunkPoint,
    DeleteStats,
    IndexStats,
    StoredChunk,
    UpsertBatch,
    UpsertStats,
)
from svc_retrieval.domain.ports import GraphStore, GraphWrite, VectorIndex
from svc_retrieval.domain.versions import KnownVersions

# How far a dense vector's length may stray from 1 before it is rejected as not normalised.
_UNIT_TOLERANCE = 1e-2


class Indexer:
    """UpsertChunks, DeleteDocuments and GetIndexStats for one tenant at a time."""

    def __init__(
        self,
        vectors: VectorIndex,
        graph: GraphStore,
        encoder: SparseEncoder,
        dense_dim: int,
        versions: KnownVersions,
    ) -> None:
        self._vectors = vectors
        self._graph = graph
        self._encoder = encoder
        self._dense_dim = dense_dim
        self._versions = versions
        self._doc_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._doc_lock_users: dict[tuple[str, str], int] = {}

    async def upsert(self, tenant: str, batches: AsyncIterator[UpsertBatch]) -> UpsertStats:
        """Writes every batch of a stream in order; returns what changed."""
        documents = written = unchanged = deleted = nodes = rels = 0
        version: int | None = None
        async for batch in batches:
            self._check(batch)
            async with self._doc_lock(tenant, batch.document.doc_id):
                w, u, d, n, r, version = await self._write_batch(tenant, batch)
            written += w
            unchanged += u
            deleted += d
            nodes += n
            rels += r
            documents += int(batch.document_complete)
        if version is None:
            # An empty stream changed nothing; it still reports where the corpus stands.
            version = await self._graph.corpus_version(tenant)
        return UpsertStats(
            documents=documents,
            points_written=written,
            points_unchanged=unchanged,
            points_deleted=deleted,
            nodes_created=nodes,
            relationships_created=rels,
            corpus_version=version,
        )

    async def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> DeleteStats:
        """Removes the documents' points, then their graph nodes and edges; bumps the corpus version."""
        unique = list(dict.fromkeys(doc_ids))
        points = await self._vectors.delete_documents(tenant, unique)
        stats = await self._graph.delete_documents(tenant, unique, points)
        self._versions.remember(tenant, stats.corpus_version)
        return stats

    async def stats(self, tenant: str) -> IndexStats:
        """Counts for the tenant."""
        points, counts, version = await asyncio.gather(
            self._vectors.count(tenant), self._graph.counts(tenant), self._graph.corpus_version(tenant)
        )
        self._versions.remember(tenant, version)
        return IndexStats(points=points, graph=counts, corpus_version=version)

    async def _write_batch(self, tenant: str, batch: UpsertBatch) -> tuple[int, int, int, int, int, int]:
        doc = batch.document
        now = datetime.now(UTC)
        now_iso = now.isoformat()
        points: list[ChunkPoint] = []
        for chunk in batch.chunks:
            digest = chunk_hash(doc, chunk)
            cid = point_id(tenant, doc.doc_id, chunk.chunk_index, digest)
            sparse = chunk.sparse
            if sparse is None:
                sparse = self._encoder.encode_document(chunk.text, title=doc.title, section=chunk.section)
            stored = StoredChunk(
                chunk_id=cid,
                doc_id=doc.doc_id,
                source_uri=doc.source_uri,
                title=doc.title,
                section=chunk.section,
                chunk_index=chunk.chunk_index,
                chunk_hash=digest,
                text=chunk.text,
                document_type=doc.document_type,
                doc_version=doc.doc_version,
                ingested_at=now,
            )
            points.append(ChunkPoint(tenant=tenant, chunk=stored, dense=chunk.dense, sparse=sparse))

        ids = [p.chunk.chunk_id for p in points]
        existing = await self._vectors.existing_versions(tenant, ids) if ids else {}
        new_points = [p for p in points if p.chunk.chunk_id not in existing]
        moved = [cid for cid, v in existing.items() if v != doc.doc_version]
        if new_points:
            await self._vectors.upsert(new_points)
        if moved:
            await self._vectors.set_version(tenant, moved, doc.doc_version, now_iso)
        deleted = 0
        if batch.document_complete:
            deleted = await self._vectors.delete_stale(tenant, doc.doc_id, doc.doc_version)

        result = await self._graph.write(
            GraphWrite(
                tenant=tenant,
                document=doc,
                ingested_at_iso=now_iso,
                chunks=[
                    (p.chunk.chunk_id, p.chunk.chunk_index, c.mentions)
                    for p, c in zip(points, batch.chunks, strict=True)
                ],
                entities=batch.entities,
                relations=batch.relations,
                document_complete=batch.document_complete,
                points_changed=bool(new_points or moved or deleted),
            )
        )
        self._versions.remember(tenant, result.corpus_version)
        return (
            len(new_points),
            len(points) - len(new_points),
            deleted,
            result.nodes_created,
            result.relationships_created,
            result.corpus_version,
        )

    def _check(self, batch: UpsertBatch) -> None:
        """What the proto rules cannot say: vector sizes, finite values, unique positions."""
        violations: list[FieldViolation] = []
        seen: set[int] = set()
        for i, chunk in enumerate(batch.chunks):
            if len(chunk.dense) != self._dense_dim:
                violations.append(
                    FieldViolation(
                        f"chunks[{i}].dense",
                        f"has {len(chunk.dense)} values; the index holds {self._dense_dim}-dimensional vectors",
                    )
                )
            else:
                norm = math.sqrt(math.fsum(x * x for x in chunk.dense))
                if not math.isfinite(norm) or abs(norm - 1.0) > _UNIT_TOLERANCE:
                    violations.append(FieldViolation(f"chunks[{i}].dense", f"must be unit length (length {norm:.4g})"))
            if chunk.sparse is not None:
                problem = _sparse_problem(chunk.sparse)
                if problem:
                    violations.append(FieldViolation(f"chunks[{i}].sparse", problem))
            if chunk.chunk_index in seen:
                violations.append(
                    FieldViolation(f"chunks[{i}].chunk_index", f"chunk_index {chunk.chunk_index} repeats in the batch")
                )
            seen.add(chunk.chunk_index)
        for i, target in enumerate(batch.document.links_to):
            if not 1 <= len(target) <= 128:
                violations.append(
                    FieldViolation(f"document.links_to[{i}]", "must be a document id of 1 to 128 characters")
                )
        if violations:
            raise InvalidArgument(
                f"invalid batch for document {batch.document.doc_id!r}: "
                f"{violations[0].field}: {violations[0].description}",
                reason="INVALID_CHUNKS",
                violations=violations,
            )

    @contextlib.asynccontextmanager
    async def _doc_lock(self, tenant: str, doc_id: str) -> AsyncIterator[None]:
        # Two streams writing the same document would race between reading which
        # points exist and deleting stale ones; one lock per document keeps that
        # serial while different documents are written in parallel.
        key = (tenant, doc_id)
        lock = self._doc_locks.setdefault(key, asyncio.Lock())
        self._doc_lock_users[key] = self._doc_lock_users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._doc_lock_users[key] -= 1
            if not self._doc_lock_users[key]:
                del self._doc_lock_users[key]
                del self._doc_locks[key]


def _sparse_problem(vector: SparseVector) -> str:
    if len(set(vector.indices)) != len(vector.indices):
        return "indices must be unique"
    if not all(math.isfinite(v) for v in vector.values):
        return "values must be finite"
    return ""
