"""Scores to a ranking: shared by every reranker and by the embedder's cosine ranking."""

from __future__ import annotations

from collections.abc import Sequence

from svc_inference.domain.model import ScoredDocument


def rank(scores: Sequence[float], top_n: int) -> tuple[ScoredDocument, ...]:
    """Documents best first (ties keep request order); only the best ``top_n`` when it is above 0."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    if top_n > 0:
        order = order[:top_n]
    return tuple(ScoredDocument(index=i, score=float(scores[i])) for i in order)
