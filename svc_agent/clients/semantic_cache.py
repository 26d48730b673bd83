"""The semantic answer cache: the agent's own vector collection of answered questions.

Locally it is an embedded Qdrant Edge shard in the agent's process; in
production a Qdrant collection reached through qdrant-client. Both keep one
point per (tenant, corpus version, options, question) with the question's
embedding and the answer in the payload, and look up with a filter on tenant,
corpus version and options, so a re-ingest (a new corpus version) invalidates
every older entry; those are deleted on the next store for the tenant, and
entries older than the TTL are neither returned nor kept.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe
from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ApiException

from mesh import telemetry
from mesh.errors import Unavailable
from svc_agent.clients.codec import cached_answer_from_json, cached_answer_to_json
from svc_agent.domain.model import CachedAnswer
from svc_agent.domain.ports import CacheScope, SemanticHit
from svc_agent.domain.text import normalize_question

T = TypeVar("T")
VECTOR_NAME = "question"
_ID_NAMESPACE = uuid.UUID("5b0c3a4e-7d1f-4c57-9f59-3f3b0f8f6a21")


def point_id(scope: CacheScope, question: str) -> str:
    """One point per question and scope: storing the same question again replaces it."""
    key = f"{scope.tenant}\x1f{scope.corpus_version}\x1f{scope.variant}\x1f{normalize_question(question)}"
    return str(uuid.uuid5(_ID_NAMESPACE, key))


def _payload(scope: CacheScope, question: str, answer: CachedAnswer) -> dict[str, Any]:
    return {
        "tenant": scope.tenant,
        "corpus_version": scope.corpus_version,
        "variant": scope.variant,
        "question": question,
        "answer": cached_answer_to_json(answer),
        "created_at": time.time(),
    }


def _hit(payload: dict[str, Any] | None, score: float) -> SemanticHit | None:
    if not payload:
        return None
    answer = cached_answer_from_json(str(payload.get("answer", "")))
    if answer is None:
        return None
    return SemanticHit(answer=answer, similarity=float(score), question=str(payload.get("question", "")))


class EdgeSemanticCache:
    """SemanticCache in an embedded Qdrant Edge shard (one process owns it).

    The shard is created on first use, sized to the embedder's vectors; one
    worker thread runs every shard call, so the event loop never blocks on it
    and the shard never sees two calls at once.
    """

    def __init__(self, path: Path, *, ttl_s: float) -> None:
        self._path = path
        self._ttl_s = ttl_s
        self._shard: qe.EdgeShard | None = None
        self._dimensions = 0
        self._lock = asyncio.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="semantic-cache")
        self._pruned_version: dict[str, int] = {}

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except (OSError, RuntimeError, ValueError) as exc:
            raise Unavailable(f"semantic cache unavailable: {exc}", reason="SEMANTIC_CACHE_UNAVAILABLE") from exc

    def _open(self, dimensions: int) -> qe.EdgeShard:
        config = qe.EdgeConfig(vectors={VECTOR_NAME: qe.EdgeVectorParams(size=dimensions, distance=qe.Distance.Cosine)})
        if self._path.exists() and any(self._path.iterdir()):
            try:
                shard = qe.EdgeShard.load(str(self._path), config)
            except (OSError, RuntimeError, ValueError):
                # A shard of another embedder (other dimensions) or a damaged one: a cache may start over.
                shutil.rmtree(self._path)
            else:
                return shard
        self._path.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(self._path), config)
        for field, kind in (
            ("tenant", qe.PayloadSchemaType.Keyword),
            ("variant", qe.PayloadSchemaType.Keyword),
            ("corpus_version", qe.PayloadSchemaType.Integer),
            ("created_at", qe.PayloadSchemaType.Float),
        ):
            shard.update(qe.UpdateOperation.create_field_index(field, kind))
        return shard

    async def _shard_for(self, dimensions: int) -> qe.EdgeShard:
        async with self._lock:
            if self._shard is None or self._dimensions != dimensions:
                if self._shard is not None:
                    old = self._shard
                    await self._run(old.close)
                    await self._run(lambda: shutil.rmtree(self._path, ignore_errors=True))
                self._shard = await self._run(lambda: self._open(dimensions))
                self._dimensions = dimensions
            return self._shard

    def _scope_filter(self, scope: CacheScope) -> qe.Filter:
        return qe.Filter(
            must=[
                qe.FieldCondition("tenant", match=qe.MatchValue(scope.tenant)),
                qe.FieldCondition("variant", match=qe.MatchValue(scope.variant)),
                qe.FieldCondition("corpus_version", match=qe.MatchValue(scope.corpus_version)),
                qe.FieldCondition("created_at", range=qe.RangeFloat(gte=time.time() - self._ttl_s)),
            ]
        )

    @telemetry.traced_store("qdrant", "lookup")
    async def lookup(self, scope: CacheScope, vector: Sequence[float], min_similarity: float) -> SemanticHit | None:
        """The most similar cached question of ``scope`` at or above ``min_similarity``."""
        shard = await self._shard_for(len(vector))
        request = qe.QueryRequest(
            limit=1,
            query=qe.Query.Nearest(list(vector), using=VECTOR_NAME),
            filter=self._scope_filter(scope),
            with_payload=True,
            score_threshold=min_similarity,
        )
        points = await self._run(lambda: shard.query(request))
        return _hit(points[0].payload, points[0].score) if points else None

    @telemetry.traced_store("qdrant", "store")
    async def store(self, scope: CacheScope, question: str, vector: Sequence[float], answer: CachedAnswer) -> None:
        """Caches the answer; on the tenant's first store at a new version, drops its older entries."""
        shard = await self._shard_for(len(vector))
        point = qe.Point(point_id(scope, question), {VECTOR_NAME: list(vector)}, _payload(scope, question, answer))
        await self._run(lambda: shard.update(qe.UpdateOperation.upsert_points([point])))
        if self._pruned_version.get(scope.tenant) != scope.corpus_version:
            current = qe.FieldCondition("corpus_version", match=qe.MatchValue(scope.corpus_version))
            stale = qe.Filter(
                must=[qe.FieldCondition("tenant", match=qe.MatchValue(scope.tenant))],
                should=[
                    qe.Filter(must_not=[current]),
                    qe.FieldCondition("created_at", range=qe.RangeFloat(lt=time.time() - self._ttl_s)),
                ],
            )
            await self._run(lambda: shard.update(qe.UpdateOperation.delete_points_by_filter(stale)))
            self._pruned_version[scope.tenant] = scope.corpus_version

    async def close(self) -> None:
        """Flushes and closes the shard."""
        if self._shard is not None:
            shard, self._shard = self._shard, None
            with contextlib.suppress(Unavailable):
                await self._run(shard.flush)
                await self._run(shard.close)
        self._executor.shutdown(wait=True)


class QdrantSemanticCache:
    """SemanticCache in a Qdrant collection through qdrant-client (production)."""

    def __init__(self, client: AsyncQdrantClient, collection: str, *, ttl_s: float) -> None:
        self._client = client
        self._collection = collection
        self._ttl_s = ttl_s
        self._ready_dimensions = 0
        self._lock = asyncio.Lock()
        self._pruned_version: dict[str, int] = {}

    async def _ensure_collection(self, dimensions: int) -> None:
        async with self._lock:
            if self._ready_dimensions == dimensions:
                return
            if not await self._client.collection_exists(self._collection):
                await self._client.create_collection(
                    self._collection,
                    vectors_config={VECTOR_NAME: qm.VectorParams(size=dimensions, distance=qm.Distance.COSINE)},
                )
                for field, kind in (
                    ("tenant", qm.PayloadSchemaType.KEYWORD),
                    ("variant", qm.PayloadSchemaType.KEYWORD),
                    ("corpus_version", qm.PayloadSchemaType.INTEGER),
                    ("created_at", qm.PayloadSchemaType.FLOAT),
                ):
                    await self._client.create_payload_index(self._collection, field, field_schema=kind)
            self._ready_dimensions = dimensions

    def _scope_filter(self, scope: CacheScope) -> qm.Filter:
        return qm.Filter(
            must=[
                qm.FieldCondition(key="tenant", match=qm.MatchValue(value=scope.tenant)),
                qm.FieldCondition(key="variant", match=qm.MatchValue(value=scope.variant)),
                qm.FieldCondition(key="corpus_version", match=qm.MatchValue(value=scope.corpus_version)),
                qm.FieldCondition(key="created_at", range=qm.Range(gte=time.time() - self._ttl_s)),
            ]
        )

    @telemetry.traced_store("qdrant", "lookup")
    async def lookup(self, scope: CacheScope, vector: Sequence[float], min_similarity: float) -> SemanticHit | None:
        """The most similar cached question of ``scope`` at or above ``min_similarity``."""
        try:
            await self._ensure_collection(len(vector))
            response = await self._client.query_points(
                self._collection,
                query=list(vector),
                using=VECTOR_NAME,
                query_filter=self._scope_filter(scope),
                limit=1,
                with_payload=True,
                score_threshold=min_similarity,
            )
        except (ApiException, OSError, ValueError) as exc:
            raise Unavailable(f"semantic cache unavailable: {exc}", reason="SEMANTIC_CACHE_UNAVAILABLE") from exc
        points = response.points
        return _hit(points[0].payload, points[0].score) if points else None

    @telemetry.traced_store("qdrant", "store")
    async def store(self, scope: CacheScope, question: str, vector: Sequence[float], answer: CachedAnswer) -> None:
        """Caches the answer; on the tenant's first store at a new version, drops its older entries."""
        try:
            await self._ensure_collection(len(vector))
            await self._client.upsert(
                self._collection,
                points=[
                    qm.PointStruct(
                        id=point_id(scope, question),
                        vector={VECTOR_NAME: list(vector)},
                        payload=_payload(scope, question, answer),
                    )
                ],
            )
            if self._pruned_version.get(scope.tenant) != scope.corpus_version:
                stale = qm.Filter(
                    must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value=scope.tenant))],
                    should=[
                        qm.Filter(
                            must_not=[
                                qm.FieldCondition(key="corpus_version", match=qm.MatchValue(value=scope.corpus_version))
                            ]
                        ),
                        qm.FieldCondition(key="created_at", range=qm.Range(lt=time.time() - self._ttl_s)),
                    ],
                )
                await self._client.delete(self._collection, points_selector=qm.FilterSelector(filter=stale))
                self._pruned_version[scope.tenant] = scope.corpus_version
        except (ApiException, OSError, ValueError) as exc:
            raise Unavailable(f"semantic cache unavailable: {exc}", reason="SEMANTIC_CACHE_UNAVAILABLE") from exc

    async def close(self) -> None:
        """Closes the client."""
        await self._client.close()
