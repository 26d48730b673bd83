"""The chunk collection in the embedded Qdrant engine (``qdrant-edge-py``), in this process.

Qdrant Edge has no async API and lets one process open a data folder: every
call runs on a small thread pool of its own, and the shard is opened once, by
svc_retrieval, under ``MeshSettings.home/qdrant``. It builds its HNSW index
only when ``optimize()`` runs, so a background task optimizes once writes have
been quiet for a while; until then new points are searched exactly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from mesh import telemetry
from mesh.context import call_timeout_s
from mesh.errors import DeadlineExceeded
from svc_retrieval.clients import payload as pl
from svc_retrieval.clients.vector_result import LegRankings
from svc_retrieval.domain.model import (
    ChunkPoint,
    SearchFilter,
    StoredChunk,
    VectorQuery,
    VectorResult,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class HnswSettings:
    """HNSW graph parameters of the dense vector."""

    m: int = 16
    """Edges per node."""
    ef_construct: int = 100
    """Beam width while building."""
    full_scan_threshold_kb: int = 10_000
    """Below this many KB of vectors a search is exact instead of using the graph."""
    indexing_threshold_kb: int = 10_000
    """Segments larger than this many KB of vectors get an HNSW index when optimized."""


class EdgeVectorIndex:
    """VectorIndex over one embedded Qdrant Edge shard."""

    def __init__(
        self,
        path: Path,
        dense_dim: int,
        hnsw: HnswSettings,
        *,
        optimize_idle_s: float = 2.0,
        call_ceiling_s: float = 30.0,
        threads: int = 4,
        search_threads: int = 0,
    ) -> None:
        self._path = path
        self._dense_dim = dense_dim
        self._hnsw = hnsw
        self._optimize_idle_s = optimize_idle_s
        self._call_ceiling_s = call_ceiling_s
        # The engine's segment searches run on its own thread pool (8 threads unless told).
        self._search_threads = search_threads or len(os.sched_getaffinity(0))
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qdrant-edge")
        # Optimizing can take minutes on a large shard; it gets its own thread so searches keep theirs.
        self._optimizer_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-opt")
        self._shard: qe.EdgeShard | None = None
        self._dirty_since: float | None = None
        self._optimizer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Loads the shard (creating it on first use), ensures payload indexes, starts the optimizer."""
        loop = asyncio.get_running_loop()
        self._shard = await loop.run_in_executor(self._pool, self._open_sync)
        self._optimizer = asyncio.create_task(self._optimize_when_idle(), name="qdrant-edge-optimizer")
        # Points written before a restart may not have been optimized yet.
        self._mark_dirty()

    async def close(self) -> None:
        """Stops the optimizer, flushes and closes the shard."""
        if self._optimizer is not None:
            self._optimizer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._optimizer
        shard = self._shard
        self._shard = None
        if shard is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._pool, _flush_and_close, shard)
        self._pool.shutdown(wait=True)
        self._optimizer_pool.shutdown(wait=True)

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={pl.DENSE_VECTOR: qe.EdgeVectorParams(size=self._dense_dim, distance=qe.Distance.Cosine)},
            sparse_vectors={pl.SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(
                m=self._hnsw.m,
                ef_construct=self._hnsw.ef_construct,
                full_scan_threshold=self._hnsw.full_scan_threshold_kb,
            ),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self._hnsw.indexing_threshold_kb),
            max_search_threads=self._search_threads,
        )

    def _open_sync(self) -> qe.EdgeShard:
        self._path.mkdir(parents=True, exist_ok=True)
        has_data = any(self._path.iterdir())
        shard = qe.EdgeShard.load(str(self._path), self._config()) if has_data else None
        if shard is None:
            shard = qe.EdgeShard.create(str(self._path), self._config())
        schema = shard.info().payload_schema
        wanted: dict[str, Any] = {
            pl.TENANT_FIELD: qe.KeywordIndexParams(is_tenant=True),
            pl.SOURCE_FIELD: qe.KeywordIndexParams(prefix=True),
            pl.DATETIME_FIELD: qe.PayloadSchemaType.Datetime,
            pl.VERSION_FIELD: qe.PayloadSchemaType.Integer,
            **{name: qe.PayloadSchemaType.Keyword for name in pl.KEYWORD_FIELDS},
        }
        for name, params in wanted.items():
            if name not in schema:
                shard.update(qe.UpdateOperation.create_field_index(name, params))
        return shard

    # -- calls on the pool -------------------------------------------------

    async def _call(self, fn: Callable[[qe.EdgeShard], T]) -> T:
        shard = self._shard
        if shard is None:
            raise RuntimeError("the vector index is not open")
        timeout = call_timeout_s(self._call_ceiling_s)
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        future = loop.run_in_executor(self._pool, functools.partial(ctx.run, fn, shard))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            # The engine call cannot be interrupted; it finishes on its thread and its result is dropped.
            raise DeadlineExceeded(f"vector store call did not finish within {timeout:.3f} s") from exc

    async def _write(self, fn: Callable[[qe.EdgeShard], T]) -> T:
        result = await self._call(fn)
        self._mark_dirty()
        return result

    # -- VectorIndex -------------------------------------------------------

    @telemetry.traced_store("qdrant", "existing_versions")
    async def existing_versions(self, tenant: str, chunk_ids: Sequence[str]) -> dict[str, int]:
        """The doc_version of each of ``chunk_ids`` the tenant already has."""
        flt = qe.Filter(must=[_tenant(tenant), qe.HasIdCondition(set(chunk_ids))])

        def run(shard: qe.EdgeShard) -> dict[str, int]:
            records, _ = shard.scroll(
                qe.ScrollRequest(limit=len(chunk_ids), filter=flt, with_payload=[pl.VERSION_FIELD], with_vector=False)
            )
            return {str(r.id): int((r.payload or {}).get(pl.VERSION_FIELD, 0)) for r in records}

        return await self._call(run)

    @telemetry.traced_store("qdrant", "upsert")
    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        """Writes the points."""
        edge_points = [
            qe.Point(
                p.chunk.chunk_id,
                {
                    pl.DENSE_VECTOR: list(p.dense),
                    **(
                        {pl.SPARSE_VECTOR: qe.SparseVector(list(p.sparse.indices), list(p.sparse.values))}
                        if p.sparse is not None and len(p.sparse)
                        else {}
                    ),
                },
                pl.to_payload(p),
            )
            for p in points
        ]
        await self._write(lambda shard: shard.update(qe.UpdateOperation.upsert_points(edge_points)))

    async def set_version(self, tenant: str, chunk_ids: Sequence[str], doc_version: int, ingested_at_iso: str) -> None:
        """Moves unchanged chunks to a new document version."""
        op = qe.UpdateOperation.set_payload_by_filter(
            qe.Filter(must=[_tenant(tenant), qe.HasIdCondition(set(chunk_ids))]),
            {pl.VERSION_FIELD: doc_version, pl.DATETIME_FIELD: ingested_at_iso},
        )
        await self._write(lambda shard: shard.update(op))

    async def delete_stale(self, tenant: str, doc_id: str, keep_version: int) -> int:
        """Deletes the document's points of other versions."""
        flt = qe.Filter(
            must=[_tenant(tenant), _match(pl.DOC_FIELD, doc_id)],
            must_not=[_match(pl.VERSION_FIELD, keep_version)],
        )
        return await self._write(functools.partial(_count_and_delete, flt=flt))

    @telemetry.traced_store("qdrant", "delete_documents")
    async def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> int:
        """Deletes every point of the documents."""
        flt = qe.Filter(must=[_tenant(tenant), qe.FieldCondition(pl.DOC_FIELD, match=qe.MatchAny(list(doc_ids)))])
        return await self._write(functools.partial(_count_and_delete, flt=flt))

    async def count(self, tenant: str) -> int:
        """Points the tenant has."""
        flt = qe.Filter(must=[_tenant(tenant)])
        return await self._call(lambda shard: shard.count(qe.CountRequest(filter=flt, exact=True)))

    @telemetry.traced_store("qdrant", "fetch")
    async def fetch(self, tenant: str, chunk_ids: Sequence[str], search_filter: SearchFilter) -> dict[str, StoredChunk]:
        """The tenant's chunks among ``chunk_ids`` that pass the filter."""
        if not chunk_ids:
            return {}
        flt = _filter(tenant, search_filter, qe.HasIdCondition(set(chunk_ids)))

        def run(shard: qe.EdgeShard) -> dict[str, StoredChunk]:
            records, _ = shard.scroll(qe.ScrollRequest(limit=len(chunk_ids), filter=flt, with_payload=True))
            return {str(r.id): pl.from_payload(str(r.id), r.payload or {}) for r in records}

        return await self._call(run)

    @telemetry.traced_store("qdrant", "search")
    async def search(self, query: VectorQuery) -> VectorResult:
        """Dense and sparse each searched once in one planned batch, fused with weighted RRF here.

        The engine's own fused request would search both legs a second time (its
        prefetches), since every hit also carries its per-leg ranks; the fusion is
        the same formula (``LegRankings``), and only the fused hits' payloads are read.
        """
        flt = _filter(query.tenant, query.filter)
        params = qe.SearchParams(hnsw_ef=query.hnsw_ef) if query.hnsw_ef else None
        requests: list[qe.QueryRequest] = []
        if query.dense is not None:
            requests.append(
                qe.QueryRequest(
                    limit=query.leg_limit,
                    query=qe.Query.Nearest(list(query.dense), using=pl.DENSE_VECTOR),
                    filter=flt,
                    params=params,
                    with_payload=False,
                )
            )
        if query.sparse is not None:
            sparse = qe.SparseVector(list(query.sparse.indices), list(query.sparse.values))
            requests.append(
                qe.QueryRequest(
                    limit=query.leg_limit,
                    query=qe.Query.Nearest(sparse, using=pl.SPARSE_VECTOR),
                    filter=flt,
                    with_payload=False,
                )
            )

        def run(shard: qe.EdgeShard) -> VectorResult:
            rankings = LegRankings.of(query, shard.query_batch(qe.QueryBatchRequest(requests)) if requests else [])
            records = shard.retrieve(rankings.fused_ids, True, False) if rankings.fused_ids else []
            return rankings.with_payloads(records)

        return await self._call(run)

    # -- optimizer ---------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._dirty_since = time.monotonic()
        self._wake.set()

    async def optimize_now(self) -> bool:
        """Builds the HNSW index and merges segments now; True when anything changed."""
        shard = self._shard
        if shard is None:
            raise RuntimeError("the vector index is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._optimizer_pool, shard.optimize)

    async def _optimize_when_idle(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty_since is not None:
                quiet = time.monotonic() - self._dirty_since
                if quiet < self._optimize_idle_s:
                    await asyncio.sleep(self._optimize_idle_s - quiet)
                    continue
                self._dirty_since = None
                started = time.monotonic()
                try:
                    changed = await self.optimize_now()
                except Exception:
                    log.exception("optimizing the vector index failed")
                    break
                if changed:
                    log.info("vector index optimized in %.1f s", time.monotonic() - started)


def _flush_and_close(shard: qe.EdgeShard) -> None:
    shard.flush()
    shard.close()


def _count_and_delete(shard: qe.EdgeShard, *, flt: qe.Filter) -> int:
    found = shard.count(qe.CountRequest(filter=flt, exact=True))
    if found:
        shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
    return found


def _tenant(tenant: str) -> qe.FieldCondition:
    return _match(pl.TENANT_FIELD, tenant)


def _match(key: str, value: str | int) -> qe.FieldCondition:
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def _filter(tenant: str, search_filter: SearchFilter, *extra: Any) -> qe.Filter:
    must: list[Any] = [_tenant(tenant), *extra]
    if search_filter.source_prefix:
        must.append(qe.FieldCondition(pl.SOURCE_FIELD, match=qe.MatchPrefix(search_filter.source_prefix)))
    if search_filter.document_types:
        must.append(qe.FieldCondition(pl.TYPE_FIELD, match=qe.MatchAny(list(search_filter.document_types))))
    if search_filter.doc_ids:
        must.append(qe.FieldCondition(pl.DOC_FIELD, match=qe.MatchAny(list(search_filter.doc_ids))))
    if search_filter.ingested_after is not None:
        must.append(
            qe.FieldCondition(pl.DATETIME_FIELD, range=qe.RangeDateTime(gt=search_filter.ingested_after.isoformat()))
        )
    return qe.Filter(must=must)
