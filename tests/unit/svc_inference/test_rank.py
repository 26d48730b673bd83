from __future__ import annotations

from svc_inference.domain.ranking import rank


def test_best_first_ties_in_request_order_and_top_n() -> None:
    ranked = rank([0.1, 0.9, 0.5, 0.9], top_n=0)
    assert [r.index for r in ranked] == [1, 3, 2, 0]
    assert [r.index for r in rank([0.1, 0.9, 0.5], top_n=2)] == [1, 2]
    assert len(rank([0.3], top_n=10)) == 1
