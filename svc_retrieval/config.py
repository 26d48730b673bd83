"""Configuration of svc_retrieval: the only module that reads its environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mesh.server import ServerConfig


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_retrieval; env prefix ``RAGMESH_RETRIEVAL``.

    Store addresses (Neo4j, InferenceService) and the data home come from
    ``mesh.settings.MeshSettings``; this holds what is retrieval's own.
    """

    env_prefix = "RAGMESH_RETRIEVAL"

    port: int = 50052
    """Port of the gRPC server."""

    vector_backend: str = "edge"
    """Where the chunk collection lives: "edge" (embedded, under <home>/data/svc_retrieval) or "qdrant" (a server)."""
    qdrant_url: str = "http://127.0.0.1:6333"
    """URL of the Qdrant server when vector_backend is "qdrant" (its gRPC port is used)."""
    qdrant_grpc_port: int = 6334
    """gRPC port of the Qdrant server."""
    qdrant_api_key: str = ""
    """API key of the Qdrant server, if it wants one."""
    collection: str = "chunks"
    """Name of the chunk collection."""
    edge_path: Path | None = None
    """Data folder of the embedded engine; default <MeshSettings.home>/data/svc_retrieval/<collection>."""

    dense_dim: int = 384
    """Length of the dense vectors (all-MiniLM-L6-v2: 384)."""
    hnsw_m: int = 32
    """HNSW edges per node."""
    hnsw_ef_construct: int = 256
    """HNSW beam width while building."""
    hnsw_ef: int = 128
    """HNSW beam width while searching."""
    full_scan_threshold_kb: int = 10_000
    """Below this many KB of vectors a search is exact (no HNSW)."""
    indexing_threshold_kb: int = 10_000
    """Segments with more than this many KB of vectors get an HNSW index."""
    optimize_idle_s: float = 2.0
    """Quiet time after the last write before the embedded engine builds its index."""
    edge_search_threads: int = 0
    """Threads the embedded engine searches its segments with; 0: one per CPU this process may run on.

    The engine's own default is 8 threads whatever the machine; on a 2-core
    machine that gives the same search latency for more CPU (0.80 vs 0.70 ms
    of CPU per dense query measured on the dev corpus), taken from the other
    processes of the mesh while a search's answer is on its way."""

    rrf_k: int = 4
    """k of reciprocal-rank fusion (Qdrant's weighted RRF; tuned on the dev set: small k trusts the top ranks)."""
    dense_weight: float = 1.0
    """Fusion weight of the dense leg."""
    sparse_weight: float = 2.0
    """Fusion weight of the sparse leg.

    On the technical docs of the dev set the BM25F leg is the stronger one
    (recall@5 0.96 vs 0.89 for MiniLM alone): questions name identifiers
    (initContainers, swapBehavior) that a small embedder blurs. With weight 2
    (and k 4) a page that only the sparse leg finds, on several chunks, can
    still reach the top 5; weights 1.75 to 2.5 gave the same dev-set recall."""
    graph_weight: float = 0.3
    """Fusion weight of the graph leg."""
    leg_limit: int = 50
    """Candidates per vector leg."""
    fused_limit: int = 50
    """Candidates kept from the engine's fusion."""
    graph_limit: int = 50
    """Candidates from the graph leg."""
    rerank_depth: int = 30
    """Fused candidates sent to the reranker."""
    rerank_weight_cross_encoder: float = 2.0
    """Blend weight of a cross-encoder reranker's order."""
    rerank_weight_cosine: float = 0.0
    """Blend weight of the embedding-cosine fallback reranker's order; 0 (default) does not call it.

    That fallback re-embeds every candidate to recompute what the dense leg
    already scored: much latency, no new evidence."""

    graph_timeout_s: float = 2.0
    """Longest the graph leg may take within a search before it counts as degraded."""
    max_chunks_per_doc: int = 1
    """Chunks of one document allowed ahead of other documents' chunks in a result; 0 means no limit."""
    doc_support_weight: float = 0.3
    """Share of a document's other retrieved chunks' scores added to each of its chunks; 0 turns it off."""
    doc_support_chunks: int = 3
    """How many of a document's other chunks count towards that support."""
    graph_fulltext_limit: int = 20
    """Entity and title matches the graph leg starts from."""
    graph_title_chunks: int = 3
    """Leading chunks of a title-matched document the graph leg returns."""
    graph_link_decay: float = 0.3
    """Score share of documents one LINKS_TO hop away."""

    neo4j_database: str = "neo4j"
    """Neo4j database name."""
    store_timeout_s: float = 30.0
    """Longest any single store call may take, whatever the request's deadline."""
    graph_connect_timeout_s: float = 2.0
    """How long to wait for a Neo4j connection before the graph counts as down."""
    embed_timeout_s: float = 5.0
    """Longest a query embedding may take."""
    embed_batch_max: int = 16
    """Most waiting queries of one tenant sent in one Embed call; 1 sends each query on its own."""
    rerank_timeout_s: float = 10.0
    """Longest a rerank call may take."""
    embed_model: str = ""
    """Embedding model name sent to InferenceService; empty means its default."""
    rerank_model: str = ""
    """Reranker model name sent to InferenceService; empty means its default."""
