"""The exact-match answer cache in Redis.

The key holds the tenant, the corpus version, the answer-changing options and
a hash of the normalised question, so an ingest (a new corpus version) makes
every older entry unreachable at once; entries expire after a TTL.
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mesh import telemetry
from mesh.errors import Unavailable
from svc_agent.clients.codec import cached_answer_from_json, cached_answer_to_json
from svc_agent.domain.model import CachedAnswer
from svc_agent.domain.ports import CacheScope

KEY_PREFIX = "ragmesh:agent:answer:v1"


def cache_key(scope: CacheScope, normalized_question: str) -> str:
    """The Redis key of a question's answer in ``scope``."""
    digest = hashlib.sha256(normalized_question.encode()).hexdigest()[:40]
    return f"{KEY_PREFIX}:{scope.tenant}:{scope.corpus_version}:{scope.variant}:{digest}"


class RedisAnswerCache:
    """AnswerCache over a Redis client."""

    def __init__(self, client: aioredis.Redis, *, ttl_s: int) -> None:
        self._client = client
        self._ttl_s = ttl_s

    @telemetry.traced_store("redis", "get")
    async def get(self, scope: CacheScope, normalized_question: str) -> CachedAnswer | None:
        """The cached answer, or None (also for an entry written in an older format)."""
        try:
            raw = await self._client.get(cache_key(scope, normalized_question))
        except RedisError as exc:
            raise Unavailable(f"answer cache unavailable: {exc}", reason="REDIS_UNAVAILABLE") from exc
        return None if raw is None else cached_answer_from_json(raw)

    @telemetry.traced_store("redis", "put")
    async def put(self, scope: CacheScope, normalized_question: str, answer: CachedAnswer) -> None:
        """Caches the answer for the TTL."""
        try:
            await self._client.set(cache_key(scope, normalized_question), cached_answer_to_json(answer), ex=self._ttl_s)
        except RedisError as exc:
            raise Unavailable(f"answer cache unavailable: {exc}", reason="REDIS_UNAVAILABLE") from exc
