"""Prometheus metrics shared by every service, served on a per-service HTTP port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

RPC_LATENCY = Histogram(
    "ragmesh_rpc_server_duration_seconds",
    "Time to handle one RPC on the server, by method and status code.",
    ("service", "method", "code"),
    buckets=_LATENCY_BUCKETS,
)
RPC_TOTAL = Counter(
    "ragmesh_rpc_server_requests_total",
    "RPCs handled, by method and status code.",
    ("service", "method", "code"),
)
RPC_IN_FLIGHT = Gauge(
    "ragmesh_rpc_server_in_flight",
    "RPCs being handled right now.",
    ("service", "method"),
)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Serves /metrics on ``port``; 0 disables it."""
    if port > 0:
        start_http_server(port, addr=host)
