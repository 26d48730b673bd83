"""Real stores for the retrieval integration tests.

A throwaway Neo4j 5 server (started with the local stack's supervisor in its
own home under /tmp, on free ports, so a developer's stack is never touched),
the embedded Qdrant engine in a temporary folder, and svc_inference, the real
InferenceService with the packaged models, served in-process once per session
(``local_inference``): svc_retrieval reaches it through its own InferenceClient,
and the tests embed their corpus with its Embed, as ingestion does. Nothing
here is a fake. The tests run on the session's event loop, where that server
answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from mesh.settings import MeshSettings
from mesh.stack import StackConfig
from ragmesh.inference.v1 import inference_service_pb2_grpc as infpb_grpc
from svc_retrieval.config import Config
from tests.integration.local_inference import Inference
from tests.support.auth import service_channel
from tests.support.retrieval import DocumentEmbedder, Served, serve_retrieval
from tests.support.stores import free_ports, started_stores

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def neo4j_uri() -> Iterator[str]:
    """bolt:// URI of a Neo4j server started for this test session."""
    bolt, http = free_ports(2)
    with started_stores("rmret-", ["neo4j"], neo4j_bolt_port=bolt, neo4j_http_port=http):
        yield f"bolt://127.0.0.1:{bolt}"


@pytest.fixture(scope="session")
def settings(neo4j_uri: str, local_inference: Inference) -> MeshSettings:
    """Mesh settings pointing at the session's Neo4j and its in-process svc_inference."""
    return MeshSettings(
        neo4j_uri=neo4j_uri,
        neo4j_user="neo4j",
        neo4j_password=StackConfig().neo4j_password,
        inference_addr=local_inference.addr,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def embedder(local_inference: Inference) -> AsyncIterator[DocumentEmbedder]:
    """An Embed client of the session's svc_inference."""
    channel = service_channel(local_inference.addr)
    try:
        yield DocumentEmbedder(infpb_grpc.InferenceServiceStub(channel))
    finally:
        await channel.close(None)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Retrieval config: the embedded engine in a temporary folder, the cosine reranker blended in."""
    return Config(
        vector_backend="edge",
        edge_path=tmp_path / "qdrant",
        optimize_idle_s=0.2,
        rerank_weight_cosine=0.5,
        # A loaded 2-core machine can take seconds for a cold Neo4j query; degrading is tested on its own.
        graph_timeout_s=30.0,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def served(config: Config, settings: MeshSettings) -> AsyncIterator[Served]:
    """svc_retrieval over the embedded engine, the session's Neo4j and its svc_inference."""
    async with serve_retrieval(config, settings) as s:
        yield s
