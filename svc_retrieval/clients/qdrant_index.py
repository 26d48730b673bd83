"""The chunk collection on a Qdrant server, through qdrant-client (gRPC).

Same schema and queries as the embedded engine (``edge_index``): a named dense
vector and a sparse vector with the IDF modifier, payload indexes on the
fields every query filters by, prefetch + weighted RRF fusion in the engine.
The server is reached with ``prefer_grpc``; tests run the same code against
qdrant-client's local mode (``location=":memory:"`` or ``path=...``).

Transport faults (connection refused, UNAVAILABLE, 5xx, timeouts) become
UNAVAILABLE for the caller; a deadline that passes becomes DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import grpc
import httpx
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from mesh import telemetry
from mesh.context import call_timeout_s
from mesh.errors import DeadlineExceeded, Unavailable
from svc_retrieval.clients import payload as pl
from svc_retrieval.clients.edge_index import HnswSettings
from svc_retrieval.clients.vector_result import vector_result
from svc_retrieval.domain.model import (
    ChunkPoint,
    SearchFilter,
    StoredChunk,
    VectorQuery,
    VectorResult,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT_GRPC = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
}


class QdrantServerIndex:
    """VectorIndex over a Qdrant collection reached through qdrant-client."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        collection: str,
        dense_dim: int,
        hnsw: HnswSettings,
        *,
        call_ceiling_s: float = 30.0,
    ) -> None:
        self._client = client
        self._collection = collection
        self._dense_dim = dense_dim
        self._hnsw = hnsw
        self._call_ceiling_s = call_ceiling_s
        self._ready = False
        self._ready_lock = asyncio.Lock()

    async def open(self) -> None:
        """Creates the collection and its payload indexes; a server that is down is retried on first use."""
        try:
            await self._ensure_collection()
        except Unavailable as exc:
            log.warning("vector store not reachable at start-up; the collection is checked on first use: %s", exc)

    async def _ensure_collection(self) -> None:
        if self._ready:
            return
        async with self._ready_lock:
            if not self._ready:
                await self._create_collection()
                self._ready = True

    async def _create_collection(self) -> None:
        if not await self._call(lambda t: self._client.collection_exists(self._collection), ensure=False):
            await self._call(
                lambda t: self._client.create_collection(
                    self._collection,
                    vectors_config={
                        pl.DENSE_VECTOR: models.VectorParams(size=self._dense_dim, distance=models.Distance.COSINE)
                    },
                    sparse_vectors_config={pl.SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    hnsw_config=models.HnswConfigDiff(
                        m=self._hnsw.m,
                        ef_construct=self._hnsw.ef_construct,
                        full_scan_threshold=self._hnsw.full_scan_threshold_kb,
                    ),
                    optimizers_config=models.OptimizersConfigDiff(indexing_threshold=self._hnsw.indexing_threshold_kb),
                    timeout=t,
                ),
                ensure=False,
            )
        indexes: dict[str, Any] = {
            pl.TENANT_FIELD: models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
            pl.SOURCE_FIELD: models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, prefix=True),
            pl.DATETIME_FIELD: models.PayloadSchemaType.DATETIME,
            pl.VERSION_FIELD: models.PayloadSchemaType.INTEGER,
            **{name: models.PayloadSchemaType.KEYWORD for name in pl.KEYWORD_FIELDS},
        }
        info = await self._call(lambda t: self._client.get_collection(self._collection), ensure=False)
        for name, schema in indexes.items():
            if name not in (info.payload_schema or {}):
                await self._call(
                    lambda t, n=name, s=schema: self._client.create_payload_index(
                        self._collection, n, field_schema=s, timeout=t
                    ),
                    ensure=False,
                )

    async def close(self) -> None:
        """Closes the client."""
        await self._client.close()

    async def _call(self, make: Any, *, ensure: bool = True) -> Any:
        """Runs ``make(timeout_s)`` and maps transport faults to domain errors."""
        if ensure:
            await self._ensure_collection()
        timeout = call_timeout_s(self._call_ceiling_s)
        try:
            awaitable: Awaitable[Any] = make(max(1, math.ceil(timeout)))
            return await awaitable
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DeadlineExceeded(f"vector store call timed out: {exc.details()}") from exc
            if exc.code() in _TRANSIENT_GRPC:
                raise Unavailable(
                    f"vector store unavailable: {exc.details()}", reason="VECTOR_STORE_UNAVAILABLE"
                ) from exc
            raise
        except (ResponseHandlingException, httpx.TransportError, ConnectionError, TimeoutError) as exc:
            raise Unavailable(f"vector store unavailable: {exc}", reason="VECTOR_STORE_UNAVAILABLE") from exc
        except UnexpectedResponse as exc:
            if exc.status_code is not None and exc.status_code >= 500:
                raise Unavailable(f"vector store error {exc.status_code}", reason="VECTOR_STORE_UNAVAILABLE") from exc
            raise

    @telemetry.traced_store("qdrant", "existing_versions")
    async def existing_versions(self, tenant: str, chunk_ids: Sequence[str]) -> dict[str, int]:
        """The doc_version of each of ``chunk_ids`` the tenant already has."""
        flt = models.Filter(must=[_tenant(tenant), models.HasIdCondition(has_id=list(chunk_ids))])
        records, _ = await self._call(
            lambda t: self._client.scroll(
                self._collection,
                scroll_filter=flt,
                limit=len(chunk_ids),
                with_payload=[pl.VERSION_FIELD],
                with_vectors=False,
                timeout=t,
            )
        )
        return {str(r.id): int((r.payload or {}).get(pl.VERSION_FIELD, 0)) for r in records}

    @telemetry.traced_store("qdrant", "upsert")
    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        """Writes the points (waits until they are applied)."""
        structs = []
        for p in points:
            vector: dict[str, Any] = {pl.DENSE_VECTOR: list(p.dense)}
            if p.sparse is not None and len(p.sparse):
                vector[pl.SPARSE_VECTOR] = models.SparseVector(
                    indices=list(p.sparse.indices), values=list(p.sparse.values)
                )
            structs.append(models.PointStruct(id=p.chunk.chunk_id, vector=vector, payload=pl.to_payload(p)))
        await self._call(lambda t: self._client.upsert(self._collection, points=structs, wait=True, timeout=t))

    async def set_version(self, tenant: str, chunk_ids: Sequence[str], doc_version: int, ingested_at_iso: str) -> None:
        """Moves unchanged chunks to a new document version."""
        flt = models.Filter(must=[_tenant(tenant), models.HasIdCondition(has_id=list(chunk_ids))])
        await self._call(
            lambda t: self._client.set_payload(
                self._collection,
                payload={pl.VERSION_FIELD: doc_version, pl.DATETIME_FIELD: ingested_at_iso},
                points=models.FilterSelector(filter=flt),
                wait=True,
                timeout=t,
            )
        )

    async def delete_stale(self, tenant: str, doc_id: str, keep_version: int) -> int:
        """Deletes the document's points of other versions."""
        flt = models.Filter(
            must=[_tenant(tenant), _match(pl.DOC_FIELD, doc_id)],
            must_not=[_match(pl.VERSION_FIELD, keep_version)],
        )
        return await self._count_and_delete(flt)

    @telemetry.traced_store("qdrant", "delete_documents")
    async def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> int:
        """Deletes every point of the documents."""
        flt = models.Filter(
            must=[_tenant(tenant), models.FieldCondition(key=pl.DOC_FIELD, match=models.MatchAny(any=list(doc_ids)))]
        )
        return await self._count_and_delete(flt)

    async def _count_and_delete(self, flt: models.Filter) -> int:
        found: int = (
            await self._call(lambda t: self._client.count(self._collection, count_filter=flt, exact=True, timeout=t))
        ).count
        if found:
            await self._call(
                lambda t: self._client.delete(
                    self._collection, points_selector=models.FilterSelector(filter=flt), wait=True, timeout=t
                )
            )
        return found

    async def count(self, tenant: str) -> int:
        """Points the tenant has."""
        flt = models.Filter(must=[_tenant(tenant)])
        result = await self._call(
            lambda t: self._client.count(self._collection, count_filter=flt, exact=True, timeout=t)
        )
        return int(result.count)

    @telemetry.traced_store("qdrant", "fetch")
    async def fetch(self, tenant: str, chunk_ids: Sequence[str], search_filter: SearchFilter) -> dict[str, StoredChunk]:
        """The tenant's chunks among ``chunk_ids`` that pass the filter."""
        if not chunk_ids:
            return {}
        flt = _filter(tenant, search_filter, models.HasIdCondition(has_id=list(chunk_ids)))
        records, _ = await self._call(
            lambda t: self._client.scroll(
                self._collection, scroll_filter=flt, limit=len(chunk_ids), with_payload=True, timeout=t
            )
        )
        return {str(r.id): pl.from_payload(str(r.id), r.payload or {}) for r in records}

    @telemetry.traced_store("qdrant", "search")
    async def search(self, query: VectorQuery) -> VectorResult:
        """Dense and sparse legs fused with weighted RRF in the engine, in one batch request."""
        flt = _filter(query.tenant, query.filter)
        params = models.SearchParams(hnsw_ef=query.hnsw_ef) if query.hnsw_ef else None
        legs: list[tuple[Any, str, models.SearchParams | None]] = []
        if query.dense is not None:
            legs.append((list(query.dense), pl.DENSE_VECTOR, params))
        if query.sparse is not None:
            sparse = models.SparseVector(indices=list(query.sparse.indices), values=list(query.sparse.values))
            legs.append((sparse, pl.SPARSE_VECTOR, None))
        fused_in_engine = len(legs) == 2
        requests: list[models.QueryRequest] = []
        if fused_in_engine:
            requests.append(
                models.QueryRequest(
                    prefetch=[
                        models.Prefetch(query=q, using=using, limit=query.leg_limit, filter=flt, params=p)
                        for q, using, p in legs
                    ],
                    query=models.RrfQuery(
                        rrf=models.Rrf(k=query.rrf_k, weights=[query.dense_weight, query.sparse_weight])
                    ),
                    filter=flt,
                    limit=query.fused_limit,
                    with_payload=True,
                )
            )
        for q, using, p in legs:
            requests.append(
                models.QueryRequest(
                    query=q, using=using, filter=flt, params=p, limit=query.leg_limit, with_payload=not fused_in_engine
                )
            )
        responses = await self._call(
            lambda t: self._client.query_batch_points(self._collection, requests=requests, timeout=t)
        )
        return vector_result(query, [r.points for r in responses], fused_in_engine=fused_in_engine)


def _tenant(tenant: str) -> models.FieldCondition:
    return _match(pl.TENANT_FIELD, tenant)


def _match(key: str, value: str | int) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _filter(tenant: str, search_filter: SearchFilter, *extra: Any) -> models.Filter:
    must: list[Any] = [_tenant(tenant), *extra]
    if search_filter.source_prefix:
        must.append(
            models.FieldCondition(key=pl.SOURCE_FIELD, match=models.MatchPrefix(prefix=search_filter.source_prefix))
        )
    if search_filter.document_types:
        must.append(
            models.FieldCondition(key=pl.TYPE_FIELD, match=models.MatchAny(any=list(search_filter.document_types)))
        )
    if search_filter.doc_ids:
        must.append(models.FieldCondition(key=pl.DOC_FIELD, match=models.MatchAny(any=list(search_filter.doc_ids))))
    if search_filter.ingested_after is not None:
        must.append(
            models.FieldCondition(key=pl.DATETIME_FIELD, range=models.DatetimeRange(gt=search_filter.ingested_after))
        )
    return models.Filter(must=must)
