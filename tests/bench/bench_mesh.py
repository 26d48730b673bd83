"""What the mesh's hops cost: the edge with JWT verification, and each service's own token check.

Needs the local stack (``ragmesh up``). Three paths, the same client, channel
options, RPC and token, alternating in rounds so drift affects all equally:

- ``direct``: straight to svc_retrieval's port; the service verifies the token
  (the verified-token cache makes repeat calls cheap) and answers.
- ``edge``: through an Envoy rendered from the stack's own config (every filter
  of the real edge: local bucket, identity header removal, jwt_authn, the
  global per-tenant limit), to the same service. Only its ports and local bucket
  size differ from the stack's edge, so the bench's back-to-back calls are not
  refused by the bucket that protects the real edge.
- ``edge_auth_only``: the same config less the global rate limit filter (whose
  call to the rate limit service is a hop of its own): the edge with auth.
- ``edge_plain``: less header_mutation and jwt_authn too: a routing edge.

- ``edge_plain_traced``: the routing edge with its OpenTelemetry tracer on, sampling
  every request and exporting to the stack's Jaeger (only when tracing is on there).

So ``edge_with_auth_added_p50_ms`` (edge_auth_only - direct) is what the edge with
auth costs a call, ``jwt_at_edge_p50_ms`` (edge_auth_only - edge_plain) what token
verification adds there, ``global_limit_p50_ms`` (edge - edge_auth_only) what
asking the rate limit service adds, and ``tracing_at_edge_p50_ms``
(edge_plain_traced - edge_plain) what Envoy's tracer adds. The other edges run
without a tracer; the service behind them traces in every case.

The RPC is RetrievalService/GetChunk for a chunk id no tenant has: a full trip
through auth, validation and the store lookup, NOT_FOUND each time. The calls
run as the ``bench`` tenant, whose global limits are sized for this.

Then, in this process: two mesh servers with the same stand-in RetrievalService
(GetChunk answers NOT_FOUND at once), one verifying tokens and one reading
unverified headers (the only place that mode exists), give the cost of the
internal hop's token check; and the verifier alone, with and without its cache.

And what tracing costs a Python hop (``tracing``): the same stand-in server and a
mesh channel in this process, in alternating rounds with the mesh's spans recorded
(every call sampled, a CLIENT and a SERVER span, the context carried in the
metadata, exported in batches to the stack's Jaeger when it runs) and with no
tracer at all; the difference at p50 is the per-hop cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import yaml

from mesh import auth, telemetry
from mesh.auth import AuthSettings
from mesh.channels import open_channel
from mesh.errors import NotFound
from mesh.server import ServerConfig, ServiceBinding, start_server
from mesh.settings import MeshSettings
from mesh.stack import StackConfig, StackLayout, identity
from mesh.stack.binaries import envoy_binary
from mesh.stack.envoy_auth import JWKS_ENV
from mesh.stack.envoy_config import envoy_config
from mesh.stack.service_env import otlp_endpoint
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.bench import credentials
from tests.bench.hop_floor import _wait_for_port
from tests.bench.machine import machine
from tests.support.stores import free_ports

TENANT = "bench"
_AUTH_FILTERS = ("envoy.filters.http.header_mutation", "envoy.filters.http.jwt_authn")
_GLOBAL_LIMIT_FILTERS = ("envoy.filters.http.ratelimit",)
# name -> filters left out of the stack's edge config
_EDGES: dict[str, tuple[str, ...]] = {
    "edge": (),
    "edge_auth_only": _GLOBAL_LIMIT_FILTERS,
    "edge_plain": _GLOBAL_LIMIT_FILTERS + _AUTH_FILTERS,
    "edge_plain_traced": _GLOBAL_LIMIT_FILTERS + _AUTH_FILTERS,
}
_TRACED_EDGES = frozenset({"edge_plain_traced"})


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 4),
        "p90_ms": round(_percentile(values, 90), 4),
        "p99_ms": round(_percentile(values, 99), 4),
        "mean_ms": round(statistics.fmean(values), 4),
        "calls": len(values),
    }


def _bench_edge_config(
    config: StackConfig, listen: int, admin: int, without: tuple[str, ...], *, tracing: bool = False
) -> dict[str, Any]:
    bench = dataclasses.replace(
        config,
        envoy_listener_port=listen,
        envoy_admin_port=admin,
        edge_rate_limit_max_tokens=1_000_000,
        edge_rate_limit_tokens_per_fill=1_000_000,
        trace_sample_ratio=1.0,
    )
    doc = copy.deepcopy(envoy_config(bench, tracing=tracing))
    if without:
        (listener,) = doc["static_resources"]["listeners"]
        manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        manager["http_filters"] = [f for f in manager["http_filters"] if f["name"] not in without]
    for listener in doc["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            chain["filters"][0]["typed_config"].pop("access_log", None)
    return doc


@contextlib.contextmanager
def _bench_edges(config: StackConfig) -> Iterator[dict[str, str]]:
    """Envoys from the stack's config, each less some filters (``_EDGES``): name -> address."""
    layout = StackLayout(config.home)
    folder = Path(tempfile.mkdtemp(prefix="ragmesh-bench-mesh-"))
    processes: list[subprocess.Popen[bytes]] = []
    addresses: dict[str, str] = {}
    try:
        traced = bool(otlp_endpoint(config))
        for name, without in _EDGES.items():
            if name in _TRACED_EDGES and not traced:
                continue
            listen, admin = free_ports(2)
            path = folder / f"{name}.yaml"
            doc = _bench_edge_config(config, listen, admin, without, tracing=name in _TRACED_EDGES)
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            env = {**os.environ, JWKS_ENV: layout.jwks_file.read_text()}
            process = subprocess.Popen(
                [str(envoy_binary()), "-c", str(path), "--use-dynamic-base-id", "--log-level", "warn"],
                stdout=subprocess.DEVNULL,
                stderr=(folder / f"{name}.log").open("wb"),
                env=env,
            )
            processes.append(process)
            _wait_for_port(listen, process, f"bench envoy {name}")
            addresses[name] = f"{config.host}:{listen}"
        yield addresses
    finally:
        for process in processes:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _timed_calls(stub: rpb_grpc.RetrievalServiceStub, metadata: Any, n: int) -> list[float]:
    request = rpb.GetChunkRequest(chunk_id=str(uuid.uuid4()))
    out: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        try:
            stub.GetChunk(request, metadata=metadata, timeout=5)
            raise RuntimeError("bench mesh: a chunk that no tenant has was found")
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                raise RuntimeError(f"bench mesh: GetChunk answered {err.code()}: {err.details()}") from err  # type: ignore[attr-defined]
        out.append((time.perf_counter() - started) * 1000)
    return out


def _paths(args: argparse.Namespace) -> dict[str, Any]:
    settings = MeshSettings.from_env()
    config = StackConfig.from_env()
    metadata = credentials.person(TENANT, roles=("reader",))
    with _bench_edges(config) as edges:
        targets = {"direct": settings.retrieval_addr, **edges}
        channels = {name: grpc.insecure_channel(addr) for name, addr in targets.items()}
        stubs = {name: rpb_grpc.RetrievalServiceStub(channel) for name, channel in channels.items()}
        try:
            for stub in stubs.values():
                _timed_calls(stub, metadata, 200)
            per_round = max(1, args.calls // args.rounds)
            times: dict[str, list[float]] = {name: [] for name in stubs}
            for _ in range(args.rounds):
                for name, stub in stubs.items():
                    times[name] += _timed_calls(stub, metadata, per_round)
        finally:
            for channel in channels.values():
                channel.close()
    summaries = {name: _summary(values) for name, values in times.items()}

    def added(path: str, base: str, q: str = "p50_ms") -> float:
        return round(summaries[path][q] - summaries[base][q], 4)

    traced_edge = (
        {"tracing_at_edge_p50_ms": added("edge_plain_traced", "edge_plain")}
        if "edge_plain_traced" in summaries
        else {"tracing_at_edge": "not measured: tracing is off on this stack (jaeger not running)"}
    )
    return {
        "rpc": "ragmesh.retrieval.v1.RetrievalService/GetChunk (NOT_FOUND)",
        "paths": summaries,
        **traced_edge,
        "edge_with_auth_added_p50_ms": added("edge_auth_only", "direct"),
        "edge_with_auth_added_p99_ms": added("edge_auth_only", "direct", "p99_ms"),
        "jwt_at_edge_p50_ms": added("edge_auth_only", "edge_plain"),
        "global_limit_p50_ms": added("edge", "edge_auth_only"),
        "full_edge_added_p50_ms": added("edge", "direct"),
    }


class StandInRetrieval(rpb_grpc.RetrievalServiceServicer):  # type: ignore[misc]
    """Answers GetChunk with NOT_FOUND at once: what remains is the mesh layer (auth, validation, mapping)."""

    async def GetChunk(self, request: rpb.GetChunkRequest, ctx: Any) -> rpb.GetChunkResponse:
        raise NotFound("no such chunk", reason="CHUNK_NOT_FOUND")


async def _internal_hop(args: argparse.Namespace) -> dict[str, Any]:
    config = StackConfig.from_env()
    layout = StackLayout(config.home)
    settings = AuthSettings(jwks_file=layout.jwks_file, issuer=config.auth_issuer, audience=config.auth_audience)
    binding = ServiceBinding(
        "ragmesh.retrieval.v1.RetrievalService", rpb_grpc.add_RetrievalServiceServicer_to_server, StandInRetrieval()
    )
    servers = {
        "token_verified": await start_server([binding], ServerConfig(port=0), auth=settings),
        "unverified_headers": await start_server([binding], ServerConfig(port=0), auth=None),
    }
    token_md = credentials.person(TENANT, roles=("reader",))
    header_md = (("x-ragmesh-tenant", TENANT),)
    request = rpb.GetChunkRequest(chunk_id=str(uuid.uuid4()))
    times: dict[str, list[float]] = {name: [] for name in servers}
    channels = {name: grpc.aio.insecure_channel(f"127.0.0.1:{s.port}") for name, s in servers.items()}
    try:
        stubs = {name: rpb_grpc.RetrievalServiceStub(channel) for name, channel in channels.items()}

        async def timed(name: str, n: int) -> list[float]:
            md = token_md if name == "token_verified" else header_md
            out = []
            for _ in range(n):
                started = time.perf_counter()
                try:
                    await stubs[name].GetChunk(request, metadata=md, timeout=5)
                except grpc.aio.AioRpcError as err:
                    if err.code() != grpc.StatusCode.NOT_FOUND:
                        raise RuntimeError(f"bench mesh: {name} answered {err.code()}") from err
                out.append((time.perf_counter() - started) * 1000)
            return out

        for name in servers:
            await timed(name, 200)
        per_round = max(1, args.calls // args.rounds)
        for _ in range(args.rounds):
            for name in servers:
                times[name] += await timed(name, per_round)
    finally:
        for channel in channels.values():
            await channel.close(None)
        for server in servers.values():
            await server.stop(None)
    summaries = {name: _summary(values) for name, values in times.items()}
    return {
        "paths": summaries,
        "token_check_per_hop_p50_ms": round(
            summaries["token_verified"]["p50_ms"] - summaries["unverified_headers"]["p50_ms"], 4
        ),
        "verifier": _verifier_micro(config, layout),
    }


def _verifier_micro(config: StackConfig, layout: StackLayout, n: int = 2000) -> dict[str, float]:
    """Microseconds per verification: a new token each time (signature checked) and a repeated one (cached)."""
    issuer = identity.issuer(config, layout)
    tokens = [
        issuer.issue(tenant=TENANT, subject=f"u{i}", roles=("reader",), audience=config.auth_audience, ttl_s=600)
        for i in range(n)
    ]
    verifier = auth.TokenVerifier(
        auth.load_jwks(layout.jwks_file), issuer=config.auth_issuer, audiences=(config.auth_audience,)
    )
    started = time.perf_counter()
    for token in tokens:
        verifier.verify(token)
    uncached = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for _ in range(n):
        verifier.verify(tokens[0])
    cached = (time.perf_counter() - started) / n * 1e6
    return {"uncached_us": round(uncached, 2), "cached_us": round(cached, 2)}


async def _tracing_hop(args: argparse.Namespace) -> dict[str, Any]:
    """One mesh hop (channel + server, both in this process) with the mesh's spans recorded vs no tracer."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import NoOpTracerProvider

    config = StackConfig.from_env()
    endpoint = otlp_endpoint(config)
    recording = TracerProvider(
        resource=Resource.create({"service.name": "bench-mesh"}), sampler=telemetry.TracingSettings().sampler()
    )
    if endpoint:
        recording.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=1000)
        )
    providers: dict[str, Any] = {"traced": recording, "untraced": NoOpTracerProvider()}
    binding = ServiceBinding(
        "ragmesh.retrieval.v1.RetrievalService", rpb_grpc.add_RetrievalServiceServicer_to_server, StandInRetrieval()
    )
    server = await start_server([binding], ServerConfig(port=0), auth=None)
    header_md = (("x-ragmesh-tenant", TENANT),)
    request = rpb.GetChunkRequest(chunk_id=str(uuid.uuid4()))
    times: dict[str, list[float]] = {name: [] for name in providers}
    channel = open_channel(f"127.0.0.1:{server.port}", ["ragmesh.retrieval.v1.RetrievalService"])
    try:
        stub = rpb_grpc.RetrievalServiceStub(channel)

        async def timed(name: str, n: int) -> list[float]:
            telemetry.use_tracer_provider(providers[name])
            out = []
            for _ in range(n):
                started = time.perf_counter()
                try:
                    await stub.GetChunk(request, metadata=header_md, timeout=5)
                except grpc.aio.AioRpcError as err:
                    if err.code() != grpc.StatusCode.NOT_FOUND:
                        raise RuntimeError(f"bench mesh: {name} answered {err.code()}") from err
                out.append((time.perf_counter() - started) * 1000)
            return out

        for name in providers:
            await timed(name, 200)
        per_round = max(1, args.calls // args.rounds)
        for _ in range(args.rounds):
            for name in providers:
                times[name] += await timed(name, per_round)
    finally:
        telemetry.use_tracer_provider(None)
        await channel.close(None)
        await server.stop(None)
        recording.shutdown()
    summaries = {name: _summary(values) for name, values in times.items()}
    return {
        "paths": summaries,
        "exporter": f"otlp to {endpoint} (the stack's jaeger)" if endpoint else "none (tracing is off on this stack)",
        "per_hop_added_p50_ms": round(summaries["traced"]["p50_ms"] - summaries["untraced"]["p50_ms"], 4),
        "per_hop_added_p99_ms": round(summaries["traced"]["p99_ms"] - summaries["untraced"]["p99_ms"], 4),
    }


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="ragmesh bench mesh")
    parser.add_argument("--calls", type=int, default=3000, help="calls per path")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds the calls are split into")
    args = parser.parse_args(argv)
    return {
        "edge": _paths(args),
        "internal_hop": asyncio.run(_internal_hop(args)),
        "tracing": asyncio.run(_tracing_hop(args)),
        "machine": machine(),
    }
