"""Tuning of search and indexing, as the domain sees it (filled from Config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SearchSettings:
    """How the legs are run, fused and reranked."""

    rrf_k: int = 2
    """The k of reciprocal-rank fusion: larger flattens the difference between ranks."""
    dense_weight: float = 1.0
    """Weight of the dense leg in the fusion."""
    sparse_weight: float = 1.0
    """Weight of the sparse leg in the fusion."""
    graph_weight: float = 0.3
    """Weight of the graph leg in the fusion."""
    leg_limit: int = 50
    """Candidates each vector leg contributes to the fusion."""
    fused_limit: int = 50
    """Candidates kept from the engine's fusion."""
    graph_limit: int = 50
    """Candidates the graph leg contributes."""
    rerank_depth: int = 30
    """How many of the best fused candidates go to the reranker."""
    rerank_weights: Mapping[str, float] = field(default_factory=lambda: {"cross-encoder": 2.0, "embedding-cosine": 0.0})
    """Weight of the reranker's order in the final blend, by the reranker's method; 0 skips the call.

    An embedding-cosine reranker re-derives the dense leg's own score from the
    chunk texts, at the cost of embedding every candidate: it adds latency and
    no new evidence, so by default it is not called.
    """
    default_rerank_weight: float = 1.0
    """Weight for a reranker method not listed in rerank_weights."""
    graph_timeout_s: float = 2.0
    """Longest the graph leg (and the corpus-version read) may take, from the start of a search."""
    doc_support_weight: float = 0.3
    """Share of a document's other retrieved chunks' scores added to each of its chunks; 0 turns it off."""
    doc_support_chunks: int = 3
    """How many of those other chunks count."""
    max_chunks_per_doc: int = 1
    """Chunks of one document allowed ahead of other documents' chunks in the result; 0 means no limit."""
    hnsw_ef: int | None = None
    """HNSW search beam; None uses the engine's default."""

    def rerank_weight(self, method: str) -> float:
        """The blend weight for reranker ``method``."""
        return self.rerank_weights.get(method, self.default_rerank_weight)
