"""Real stores for the agent's integration tests.

PostgreSQL and Redis are started with the local stack's supervisor in a
throwaway home under /tmp on free ports (a developer's stack is never
touched), and the project's migrations are applied with ``mesh.migrations``,
as ``ragmesh up`` does. The models are svc_inference, the real
InferenceService: the session's in-process one (tests/integration/conftest.py)
or a running one named by RAGMESH_AGENT_TEST_INFERENCE_ADDR. Nothing here is a
fake.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from mesh import migrations
from mesh.settings import MeshSettings
from tests.integration.local_inference import Inference
from tests.support.stores import free_ports, started_stores

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def store_settings() -> Iterator[MeshSettings]:
    """Mesh settings whose Postgres (migrated) and Redis were started for this session."""
    pg_port, redis_port = free_ports(2)
    with started_stores("rmagent-", ["postgres", "redis"], postgres_port=pg_port, redis_port=redis_port) as config:
        dsn = (
            f"postgresql://{config.postgres_user}:{config.postgres_password}"
            f"@127.0.0.1:{pg_port}/{config.postgres_database}"
        )
        asyncio.run(migrations.apply_dsn(dsn))
        yield MeshSettings(home=config.home, postgres_dsn=dsn, redis_url=f"redis://127.0.0.1:{redis_port}/0")


@pytest.fixture
async def pool(store_settings: MeshSettings) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool to the session's Postgres."""
    created = await asyncpg.create_pool(store_settings.postgres_dsn, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def redis_client(store_settings: MeshSettings) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's Redis."""
    client = aioredis.Redis.from_url(store_settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def neo4j_uri() -> Iterator[str]:
    """bolt:// URI of a Neo4j server started for this session (svc_retrieval keeps its graph there)."""
    bolt, http = free_ports(2)
    with started_stores("rmagneo-", ["neo4j"], neo4j_bolt_port=bolt, neo4j_http_port=http):
        yield f"bolt://127.0.0.1:{bolt}"


@pytest.fixture(scope="session")
def inference(request: pytest.FixtureRequest) -> Inference:
    """svc_inference: RAGMESH_AGENT_TEST_INFERENCE_ADDR (no runtime to look into), else the session's in-process one."""
    external = os.environ.get("RAGMESH_AGENT_TEST_INFERENCE_ADDR")
    if external:
        return Inference(addr=external, runtime=None)
    served: Inference = request.getfixturevalue("local_inference")
    return served


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def agent_mesh(
    store_settings: MeshSettings, neo4j_uri: str, inference: Inference, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    """svc_agent with retrieval, the models and the stores, all real, with the sample pages indexed."""
    from tests.integration.agent import harness

    async with harness.serve(store_settings, neo4j_uri, inference, tmp_path_factory.mktemp("agent-mesh")) as mesh:
        yield mesh
