"""Helpers of the retrieval integration tests: svc_retrieval served in-process, an Embed client, a small corpus."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from mesh.server import MeshServer, ServerConfig, start_server
from mesh.settings import MeshSettings
from ragmesh.inference.v1 import inference_service_pb2 as infpb
from ragmesh.inference.v1 import inference_service_pb2_grpc as infpb_grpc
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import index_service_pb2_grpc as ipb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from svc_retrieval.__main__ import bindings
from svc_retrieval.app import Components, open_components
from svc_retrieval.config import Config
from svc_retrieval.domain.ports import VectorIndex
from tests.support.auth import as_service, auth_settings, bearer


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
