"""Wiring: opens the stores and channels from config and builds the answer loop.

Used by ``python -m svc_agent`` and by tests and benchmarks that run the
service in-process.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis
from qdrant_client import AsyncQdrantClient

from mesh import migrations
from mesh.channels import open_channel
from mesh.settings import MeshSettings
from svc_agent.clients import inference, retrieval, sandbox
from svc_agent.clients.answer_cache import RedisAnswerCache
from svc_agent.clients.memory import PostgresChatMemory
from svc_agent.clients.semantic_cache import EdgeSemanticCache, QdrantSemanticCache
from svc_agent.config import Config
from svc_agent.domain.loop import Agent, Dependencies
from svc_agent.domain.ports import AnswerCache, SemanticCache


@dataclasses.dataclass(frozen=True)
class Components:
    """The opened parts of svc_agent."""

    agent: Agent
    memory: PostgresChatMemory


@contextlib.asynccontextmanager
async def open_components(config: Config, settings: MeshSettings) -> AsyncIterator[Components]:
    """Opens the Postgres pool, Redis, the semantic cache and the channels; closes them on exit."""
    async with contextlib.AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(
            settings.postgres_dsn,
            min_size=config.postgres_pool_min_size,
            max_size=config.postgres_pool_max_size,
            timeout=config.store_timeout_s,
        )
        stack.push_async_callback(pool.close)
        if config.apply_migrations:
            # Versioned and locked: every replica may call it; each file is applied once.
            async with pool.acquire() as conn:
                await migrations.apply(conn)
        memory = PostgresChatMemory(pool, timeout_s=config.store_timeout_s)

        answer_cache: AnswerCache | None = None
        if config.exact_cache_enabled:
            redis_client = aioredis.Redis.from_url(
                settings.redis_url,
                socket_timeout=config.store_timeout_s,
                socket_connect_timeout=config.store_timeout_s,
            )
            stack.push_async_callback(redis_client.aclose)
            answer_cache = RedisAnswerCache(redis_client, ttl_s=config.exact_cache_ttl_s)

        semantic_cache: SemanticCache | None = None
        if config.semantic_cache_backend == "edge":
            edge = EdgeSemanticCache(config.semantic_cache_dir(settings.home), ttl_s=config.semantic_cache_ttl_s)
            stack.push_async_callback(edge.close)
            semantic_cache = edge
        elif config.semantic_cache_backend == "qdrant":
            server = QdrantSemanticCache(
                AsyncQdrantClient(url=config.semantic_cache_url),
                config.semantic_cache_collection,
                ttl_s=config.semantic_cache_ttl_s,
            )
            stack.push_async_callback(server.close)
            semantic_cache = server

        inference_channel = open_channel(settings.inference_addr, [inference.SERVICE])
        stack.push_async_callback(inference_channel.close, None)
        retrieval_channel = open_channel(settings.retrieval_addr, [retrieval.SERVICE])
        stack.push_async_callback(retrieval_channel.close, None)
        sandbox_channel = open_channel(settings.sandbox_addr, [sandbox.SERVICE])
        stack.push_async_callback(sandbox_channel.close, None)

        models = inference.InferenceClient(
            inference_channel, llm_model=config.llm_model, embed_model=config.embed_model
        )
        deps = Dependencies(
            generator=models,
            embedder=models,
            retriever=retrieval.RetrievalClient(retrieval_channel),
            code_runner=sandbox.SandboxClient(sandbox_channel),
            memory=memory,
            answer_cache=answer_cache,
            semantic_cache=semantic_cache,
        )
        yield Components(agent=Agent(deps, config.settings), memory=memory)
