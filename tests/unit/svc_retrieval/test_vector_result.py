"""Reading a search batch's answers into a VectorResult, as both vector backends do."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from mesh.sparse import SparseVector
from svc_retrieval.clients.vector_result import LegRankings, vector_result
from svc_retrieval.domain import fusion
from svc_retrieval.domain.model import SearchFilter, VectorQuery


@dataclass(frozen=True)
class FakePoint:
    id: str
    score: float
    payload: dict[str, Any] | None = None


def payload(doc_id: str) -> dict[str, Any]:
    return {"doc_id": doc_id, "ingested_at": "2025-01-01T00:00:00+00:00"}


def query(*, dense: bool, sparse: bool) -> VectorQuery:
    return VectorQuery(
        tenant="t",
        dense=[1.0, 0.0] if dense else None,
        sparse=SparseVector((3,), (1.0,)) if sparse else None,
        filter=SearchFilter(),
        leg_limit=10,
        fused_limit=10,
        rrf_k=60,
        dense_weight=1.0,
        sparse_weight=0.5,
    )


def test_the_engine_fused_answer_comes_first_and_carries_the_payloads() -> None:
    fused = [FakePoint("b", 0.03, payload("B")), FakePoint("a", 0.02, payload("A"))]
    dense = [FakePoint("a", 0.9), FakePoint("b", 0.8)]
    sparse = [FakePoint("b", 4.0)]
    result = vector_result(query(dense=True, sparse=True), [fused, dense, sparse], fused_in_engine=True)
    assert [(h.chunk_id, h.rank, h.score) for h in result.fused] == [("b", 1, 0.03), ("a", 2, 0.02)]
    assert [h.chunk_id for h in result.dense] == ["a", "b"]
    assert [h.chunk_id for h in result.sparse] == ["b"]
    assert {cid: c.doc_id for cid, c in result.chunks.items()} == {"b": "B", "a": "A"}


@pytest.mark.parametrize(("dense", "weight"), [(True, 1.0), (False, 0.5)])
def test_one_leg_is_its_own_fusion_in_rrf_terms(dense: bool, weight: float) -> None:
    leg = [FakePoint("a", 0.9, payload("A")), FakePoint("b", 0.8, payload("B"))]
    result = vector_result(query(dense=dense, sparse=not dense), [leg], fused_in_engine=False)
    assert (result.dense if dense else result.sparse) == fusion.ranked([("a", 0.9), ("b", 0.8)])
    assert (result.sparse if dense else result.dense) == ()
    assert [(h.chunk_id, h.score) for h in result.fused] == [
        ("a", pytest.approx(fusion.rrf_term(weight, 60, 1))),
        ("b", pytest.approx(fusion.rrf_term(weight, 60, 2))),
    ]
    assert sorted(result.chunks) == ["a", "b"]


class CountingPoint:
    """A point whose payload, like the embedded engine's, is built anew on every read."""

    def __init__(self, id: str, score: float, doc_id: str) -> None:
        self.id = id
        self.score = score
        self._doc_id = doc_id
        self.payload_reads = 0

    @property
    def payload(self) -> dict[str, Any]:
        self.payload_reads += 1
        return payload(self._doc_id)


def test_each_point_payload_is_read_from_the_engine_once() -> None:
    fused = [CountingPoint("b", 0.03, "B"), CountingPoint("a", 0.02, "A")]
    result = vector_result(query(dense=True, sparse=True), [fused, [], []], fused_in_engine=True)
    assert {cid: c.doc_id for cid, c in result.chunks.items()} == {"b": "B", "a": "A"}
    assert [p.payload_reads for p in fused] == [1, 1]


class EngineId:
    """An engine id object (not a str), as the embedded engine hands them out."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __str__(self) -> str:
        return self.value


class FakeEnginePoint:
    """A point whose id, like the embedded engine's, is built anew on every read."""

    def __init__(self, id: str, score: float) -> None:
        self._id = id
        self.score = score
        self.id_reads = 0
        self.payload = None

    @property
    def id(self) -> EngineId:
        self.id_reads += 1
        return EngineId(self._id)


def test_legs_fused_in_process_are_cut_at_the_fused_limit_with_their_engine_ids() -> None:
    q = query(dense=True, sparse=True)
    dense = [FakeEnginePoint(c, 1.0 - i / 10) for i, c in enumerate("abcdefgh")]
    sparse = [FakeEnginePoint(c, 9.0 - i) for i, c in enumerate("hgxyz")]
    rankings = LegRankings.of(replace(q, fused_limit=4), [dense, sparse])
    expected = fusion.rrf([(rankings.dense, 1.0), (rankings.sparse, 0.5)], k=60)
    assert [h.chunk_id for h in rankings.fused] == fusion.best_first(expected)[:4]
    assert [h.score for h in rankings.fused] == [expected[h.chunk_id] for h in rankings.fused]
    assert [str(i) for i in rankings.fused_ids] == [h.chunk_id for h in rankings.fused]
    assert all(isinstance(i, EngineId) for i in rankings.fused_ids)
    assert [p.id_reads for p in dense + sparse] == [1] * 13


def test_payloads_read_back_complete_the_result() -> None:
    rankings = LegRankings.of(query(dense=True, sparse=False), [[FakePoint("a", 0.9), FakePoint("b", 0.5)]])
    result = rankings.with_payloads([FakePoint("b", 0.0, payload("B")), FakePoint("a", 0.0, payload("A"))])
    assert [h.chunk_id for h in result.fused] == ["a", "b"]
    assert {cid: c.doc_id for cid, c in result.chunks.items()} == {"a": "A", "b": "B"}
