"""The floor under "what a gRPC hop through Envoy adds": the same hop with nothing behind it.

``bench retrieval`` compares a Search through Envoy with the same domain call
in-process. Part of that difference is svc_retrieval's own (interceptors,
conversion, serialization); the rest is what any Python gRPC server behind
Envoy costs on the machine at hand: the client's send and receive, Envoy's two
legs, the server's read, dispatch and write, and waking each of those
processes after they sat idle while the search ran. This measures that rest:
a bare ``grpc.aio`` server process (no interceptors, no tracing) whose one
handler waits as long as a search takes and answers with as many bytes as a
Search response, behind an Envoy with nothing but its router, called with the
same client, order and rotation as the real paths, next to an in-process
``await`` of the same length.

``python -m tests.bench.hop_floor serve PORT WAIT_MS RESPONSE_BYTES`` is the
server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import yaml

from mesh.stack import probes
from mesh.stack.binaries import envoy_binary
from tests.support.stores import free_ports

_METHOD = "/ragmesh.bench.Floor/Wait"
_HCM = "envoy.filters.network.http_connection_manager"
_HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hop floor: {what} exited with {process.returncode} before listening")
        if probes.tcp_open("127.0.0.1", port, timeout_s=0.5).ok:
            return
        time.sleep(0.05)
    raise RuntimeError(f"hop floor: {what} did not listen on {port} within {timeout_s} s")


def _envoy_config(listen_port: int, admin_port: int, upstream_port: int) -> dict[str, Any]:
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    route = {"match": {"prefix": "/"}, "route": {"cluster": "floor", "timeout": "0s"}}
    manager = {
        "@type": _HCM_TYPE,
        "stat_prefix": "floor",
        "codec_type": "AUTO",
        "route_config": {"virtual_hosts": [{"name": "floor", "domains": ["*"], "routes": [route]}]},
        "http_filters": [router],
    }
    address = {"socket_address": {"address": "127.0.0.1", "port_value": upstream_port}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "floor",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                    "filter_chains": [{"filters": [{"name": _HCM, "typed_config": manager}]}],
                }
            ],
            "clusters": [
                {
                    "name": "floor",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                    "load_assignment": {
                        "cluster_name": "floor",
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
                    },
                }
            ],
        },
    }


@contextlib.contextmanager
def _started(wait_ms: float, response_bytes: int) -> Iterator[tuple[int, int]]:
    """The bare server and its Envoy, running: (server port, Envoy port)."""
    server_port, envoy_port, admin_port = free_ports(3)
    folder = Path(tempfile.mkdtemp(prefix="ragmesh-hop-floor-"))
    config = folder / "envoy.yaml"
    config.write_text(yaml.safe_dump(_envoy_config(envoy_port, admin_port, server_port)))
    command = [sys.executable, "-m", "tests.bench.hop_floor", "serve", str(server_port), str(wait_ms)]
    server = subprocess.Popen([*command, str(response_bytes)])
    with (folder / "envoy.log").open("wb") as envoy_log:
        envoy = subprocess.Popen(
            [str(envoy_binary()), "-c", str(config), "--use-dynamic-base-id", "--log-level", "warn"],
            stdout=subprocess.DEVNULL,
            stderr=envoy_log,
        )
    try:
        _wait_for_port(server_port, server, "the bare server")
        _wait_for_port(envoy_port, envoy, "envoy")
        yield server_port, envoy_port
    finally:
        for process in (envoy, server):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)


async def measure(wait_ms: float, response_bytes: int, calls: int, warmup: int = 10) -> dict[str, Any]:
    """p50s of the bare hop (direct and through Envoy) and of the in-process wait, rotated per call."""
    with _started(wait_ms, response_bytes) as (server_port, envoy_port):
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{server_port}") as direct,
            grpc.aio.insecure_channel(f"127.0.0.1:{envoy_port}") as edge,
        ):
            return await _rotated(direct, edge, wait_ms, response_bytes, calls, warmup)


async def _rotated(
    direct: grpc.aio.Channel, edge: grpc.aio.Channel, wait_ms: float, response_bytes: int, calls: int, warmup: int
) -> dict[str, Any]:
    """p50s per path, each call down every path back to back in rotating order."""
    request = b"q" * 80

    async def in_process() -> Any:
        await asyncio.sleep(wait_ms / 1000)
        return request

    paths: dict[str, Callable[[], Awaitable[Any]]] = {
        "in_process": in_process,
        "direct_grpc": lambda: direct.unary_unary(_METHOD)(request, timeout=30),
        "through_envoy": lambda: edge.unary_unary(_METHOD)(request, timeout=30),
    }
    names = list(paths)
    results: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + calls):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            await paths[name]()
            if i >= warmup:
                results[name].append((time.perf_counter() - started) * 1000)
    p50 = {name: round(statistics.median(values), 3) for name, values in results.items()}
    paired = {
        f"{name}_minus_in_process_p50_ms": round(
            statistics.median(a - b for a, b in zip(results[name], results["in_process"], strict=True)), 3
        )
        for name in ("direct_grpc", "through_envoy")
    }
    return {"wait_ms": round(wait_ms, 3), "response_bytes": response_bytes, "calls": calls, "p50_ms": p50, **paired}


async def _serve(port: int, wait_ms: float, response_bytes: int) -> None:
    answer = b"r" * response_bytes

    async def wait(request: bytes, ctx: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await asyncio.sleep(wait_ms / 1000)
        return answer

    server = grpc.aio.server()
    handlers = {"Wait": grpc.unary_unary_rpc_method_handler(wait)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("ragmesh.bench.Floor", handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "serve":
        raise SystemExit("usage: python -m tests.bench.hop_floor serve PORT WAIT_MS RESPONSE_BYTES")
    asyncio.run(_serve(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
