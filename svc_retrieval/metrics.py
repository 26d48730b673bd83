"""Prometheus metrics of svc_retrieval, beside the RPC metrics of mesh.metrics."""

from __future__ import annotations

from prometheus_client import Counter

from svc_retrieval.domain.model import SearchOutcome

SEARCHES = Counter(
    "ragmesh_retrieval_searches_total",
    "Searches answered, by whether a leg was dropped (degraded) on the way.",
    ("degraded",),
)
DEGRADED_LEGS = Counter(
    "ragmesh_retrieval_degraded_legs_total",
    "Legs dropped from a search that still answered (slower than their budget or their store failing), by leg.",
    ("leg",),
)


def observe(outcome: SearchOutcome) -> None:
    """Counts one answered search and the legs it had to drop."""
    SEARCHES.labels(str(bool(outcome.degraded_legs)).lower()).inc()
    for leg in outcome.degraded_legs:
        DEGRADED_LEGS.labels(leg.name.lower()).inc()
