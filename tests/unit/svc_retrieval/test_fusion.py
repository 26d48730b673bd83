"""Reciprocal-rank fusion and the rerank blend."""

from __future__ import annotations

import pytest

from svc_retrieval.domain import fusion
from svc_retrieval.domain.model import LegHit


def hits(*ids: str) -> tuple[LegHit, ...]:
    return fusion.ranked((cid, 1.0) for cid in ids)


def test_rrf_term_matches_the_engine_convention() -> None:
    # Qdrant scores zero-based position p as 1 / (k + p): rank 1 with k=60 is 1/60.
    assert fusion.rrf_term(1.0, 60, 1) == pytest.approx(1 / 60)
    # A weight stretches the ranks of its list: rank 3 at weight 2 counts like rank 1.5.
    assert fusion.rrf_term(2.0, 60, 3) == pytest.approx(1 / (1.5 + 59))
    assert fusion.rrf_term(0.0, 60, 1) == 0.0


def test_rrf_rewards_agreement_and_respects_weights() -> None:
    scores = fusion.rrf([(hits("a", "b"), 1.0), (hits("b", "c"), 1.0)], k=60)
    assert fusion.best_first(scores)[0] == "b"
    # Found by one list each at the same rank: the heavier list's find wins.
    weighted = fusion.rrf([(hits("a"), 3.0), (hits("b"), 1.0)], k=60)
    assert fusion.best_first(weighted)[0] == "a"
    assert "x" not in fusion.rrf([(hits("x"), 0.0)], k=60)


def test_merge_graph_adds_graph_only_hits_and_boosts_shared_ones() -> None:
    fused = {"a": fusion.rrf_term(1, 60, 1), "b": fusion.rrf_term(1, 60, 2)}
    merged = fusion.merge_graph(fused, hits("b", "g"), weight=1.0, k=60)
    assert merged["b"] > merged["a"]
    assert merged["g"] == pytest.approx(fusion.rrf_term(1, 60, 2))


def test_best_first_breaks_ties_by_id() -> None:
    assert fusion.best_first({"b": 1.0, "a": 1.0, "c": 2.0}) == ["c", "a", "b"]


def test_blend_rerank_reorders_the_head_only() -> None:
    candidates = ["a", "b", "c", "d"]
    fused = {cid: fusion.rrf_term(1.0, 2, rank) for rank, cid in enumerate(candidates, start=1)}
    # The reranker saw a, b, c and liked c best.
    out = fusion.blend_rerank(candidates[:3], fused, [(2, 9.0), (1, 5.0), (0, 1.0)], weight=2.0, k=2)
    assert out.order[0] == "c"
    assert out.rerank_scores == {"c": 9.0, "b": 5.0, "a": 1.0}
    assert set(out.order) == {"a", "b", "c"}


def test_zero_rerank_weight_keeps_the_fused_order() -> None:
    out = fusion.blend_rerank(["a", "b"], {"a": 0.5, "b": 0.4}, [(1, 9.0), (0, 1.0)], weight=0.0, k=60)
    assert out.order == ["a", "b"]


def test_document_support_lifts_pages_with_more_evidence() -> None:
    scores = {"stub": 0.50, "page-1": 0.45, "page-2": 0.30, "page-3": 0.20, "page-4": 0.10}
    doc_of = {"stub": "glossary", **{f"page-{i}": "concept" for i in range(1, 5)}}
    supported = fusion.document_support(scores, doc_of, weight=0.3, chunks=2)
    assert fusion.best_first(supported)[0] == "page-1"
    assert supported["page-1"] == pytest.approx(0.45 + 0.3 * (0.30 + 0.20))
    assert supported["stub"] == 0.50
    assert fusion.document_support(scores, doc_of, weight=0.0, chunks=2) == scores


def test_cap_per_document_defers_and_keeps_everything() -> None:
    order = ["a1", "a2", "b1", "a3", "c1"]
    doc_of = {c: c[0] for c in order}
    assert fusion.cap_per_document(order, doc_of, 1) == ["a1", "b1", "c1", "a2", "a3"]
    assert fusion.cap_per_document(order, doc_of, 2) == ["a1", "a2", "b1", "c1", "a3"]
    assert fusion.cap_per_document(order, doc_of, 0) == order
