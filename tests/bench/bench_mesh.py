"""Cost of the Envoy hop: one small unary RPC, direct to a service and through the edge.

The RPC is ``grpc.health.v1.Health/Check`` on svc_agent (routed at the edge by
the ``x-ragmesh-upstream`` header). Both paths use the same client, channel
options and call count, alternating in rounds so drift affects both equally.
Needs the local stack (``ragmesh up``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.settings import MeshSettings


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _measure(stub: health_pb2_grpc.HealthStub, metadata: tuple[tuple[str, str], ...], n: int) -> list[float]:
    request = health_pb2.HealthCheckRequest(service="")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        reply = stub.Check(request, metadata=metadata, timeout=5)
        out.append((time.perf_counter() - t0) * 1000)
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError("service not SERVING")
    return out


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="ragmesh bench mesh")
    parser.add_argument("--calls", type=int, default=5000, help="calls per path")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds the calls are split into")
    parser.add_argument("--service", default="svc_agent", help="upstream to call")
    args = parser.parse_args(argv)
    settings = MeshSettings.from_env()
    direct_addr = getattr(settings, f"{args.service.removeprefix('svc_')}_addr")
    direct = health_pb2_grpc.HealthStub(grpc.insecure_channel(direct_addr))
    edge = health_pb2_grpc.HealthStub(grpc.insecure_channel(settings.edge_addr))
    edge_md = (("x-ragmesh-upstream", args.service),)
    _measure(direct, (), 200)  # warm up both paths (connections, Envoy clusters)
    _measure(edge, edge_md, 200)
    per_round = max(1, args.calls // args.rounds)
    direct_ms: list[float] = []
    edge_ms: list[float] = []
    for _ in range(args.rounds):
        direct_ms += _measure(direct, (), per_round)
        edge_ms += _measure(edge, edge_md, per_round)

    def summary(values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(statistics.median(values), 4),
            "p90_ms": round(_percentile(values, 90), 4),
            "p99_ms": round(_percentile(values, 99), 4),
            "mean_ms": round(statistics.fmean(values), 4),
            "calls": len(values),
        }

    d, e = summary(direct_ms), summary(edge_ms)
    return {
        "rpc": "grpc.health.v1.Health/Check",
        "upstream": args.service,
        "direct": d,
        "through_envoy": e,
        "envoy_added_p50_ms": round(e["p50_ms"] - d["p50_ms"], 4),
        "envoy_added_p99_ms": round(e["p99_ms"] - d["p99_ms"], 4),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "gpu": "none"},
    }
