"""How the vector backends read the answers of a search batch into a VectorResult.

The server backend plans the batch with the engine's fused request first when both
legs run, then each leg the query has, dense before sparse (``vector_result``).
The embedded backend runs each leg once and fuses here with the same weighted RRF
(``LegRankings``): the engine's fused request would search both legs a second time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    chunks = stored_chunks(payload_points)
    return VectorResult(dense=dense, sparse=sparse, fused=fused, chunks=chunks)


def hits(points: Sequence[ScoredPoint]) -> tuple[LegHit, ...]:
    """One leg's ranking, best first."""
    return fusion.ranked((str(p.id), p.score) for p in points)


class IdentifiedPoint(Protocol):
    """A point read back by id, with its payload."""

    @property
    def id(self) -> object:
        """The chunk id."""
        ...

    @property
    def payload(self) -> Mapping[str, Any] | None:
        """The stored payload."""
        ...


@dataclass(frozen=True)
class LegRankings:
    """Each leg's ranking and their weighted RRF fusion, computed in process.

    ``fused_ids`` are the engine's own ids of the fused hits, in order, to read
    their payloads back with; ``with_payloads`` completes the result from them.
    """

    dense: tuple[LegHit, ...]
    sparse: tuple[LegHit, ...]
    fused: tuple[LegHit, ...]
    fused_ids: list[Any]

    @classmethod
    def of(cls, query: VectorQuery, answers: Sequence[Sequence[ScoredPoint]]) -> LegRankings:
        """Rankings from one answer per leg the query has, dense before sparse.

        Both legs: the fusion is the engine's weighted RRF (``fusion.rrf``, ties by
        chunk id) cut at ``fused_limit``, as the engine's fused request would give.
        One leg: that leg's ranking in the same RRF currency.
        """
        lists = list(answers)
        engine_ids: dict[str, Any] = {}

        def ranked(points: Sequence[ScoredPoint]) -> tuple[LegHit, ...]:
            pairs = []
            for p in points:
                # The embedded engine builds the id anew on every read: read it once.
                raw = p.id
                chunk_id = str(raw)
                engine_ids[chunk_id] = raw
                pairs.append((chunk_id, p.score))
            return fusion.ranked(pairs)

        dense = ranked(lists.pop(0)) if query.dense is not None else ()
        sparse = ranked(lists.pop(0)) if query.sparse is not None else ()
        if query.dense is not None and query.sparse is not None:
            scores = fusion.rrf([(dense, query.dense_weight), (sparse, query.sparse_weight)], query.rrf_k)
            order = fusion.best_first(scores)[: query.fused_limit]
            fused = fusion.ranked((cid, scores[cid]) for cid in order)
        else:
            single, weight = (dense, query.dense_weight) if query.dense is not None else (sparse, query.sparse_weight)
            fused = fusion.ranked((h.chunk_id, fusion.rrf_term(weight, query.rrf_k, h.rank)) for h in single)
        return cls(dense, sparse, fused, [engine_ids[h.chunk_id] for h in fused])

    def with_payloads(self, records: Sequence[IdentifiedPoint]) -> VectorResult:
        """The result, with the payloads read back for ``fused_ids``."""
        return VectorResult(dense=self.dense, sparse=self.sparse, fused=self.fused, chunks=stored_chunks(records))


def stored_chunks(points: Sequence[IdentifiedPoint]) -> dict[str, StoredChunk]:
    """The chunks of the points that carry a payload, by chunk id."""
    chunks: dict[str, StoredChunk] = {}
    for p in points:
        # Each read of a point's payload (and id) builds it anew from the engine's copy: read once.
        payload = p.payload
        if payload:
            chunk_id = str(p.id)
            chunks[chunk_id] = pl.from_payload(chunk_id, payload)
    return chunks
