"""How both vector backends read the answers of a search batch into a VectorResult.

Both plan the batch alike: the engine's fused request first when both legs run,
then each leg the query has, dense before sparse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from svc_retrieval.clients import payload as pl
from svc_retrieval.domain import fusion
from svc_retrieval.domain.model import LegHit, StoredChunk, VectorQuery, VectorResult


class ScoredPoint(Protocol):
    """A point a query answered with, as either backend's client returns it."""

    @property
    def id(self) -> object:
        """The chunk id."""
        ...

    @property
    def score(self) -> float:
        """The similarity, or the fused score."""
        ...

    @property
    def payload(self) -> Mapping[str, Any] | None:
        """The stored payload, when the request asked for it."""
        ...


def vector_result(
    query: VectorQuery, answers: Sequence[Sequence[ScoredPoint]], *, fused_in_engine: bool
) -> VectorResult:
    """Each leg's ranking, the fused one and the chunks' payloads from the batch's answers."""
    lists = list(answers)
    fused_points = lists.pop(0) if fused_in_engine else None
    dense = hits(lists.pop(0)) if query.dense is not None else ()
    sparse = hits(lists.pop(0)) if query.sparse is not None else ()
    payload_points: Sequence[ScoredPoint]
    if fused_points is not None:
        fused = tuple(LegHit(str(p.id), rank, p.score) for rank, p in enumerate(fused_points, start=1))
        payload_points = fused_points
    else:
        # One leg only: the fusion is that leg's ranking in the same RRF currency.
        single, weight = (dense, query.dense_weight) if query.dense is not None else (sparse, query.sparse_weight)
        fused = fusion.ranked((h.chunk_id, fusion.rrf_term(weight, query.rrf_k, h.rank)) for h in single)
        payload_points = [p for points in answers for p in points]
    chunks: dict[str, StoredChunk] = {}
    for p in payload_points:
        # Each read of a point's payload (and id) builds it anew from the engine's copy: read once.
        payload = p.payload
        if payload:
            chunk_id = str(p.id)
            chunks[chunk_id] = pl.from_payload(chunk_id, payload)
    return VectorResult(dense=dense, sparse=sparse, fused=fused, chunks=chunks)


def hits(points: Sequence[ScoredPoint]) -> tuple[LegHit, ...]:
    """One leg's ranking, best first."""
    return fusion.ranked((str(p.id), p.score) for p in points)
