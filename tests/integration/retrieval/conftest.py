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

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from mesh.server import MeshServer, ServerConfig, start_server
from mesh.settings import MeshSettings
from mesh.stack import StackConfig
from ragmesh.inference.v1 import inference_service_pb2 as infpb
from ragmesh.inference.v1 import inference_service_pb2_grpc as infpb_grpc
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import index_service_pb2_grpc as ipb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from svc_retrieval.__main__ import bindings
from svc_retrieval.app import Components, open_components
from svc_retrieval.config import Config
from svc_retrieval.domain.ports import VectorIndex
from tests.integration.local_inference import Inference
from tests.support.auth import as_service, auth_settings, bearer, service_channel
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


@dataclass(frozen=True)
class DocumentEmbedder:
    """Passage embeddings from svc_inference's Embed, as ingestion gets them for UpsertChunks."""

    stub: infpb_grpc.InferenceServiceStub

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One dense vector per text, in order."""
        response = await self.stub.Embed(
            infpb.EmbedRequest(texts=list(texts), mode=infpb.EMBED_MODE_DOCUMENT), timeout=60
        )
        return [list(e.dense) for e in response.embeddings]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def embedder(local_inference: Inference) -> AsyncIterator[DocumentEmbedder]:
    """An Embed client of the session's svc_inference."""
    channel = service_channel(local_inference.addr)
    try:
        yield DocumentEmbedder(infpb_grpc.InferenceServiceStub(channel))
    finally:
        await channel.close(None)


def new_tenant() -> str:
    """A tenant no other test uses."""
    return "t-" + uuid.uuid4().hex[:12]


@dataclass
class Served:
    """svc_retrieval running in-process on a free port, with stubs and its components."""

    server: MeshServer
    channel: grpc.aio.Channel
    search: rpb_grpc.RetrievalServiceStub
    index: ipb_grpc.IndexServiceStub
    components: Components

    @staticmethod
    def md(tenant: str) -> tuple[tuple[str, str], ...]:
        """A person of ``tenant`` calling RetrievalService."""
        return bearer(tenant)

    @staticmethod
    def imd(tenant: str) -> tuple[tuple[str, str], ...]:
        """A mesh service acting for ``tenant`` (IndexService is internal)."""
        return as_service(tenant)


@contextlib.asynccontextmanager
async def serve_retrieval(
    config: Config, settings: MeshSettings, *, vectors: VectorIndex | None = None, **kw: Any
) -> AsyncIterator[Served]:
    """Opens the components (the models through svc_inference at settings.inference_addr) and serves them on port 0."""
    async with open_components(config, settings, vectors=vectors, **kw) as parts:
        server = await start_server(bindings(parts), ServerConfig(port=0), auth=auth_settings())
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            yield Served(
                server,
                channel,
                rpb_grpc.RetrievalServiceStub(channel),
                ipb_grpc.IndexServiceStub(channel),
                parts,
            )
        finally:
            await channel.close(None)
            await server.stop(None)


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


# -- a small corpus ---------------------------------------------------------

CORPUS: list[dict[str, Any]] = [
    {
        "doc_id": "taints",
        "title": "Taints and Tolerations",
        "uri": "file:///corpus/k8s/concepts/taint-and-toleration.md",
        "type": "markdown",
        "links": ["scheduler"],
        "chunks": [
            ("Concepts", "Taints allow a node to repel a set of pods. Tolerations are applied to pods."),
            ("Concepts > Effects", "The NoExecute taint effect evicts pods already running on the node."),
        ],
        "entities": [("Taint", "Concept"), ("Toleration", "Concept"), ("Node", "Resource")],
        "mentions": [["Taint", "Toleration", "Node"], ["Taint", "Node"]],
        "relations": [("Toleration", "Taint", "MATCHES")],
    },
    {
        "doc_id": "scheduler",
        "title": "Kubernetes Scheduler",
        "uri": "file:///corpus/k8s/concepts/kube-scheduler.md",
        "type": "markdown",
        "links": [],
        "chunks": [("Overview", "kube-scheduler watches for newly created Pods that have no Node assigned.")],
        "entities": [("kube-scheduler", "Component"), ("Node", "Resource")],
        "mentions": [["kube-scheduler", "Node"]],
        "relations": [("kube-scheduler", "Node", "ASSIGNS_TO")],
    },
    {
        "doc_id": "gc",
        "title": "Garbage Collection",
        "uri": "file:///corpus/k8s/concepts/garbage-collection.md",
        "type": "markdown",
        "links": [],
        "chunks": [
            ("Images", "The kubelet performs garbage collection on unused images every five minutes."),
            ("Containers", "The kubelet garbage collects dead containers every minute."),
        ],
        "entities": [("kubelet", "Component")],
        "mentions": [["kubelet"], ["kubelet"]],
        "relations": [],
    },
    {
        "doc_id": "duck",
        "title": "Duck",
        "uri": "file:///corpus/noise/wikipedia-duck.html",
        "type": "html",
        "links": [],
        "chunks": [("Taxonomy", "Ducks are waterbirds with broad bills; mallards dabble for food in ponds.")],
        "entities": [],
        "mentions": [[]],
        "relations": [],
    },
]


async def upsert_requests(
    embedder: DocumentEmbedder, docs: Sequence[dict[str, Any]] = CORPUS, version: int = 1
) -> list[ipb.UpsertChunksRequest]:
    """One complete UpsertChunks message per document, embedded by svc_inference."""
    out = []
    for d in docs:
        texts = [text for _, text in d["chunks"]]
        dense = await embedder.embed(texts)
        out.append(
            ipb.UpsertChunksRequest(
                document=ipb.IndexedDocument(
                    doc_id=d["doc_id"],
                    source_uri=d["uri"],
                    title=d["title"],
                    document_type=d["type"],
                    doc_version=version,
                    links_to=d["links"],
                ),
                chunks=[
                    ipb.IndexedChunk(
                        chunk_index=i,
                        text=text,
                        section=section,
                        dense=dense[i],
                        mentions=d["mentions"][i],
                    )
                    for i, (section, text) in enumerate(d["chunks"])
                ],
                entities=[ipb.GraphEntity(name=n, label=label) for n, label in d["entities"]],
                relations=[ipb.GraphRelation(source=s, target=t, type=ty) for s, t, ty in d["relations"]],
                document_complete=True,
            )
        )
    return out


async def ingest(served: Served, tenant: str, requests: Sequence[ipb.UpsertChunksRequest]) -> ipb.UpsertChunksResponse:
    """Streams ``requests`` to UpsertChunks as ``tenant``."""

    async def gen() -> AsyncIterator[ipb.UpsertChunksRequest]:
        for r in requests:
            yield r

    response: ipb.UpsertChunksResponse = await served.index.UpsertChunks(gen(), metadata=served.imd(tenant))
    return response
