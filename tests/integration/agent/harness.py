"""svc_agent served in-process with its real neighbours: retrieval (Qdrant Edge + Neo4j), the models, the stores.

svc_retrieval runs in-process over an embedded shard in a temporary folder and
the session's Neo4j; the models are svc_inference, the real InferenceService,
which the caller passes in: the session's in-process one with the packaged
models (see tests/integration/local_inference.py) or a running one named by
RAGMESH_AGENT_TEST_INFERENCE_ADDR. A few sample pages are indexed for one
tenant through IndexService, as ingestion would send them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc

from mesh.server import MeshServer, ServerConfig, start_server
from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.inference.v1 import inference_service_pb2 as infpb
from ragmesh.inference.v1 import inference_service_pb2_grpc as infpb_grpc
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import index_service_pb2_grpc as ipb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from svc_agent.__main__ import bindings as agent_bindings
from svc_agent.app import open_components as open_agent
from svc_agent.config import Config as AgentConfig
from svc_agent.domain.settings import AgentSettings, AnswerMode
from svc_inference.domain.runtime import ModelRuntime
from svc_retrieval.__main__ import bindings as retrieval_bindings
from svc_retrieval.app import open_components as open_retrieval
from svc_retrieval.config import Config as RetrievalConfig
from tests.integration.local_inference import Inference
from tests.support.agent import SAMPLE_DOCS, SAMPLES, chunk_markdown
from tests.support.auth import as_service, auth_settings, bearer, service_channel
from tests.support.tenants import new_tenant


@dataclasses.dataclass
class AgentMesh:
    """Stubs to the in-process services, the tenant whose corpus is indexed, and svc_inference's runtime."""

    agent: apb_grpc.AgentServiceStub
    retrieval: rpb_grpc.RetrievalServiceStub
    index: ipb_grpc.IndexServiceStub
    inference: infpb_grpc.InferenceServiceStub
    models: ModelRuntime | None
    """svc_inference's models when it runs in this process (their backend counters); None when external."""
    tenant: str
    channels: list[grpc.aio.Channel]

    def md(self, tenant: str | None = None) -> tuple[tuple[str, str], ...]:
        """Metadata naming ``tenant`` (default: the indexed one) as the caller."""
        return bearer(tenant or self.tenant)

    def imd(self, tenant: str | None = None) -> tuple[tuple[str, str], ...]:
        """Metadata of a mesh service acting for ``tenant`` (internal services take only this)."""
        return as_service(tenant or self.tenant)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Document embeddings from the mesh's embedder."""
        response = await self.inference.Embed(
            infpb.EmbedRequest(texts=texts, mode=infpb.EMBED_MODE_DOCUMENT), metadata=self.imd()
        )
        return [list(e.dense) for e in response.embeddings]

    async def index_document(
        self, relative: str, tenant: str | None = None, *, version: int = 1, extra: str = ""
    ) -> int:
        """Indexes one sample page (``extra`` appended as a last chunk); returns the corpus version after it."""
        title, chunks = chunk_markdown((SAMPLES / relative).read_text(encoding="utf-8"))
        if extra:
            chunks.append(("Notes", extra))
        vectors = await self.embed([text for _, text in chunks])
        request = ipb.UpsertChunksRequest(
            document=ipb.IndexedDocument(
                doc_id=relative.removesuffix(".md").replace("/", "-"),
                source_uri=f"file://{SAMPLES / relative}",
                title=title,
                document_type="markdown",
                doc_version=version,
            ),
            chunks=[
                ipb.IndexedChunk(chunk_index=i, text=text, section=section, dense=vectors[i])
                for i, (section, text) in enumerate(chunks)
            ],
            document_complete=True,
        )

        async def one() -> AsyncIterator[ipb.UpsertChunksRequest]:
            yield request

        response = await self.index.UpsertChunks(one(), metadata=self.imd(tenant))
        return int(response.corpus_version)


@contextlib.asynccontextmanager
async def serve(
    store_settings: MeshSettings,
    neo4j_uri: str,
    inference: Inference,
    workdir: Path,
    *,
    documents: Sequence[str] = SAMPLE_DOCS,
    agent_config: AgentConfig | None = None,
) -> AsyncIterator[AgentMesh]:
    """Starts retrieval and the agent over ``inference``; indexes ``documents`` (under samples/)."""
    servers: list[MeshServer] = []
    channels: list[grpc.aio.Channel] = []
    async with contextlib.AsyncExitStack() as stack:
        inference_addr = inference.addr
        settings = dataclasses.replace(store_settings, neo4j_uri=neo4j_uri, inference_addr=inference_addr, home=workdir)

        retrieval = await stack.enter_async_context(
            open_retrieval(RetrievalConfig(vector_backend="edge", edge_path=workdir / "qdrant"), settings)
        )
        server = await start_server(retrieval_bindings(retrieval), ServerConfig(port=0), auth=auth_settings())
        servers.append(server)
        settings = dataclasses.replace(settings, retrieval_addr=f"127.0.0.1:{server.port}")

        agent_config = agent_config or AgentConfig(
            semantic_cache_path=workdir / "semantic_cache",
            # Short answers keep a CPU-only suite quick; the loop is the same at any length.
            # This suite follows the answer through the model (streaming, cancellation, deadlines
            # reaching the generation), so it generates; quoting (the local default) has its unit
            # tests and the e2e suite.
            settings=AgentSettings(answer_max_tokens=48, answer_mode=AnswerMode.GENERATE),
        )
        agent = await stack.enter_async_context(open_agent(agent_config, settings))
        server = await start_server(agent_bindings(agent), ServerConfig(port=0), auth=auth_settings())
        servers.append(server)

        def channel(port: int) -> grpc.aio.Channel:
            made = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            channels.append(made)
            return made

        agent_channel = channel(servers[-1].port)
        retrieval_channel = channel(servers[-2].port)
        inference_channel = service_channel(inference_addr)
        channels.append(inference_channel)
        mesh = AgentMesh(
            agent=apb_grpc.AgentServiceStub(agent_channel),  # type: ignore[no-untyped-call]
            retrieval=rpb_grpc.RetrievalServiceStub(retrieval_channel),  # type: ignore[no-untyped-call]
            index=ipb_grpc.IndexServiceStub(retrieval_channel),  # type: ignore[no-untyped-call]
            inference=infpb_grpc.InferenceServiceStub(inference_channel),  # type: ignore[no-untyped-call]
            models=inference.runtime,
            tenant=new_tenant(),
            channels=channels,
        )
        try:
            for relative in documents:
                await mesh.index_document(relative)
            yield mesh
        finally:
            for made in channels:
                await made.close(None)
            for server in reversed(servers):
                await server.stop(None)
