"""Real parts for the ingest integration tests.

PostgreSQL and Neo4j are started by the local stack's own supervisor in a
throwaway home under /tmp on free ports (a developer's stack is never
touched); svc_retrieval (the real IndexService over the embedded Qdrant engine
and that Neo4j) and svc_inference (the real InferenceService with the packaged
models, see tests/integration/local_inference.py; or a running one named by
RAGMESH_INGEST_TEST_INFERENCE_ADDR) run in-process on free ports; Ray is a
local instance started in the test process with token authentication. Each test gets its own
tenant, so tests share the stores without seeing each other's data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from mesh import migrations
from mesh.server import MeshServer, ServerConfig, start_server
from mesh.settings import MeshSettings
from ragmesh.retrieval.v1 import index_service_pb2_grpc as ipb_grpc
from tests.integration.local_inference import Inference
from tests.support.auth import auth_settings
from tests.support.ingest import Ingest, Retrieval, Stores, ingest_config, serve_ingest
from tests.support.stores import free_ports, started_stores


@pytest.fixture(scope="session")
def stores() -> Iterator[Stores]:
    """PostgreSQL and Neo4j started for this test session by the stack supervisor."""
    pg, bolt, http = free_ports(3)
    ports = {"postgres_port": pg, "neo4j_bolt_port": bolt, "neo4j_http_port": http}
    # Neo4j's JVM took more than the default 120 s to answer on a shared 2-core runner at load 40.
    with started_stores("rmingest-", ["postgres", "neo4j"], neo4j_ready_timeout_s=360, **ports) as config:
        yield Stores(
            postgres_dsn=(
                f"postgresql://{config.postgres_user}:{config.postgres_password}@127.0.0.1:{pg}/"
                f"{config.postgres_database}"
            ),
            neo4j_uri=f"bolt://127.0.0.1:{bolt}",
            neo4j_password=config.neo4j_password,
        )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def migrated(stores: Stores) -> str:
    """The session database with the project's migrations applied."""
    await migrations.apply_dsn(stores.postgres_dsn)
    return stores.postgres_dsn


@pytest.fixture(scope="session")
def inference_addr(request: pytest.FixtureRequest) -> str:
    """host:port of svc_inference: RAGMESH_INGEST_TEST_INFERENCE_ADDR, else the session's in-process one."""
    external = os.environ.get("RAGMESH_INGEST_TEST_INFERENCE_ADDR")
    if external:
        return external
    served: Inference = request.getfixturevalue("local_inference")
    return served.addr


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def retrieval(stores: Stores, inference_addr: str) -> AsyncIterator[Retrieval]:
    """The real IndexService (svc_retrieval) over an embedded Qdrant folder and the session's Neo4j."""
    from svc_retrieval.__main__ import bindings
    from svc_retrieval.app import open_components
    from svc_retrieval.config import Config as RetrievalConfig

    folder = Path(tempfile.mkdtemp(prefix="rmingest-qdrant-", dir="/tmp"))
    settings = MeshSettings(
        neo4j_uri=stores.neo4j_uri, neo4j_password=stores.neo4j_password, inference_addr=inference_addr
    )
    config = RetrievalConfig(vector_backend="edge", edge_path=folder / "qdrant", optimize_idle_s=0.2)
    try:
        async with open_components(config, settings) as parts:
            server: MeshServer = await start_server(bindings(parts), ServerConfig(port=0), auth=auth_settings())
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
            try:
                yield Retrieval(
                    addr=f"127.0.0.1:{server.port}",
                    index=ipb_grpc.IndexServiceStub(channel),  # type: ignore[no-untyped-call]
                )
            finally:
                await channel.close(None)
                await server.stop(None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="session")
async def ingest(tmp_path: Path, migrated: str, retrieval: Retrieval, inference_addr: str) -> AsyncIterator[Ingest]:
    """svc_ingest with graph extraction off and a fresh tenant."""
    async with serve_ingest(ingest_config(tmp_path), migrated, retrieval, inference_addr) as served:
        yield served
