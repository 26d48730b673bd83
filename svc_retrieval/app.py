"""Wiring: opens the stores and clients from config and builds the domain services.

Used by ``python -m svc_retrieval`` and by tests and benchmarks that run the
service (or only its domain) in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from qdrant_client import AsyncQdrantClient

from mesh.settings import MeshSettings
from mesh.sparse import default_encoder
from svc_retrieval.clients.edge_index import EdgeVectorIndex, HnswSettings
from svc_retrieval.clients.inference import InferenceClient
from svc_retrieval.clients.neo4j_graph import GraphSearchSettings, Neo4jGraph
from svc_retrieval.clients.qdrant_index import QdrantServerIndex
from svc_retrieval.config import Config
from svc_retrieval.domain.graph_rank import load_word_frequencies
from svc_retrieval.domain.indexing import Indexer
from svc_retrieval.domain.ports import Embedder, GraphStore, Reranker, VectorIndex
from svc_retrieval.domain.search import Searcher
from svc_retrieval.domain.settings import SearchSettings
from svc_retrieval.domain.versions import KnownVersions

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Components:
    """The opened parts of svc_retrieval."""

    searcher: Searcher
    indexer: Indexer
    vectors: VectorIndex
    graph: GraphStore


def hnsw_settings(config: Config) -> HnswSettings:
    """HNSW build parameters from config."""
    return HnswSettings(
        m=config.hnsw_m,
        ef_construct=config.hnsw_ef_construct,
        full_scan_threshold_kb=config.full_scan_threshold_kb,
        indexing_threshold_kb=config.indexing_threshold_kb,
    )


def search_settings(config: Config) -> SearchSettings:
    """Fusion and rerank settings from config."""
    return SearchSettings(
        rrf_k=config.rrf_k,
        dense_weight=config.dense_weight,
        sparse_weight=config.sparse_weight,
        graph_weight=config.graph_weight,
        leg_limit=config.leg_limit,
        fused_limit=config.fused_limit,
        graph_limit=config.graph_limit,
        rerank_depth=config.rerank_depth,
        graph_timeout_s=config.graph_timeout_s,
        max_chunks_per_doc=config.max_chunks_per_doc,
        doc_support_weight=config.doc_support_weight,
        doc_support_chunks=config.doc_support_chunks,
        rerank_weights={
            "cross-encoder": config.rerank_weight_cross_encoder,
            "embedding-cosine": config.rerank_weight_cosine,
        },
        hnsw_ef=config.hnsw_ef,
    )


def make_vector_index(config: Config, settings: MeshSettings) -> VectorIndex:
    """The configured vector backend (not yet opened)."""
    if config.vector_backend == "edge":
        # Under the stack's data folder, so `ragmesh down --purge` deletes it with the stores.
        path = config.edge_path or settings.home / "data" / "svc_retrieval" / config.collection
        return EdgeVectorIndex(
            path,
            config.dense_dim,
            hnsw_settings(config),
            optimize_idle_s=config.optimize_idle_s,
            call_ceiling_s=config.store_timeout_s,
            search_threads=config.edge_search_threads,
        )
    if config.vector_backend == "qdrant":
        client = AsyncQdrantClient(
            url=config.qdrant_url,
            grpc_port=config.qdrant_grpc_port,
            prefer_grpc=True,
            api_key=config.qdrant_api_key or None,
            check_compatibility=False,
        )
        return QdrantServerIndex(
            client, config.collection, config.dense_dim, hnsw_settings(config), call_ceiling_s=config.store_timeout_s
        )
    raise ValueError(f"RAGMESH_RETRIEVAL_VECTOR_BACKEND must be 'edge' or 'qdrant', not {config.vector_backend!r}")


def make_graph(config: Config, settings: MeshSettings) -> Neo4jGraph:
    """The Neo4j graph store (not yet opened)."""
    return Neo4jGraph.connect(
        settings.neo4j_uri,
        settings.neo4j_user,
        settings.neo4j_password,
        database=config.neo4j_database,
        search=GraphSearchSettings(
            fulltext_limit=config.graph_fulltext_limit,
            title_chunks=config.graph_title_chunks,
            link_decay=config.graph_link_decay,
        ),
        connect_timeout_s=config.graph_connect_timeout_s,
        call_ceiling_s=config.store_timeout_s,
    )


@contextlib.asynccontextmanager
async def open_components(
    config: Config,
    settings: MeshSettings,
    *,
    vectors: VectorIndex | None = None,
    graph: GraphStore | None = None,
    embedder: Embedder | None = None,
    reranker: Reranker | None = None,
) -> AsyncIterator[Components]:
    """Opens every part (or uses the ones given), yields them, and closes what it opened."""
    async with contextlib.AsyncExitStack() as stack:
        if embedder is None or reranker is None:
            inference = InferenceClient.connect(
                settings.inference_addr,
                embed_model=config.embed_model,
                rerank_model=config.rerank_model,
                dense_dim=config.dense_dim,
                embed_timeout_s=config.embed_timeout_s,
                rerank_timeout_s=config.rerank_timeout_s,
                embed_batch_max=config.embed_batch_max,
            )
            stack.push_async_callback(inference.close)
            embedder = embedder or inference
            reranker = reranker or inference
        if vectors is None:
            vectors = make_vector_index(config, settings)
            await vectors.open()
            stack.push_async_callback(vectors.close)
        if graph is None:
            graph = make_graph(config, settings)
            await graph.open()
            stack.push_async_callback(graph.close)
            # The graph leg's English word frequencies (half a second to load): before the first search.
            await asyncio.to_thread(load_word_frequencies)
        versions = KnownVersions()
        encoder = default_encoder()
        searcher = Searcher(vectors, graph, embedder, reranker, encoder, search_settings(config), versions)
        indexer = Indexer(vectors, graph, encoder, config.dense_dim, versions)
        yield Components(searcher=searcher, indexer=indexer, vectors=vectors, graph=graph)
