"""The answer caches on their real engines: Redis, an embedded Qdrant Edge shard, qdrant-client."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from qdrant_client import AsyncQdrantClient

from svc_agent.clients.answer_cache import RedisAnswerCache, cache_key
from svc_agent.clients.semantic_cache import EdgeSemanticCache, QdrantSemanticCache
from svc_agent.domain.model import CachedAnswer, Citation
from svc_agent.domain.ports import CacheScope, SemanticCache
from tests.support.tenants import new_tenant

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Payload indexes have no effect")]

ANSWER = CachedAnswer("Every five minutes [1].", (Citation(1, "c1", "d1", "file:///gc.md", "GC", "s", 0.9),), "q", True)
DIM = 16


def unit(seed: int, noise: float = 0.0, base: list[float] | None = None) -> list[float]:
    rng = random.Random(seed)
    vector = [x + rng.gauss(0, noise) for x in base] if base else [rng.gauss(0, 1) for _ in range(DIM)]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


async def test_exact_cache_round_trip_ttl_and_scoping(redis_client: aioredis.Redis) -> None:
    cache = RedisAnswerCache(redis_client, ttl_s=120)
    scope = CacheScope(new_tenant(), 3, "k4")
    assert await cache.get(scope, "how do i drain a node") is None
    await cache.put(scope, "how do i drain a node", ANSWER)
    assert await cache.get(scope, "how do i drain a node") == ANSWER
    assert 0 < await redis_client.ttl(cache_key(scope, "how do i drain a node")) <= 120
    assert await cache.get(CacheScope(scope.tenant, 4, "k4"), "how do i drain a node") is None
    assert await cache.get(CacheScope(new_tenant(), 3, "k4"), "how do i drain a node") is None
    assert await cache.get(CacheScope(scope.tenant, 3, "k2"), "how do i drain a node") is None


@pytest.fixture(params=["edge", "qdrant-client"])
async def semantic(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SemanticCache]:
    """Each backend: the embedded shard, and qdrant-client (its local mode stands in for a server)."""
    cache: EdgeSemanticCache | QdrantSemanticCache
    if request.param == "edge":
        cache = EdgeSemanticCache(tmp_path / "shard", ttl_s=3600)
    else:
        cache = QdrantSemanticCache(AsyncQdrantClient(location=":memory:"), "agent_semantic_cache", ttl_s=3600)
    try:
        yield cache
    finally:
        await cache.close()


async def test_semantic_lookup_finds_close_questions_only_in_scope(semantic: SemanticCache) -> None:
    tenant = new_tenant()
    scope = CacheScope(tenant, 5, "k4")
    question = unit(1)
    await semantic.store(scope, "How often are images garbage collected?", question, ANSWER)
    await semantic.store(scope, "What is a Service?", unit(2), CachedAnswer("other", (), "q2", True))

    close = unit(3, noise=0.05, base=question)
    hit = await semantic.lookup(scope, close, 0.9)
    assert hit is not None and hit.answer == ANSWER and hit.similarity >= 0.9
    assert hit.question == "How often are images garbage collected?"

    assert await semantic.lookup(scope, unit(4), 0.9) is None
    assert await semantic.lookup(CacheScope(new_tenant(), 5, "k4"), close, 0.9) is None
    assert await semantic.lookup(CacheScope(tenant, 5, "k2"), close, 0.9) is None
    assert await semantic.lookup(CacheScope(tenant, 6, "k4"), close, 0.9) is None


async def test_a_new_corpus_version_drops_the_tenants_older_entries(semantic: SemanticCache) -> None:
    tenant, neighbour = new_tenant(), new_tenant()
    question = unit(7)
    await semantic.store(CacheScope(tenant, 1, "k4"), "q", question, ANSWER)
    await semantic.store(CacheScope(neighbour, 1, "k4"), "q", question, ANSWER)
    await semantic.store(CacheScope(tenant, 2, "k4"), "q", question, ANSWER)
    assert await semantic.lookup(CacheScope(tenant, 2, "k4"), question, 0.99) is not None
    assert await semantic.lookup(CacheScope(tenant, 1, "k4"), question, 0.99) is None
    assert await semantic.lookup(CacheScope(neighbour, 1, "k4"), question, 0.99) is not None


async def test_storing_a_question_again_replaces_it(semantic: SemanticCache) -> None:
    scope = CacheScope(new_tenant(), 1, "k4")
    await semantic.store(scope, "How do I drain a node?", unit(9), ANSWER)
    newer = CachedAnswer("newer", (), "q", True)
    await semantic.store(scope, "how do I drain a node", unit(9), newer)
    hit = await semantic.lookup(scope, unit(9), 0.99)
    assert hit is not None and hit.answer == newer


async def test_the_edge_shard_survives_a_restart(tmp_path: Path) -> None:
    scope = CacheScope(new_tenant(), 1, "k4")
    first = EdgeSemanticCache(tmp_path / "shard", ttl_s=3600)
    await first.store(scope, "q", unit(11), ANSWER)
    await first.close()
    second = EdgeSemanticCache(tmp_path / "shard", ttl_s=3600)
    try:
        hit = await second.lookup(scope, unit(11), 0.99)
        assert hit is not None and hit.answer == ANSWER
        # Another embedder (other dimensions) starts the cache over instead of failing.
        assert await second.lookup(scope, [1.0] + [0.0] * 31, 0.5) is None
    finally:
        await second.close()


async def test_expired_entries_are_not_returned(tmp_path: Path) -> None:
    cache = EdgeSemanticCache(tmp_path / "shard", ttl_s=0)
    try:
        scope = CacheScope(new_tenant(), 1, "k4")
        await cache.store(scope, "q", unit(12), ANSWER)
        assert await cache.lookup(scope, unit(12), 0.5) is None
    finally:
        await cache.close()
