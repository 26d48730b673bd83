"""svc_retrieval's metrics: searches and the legs they dropped."""

from __future__ import annotations

from svc_retrieval import metrics
from svc_retrieval.domain.model import Leg, SearchOutcome, SearchTimings


def test_degraded_legs_are_counted_by_leg() -> None:
    graph = metrics.DEGRADED_LEGS.labels("graph")
    degraded = metrics.SEARCHES.labels("true")
    whole = metrics.SEARCHES.labels("false")
    before = (graph._value.get(), degraded._value.get(), whole._value.get())
    timings = SearchTimings(embed_ms=0, vector_ms=0, graph_ms=0, rerank_ms=0, total_ms=0)
    metrics.observe(SearchOutcome(hits=(), degraded_legs=(Leg.GRAPH,), timings=timings, corpus_version=1))
    metrics.observe(SearchOutcome(hits=(), degraded_legs=(), timings=timings, corpus_version=1))
    assert (graph._value.get(), degraded._value.get(), whole._value.get()) == (
        before[0] + 1,
        before[1] + 1,
        before[2] + 1,
    )
