"""Reciprocal-rank fusion of the legs and the reranker's order.

The vector engine fuses dense and sparse itself (weighted RRF over its
prefetches); here the graph leg is merged into that list with the same
formula (Qdrant's weighted RRF, see ``rrf_term``) summed over the lists a chunk
appears in, and the reranker's order is blended in as a rank term too, so no
leg's raw score scale (cosine, BM25, Lucene) is ever compared with another's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from svc_retrieval.domain.model import LegHit


def rrf_term(weight: float, k: int, rank: int) -> float:
    """One list's contribution for a one-based ``rank``: ``1 / (rank / weight + k - 1)``.

    This is Qdrant's weighted RRF (a weight stretches or shrinks the ranks of its
    list; weight 1 is plain ``1 / (k + position)`` with a zero-based position),
    so the engine's fused scores and the terms added here are one currency.
    A weight of 0 contributes nothing.
    """
    if weight <= 0:
        return 0.0
    return 1.0 / (rank / weight + k - 1)


def rrf(lists: Iterable[tuple[Sequence[LegHit], float]], k: int) -> dict[str, float]:
    """Weighted RRF over ranked lists; returns chunk id -> fused score."""
    scores: dict[str, float] = {}
    for hits, weight in lists:
        if weight <= 0:
            continue
        for hit in hits:
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + rrf_term(weight, k, hit.rank)
    return scores


def ranked(hits: Iterable[tuple[str, float]]) -> tuple[LegHit, ...]:
    """Turns (chunk id, score) pairs, best first, into one-based ranked hits."""
    return tuple(LegHit(chunk_id, rank, score) for rank, (chunk_id, score) in enumerate(hits, start=1))


def merge_graph(fused: Mapping[str, float], graph: Sequence[LegHit], weight: float, k: int) -> dict[str, float]:
    """Adds the graph leg's RRF terms to the engine's fused scores."""
    merged = dict(fused)
    for hit in graph:
        merged[hit.chunk_id] = merged.get(hit.chunk_id, 0.0) + rrf_term(weight, k, hit.rank)
    return merged


def document_support(
    scores: Mapping[str, float], doc_of: Mapping[str, str], weight: float, chunks: int
) -> dict[str, float]:
    """Each chunk's score plus ``weight`` times the best ``chunks`` scores of its document's other chunks.

    A page that several retrieved chunks come from is more likely the one the
    question is about than a page with a single lucky match (a glossary stub, a
    generated reference page); the bonus lets that evidence count while the
    chunk's own score still decides within the document.
    """
    if weight <= 0 or chunks <= 0:
        return dict(scores)
    by_doc: dict[str, list[float]] = {}
    for cid, score in scores.items():
        by_doc.setdefault(doc_of[cid], []).append(score)
    for values in by_doc.values():
        values.sort(reverse=True)
    out: dict[str, float] = {}
    for cid, score in scores.items():
        others = list(by_doc[doc_of[cid]])
        others.remove(score)
        out[cid] = score + weight * sum(others[:chunks])
    return out


def best_first(scores: Mapping[str, float]) -> list[str]:
    """Chunk ids by descending score; ties broken by id so results are reproducible."""
    return sorted(scores, key=lambda cid: (-scores[cid], cid))


@dataclass(frozen=True)
class Reranked:
    """The final order after blending in the reranker."""

    order: list[str]
    scores: dict[str, float]
    rerank_scores: dict[str, float]


def blend_rerank(
    candidates: Sequence[str],
    fused: Mapping[str, float],
    rerank_order: Sequence[tuple[int, float]],
    weight: float,
    k: int,
) -> Reranked:
    """Adds ``weight / (k + rerank position)`` to each reranked candidate's fused score.

    Unlike a leg's weight in the engine's RRF (which stretches ranks), this
    weight scales the term, so a large weight lets a strong reranker (a
    cross-encoder) decide the order of the head while a small one only breaks
    near-ties of the fusion.

    ``rerank_order`` holds (position in ``candidates``, reranker score), best
    first. Candidates the reranker did not see keep their fused score, so a
    shallow rerank depth only reorders the head of the list.
    """
    scores = {cid: fused[cid] for cid in candidates}
    rerank_scores: dict[str, float] = {}
    for rank, (position, score) in enumerate(rerank_order, start=1):
        cid = candidates[position]
        rerank_scores[cid] = score
        scores[cid] += weight / (k + rank - 1)
    return Reranked(best_first(scores), scores, rerank_scores)


def cap_per_document(order: Sequence[str], doc_of: Mapping[str, str], cap: int) -> list[str]:
    """``order`` with each document's chunks beyond the first ``cap`` moved behind all others.

    Five chunks of one page push every other page out of a short result list;
    this keeps the best ``cap`` chunks of each document in place and lets the
    next documents in, without dropping anything (``cap`` 0 keeps the order).
    """
    if cap <= 0:
        return list(order)
    kept: list[str] = []
    deferred: list[str] = []
    seen: dict[str, int] = {}
    for cid in order:
        doc = doc_of[cid]
        if seen.get(doc, 0) < cap:
            seen[doc] = seen.get(doc, 0) + 1
            kept.append(cid)
        else:
            deferred.append(cid)
    return kept + deferred
