"""The Envoy edge in front of a throwaway upstream: routing, grpc-web, CORS, deadlines, retries, rate limits.

The upstream stands in for svc_agent (raw-bytes handlers under the real
service name, plus the standard health service) until the real services run.
"""

from __future__ import annotations

import struct
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mesh.stack import StackConfig, Supervisor

pytestmark = pytest.mark.integration

AGENT = "ragmesh.agent.v1.AgentService"


class Upstream:
    """Raw-bytes handlers: Echo (GetSession), Flaky (ListSessions: UNAVAILABLE once), Slow (DeleteSession)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.seen_deadlines: list[float | None] = []
        self.lock = threading.Lock()

    def _count(self, name: str) -> int:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            return self.calls[name]

    def echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._count("echo")
        tenant = dict(context.invocation_metadata()).get("x-ragmesh-tenant", "")
        context.set_trailing_metadata((("x-seen-tenant", str(tenant)),))
        return request

    def flaky(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        if self._count("flaky") == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return b"ok"

    def slow(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._count("slow")
        self.seen_deadlines.append(context.time_remaining())
        time.sleep(3)
        return b"late"


def _raw(fn: Callable[[bytes, grpc.ServicerContext], bytes]) -> grpc.RpcMethodHandler[bytes, bytes]:
    return grpc.unary_unary_rpc_method_handler(fn)


@pytest.fixture(scope="module")
def upstream(make_stack_config: Callable[..., StackConfig]) -> Iterator[tuple[Upstream, int]]:
    handlers = Upstream()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                AGENT,
                {
                    "GetSession": _raw(handlers.echo),
                    "ListSessions": _raw(handlers.flaky),
                    "DeleteSession": _raw(handlers.slow),
                },
            ),
        )
    )
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield handlers, port
    server.stop(grace=None)


@pytest.fixture(scope="module")
def edge(
    upstream: tuple[Upstream, int], new_home: Callable[[], Path], make_stack_config: Callable[..., StackConfig]
) -> Iterator[StackConfig]:
    config = make_stack_config(new_home(), parts=("envoy",), svc_agent_port=upstream[1])
    supervisor = Supervisor(config)
    supervisor.up()
    yield config
    supervisor.down()


def _call(config: StackConfig, path: str, body: bytes = b"", **kwargs: Any) -> tuple[bytes, grpc.Call]:
    with grpc.insecure_channel(f"{config.host}:{config.envoy_listener_port}") as channel:
        method = channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        response, call = method.with_call(body, timeout=kwargs.pop("timeout", 5), **kwargs)
        return response, call


def _code(config: StackConfig, path: str, **kwargs: Any) -> grpc.StatusCode:
    try:
        _call(config, path, **kwargs)
    except grpc.RpcError as exc:
        assert isinstance(exc, grpc.Call)
        return exc.code()
    return grpc.StatusCode.OK


def _grpc_web(config: StackConfig, path: str, payload: bytes) -> tuple[int, dict[str, str], bytes]:
    frame = b"\x00" + struct.pack(">I", len(payload)) + payload
    request = urllib.request.Request(
        f"http://{config.host}:{config.envoy_listener_port}{path}",
        data=frame,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "origin": "http://localhost:5173"},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()


def test_public_service_is_routed_with_the_tenant_header(edge: StackConfig) -> None:
    response, call = _call(edge, f"/{AGENT}/GetSession", b"hello", metadata=(("x-ragmesh-tenant", "acme"),))
    assert response == b"hello"
    assert dict(call.trailing_metadata())["x-seen-tenant"] == "acme"


def test_internal_and_unknown_services_are_unimplemented(edge: StackConfig) -> None:
    assert _code(edge, "/ragmesh.retrieval.v1.IndexService/UpsertChunks") == grpc.StatusCode.UNIMPLEMENTED
    assert _code(edge, "/ragmesh.retrieval.v1.IndexService/GetIndexStats") == grpc.StatusCode.UNIMPLEMENTED
    assert _code(edge, "/no.such.Service/Method") == grpc.StatusCode.UNIMPLEMENTED


def test_health_goes_where_the_upstream_header_says(edge: StackConfig) -> None:
    with grpc.insecure_channel(f"{edge.host}:{edge.envoy_listener_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5, metadata=(("x-ragmesh-upstream", "svc_agent"),)
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as no_header:
            stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert no_header.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as service_down:
            stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5, metadata=(("x-ragmesh-upstream", "svc_ingest"),)
            )
        assert service_down.value.code() == grpc.StatusCode.UNAVAILABLE


def test_unavailable_is_retried(edge: StackConfig, upstream: tuple[Upstream, int]) -> None:
    response, _ = _call(edge, f"/{AGENT}/ListSessions")
    assert response == b"ok"
    assert upstream[0].calls["flaky"] == 2


def test_the_client_deadline_reaches_the_service(edge: StackConfig, upstream: tuple[Upstream, int]) -> None:
    started = time.monotonic()
    assert _code(edge, f"/{AGENT}/DeleteSession", timeout=0.5) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5
    (remaining,) = upstream[0].seen_deadlines
    assert remaining is not None and remaining < 1.0  # the 0.5 s deadline, give or take rounding


def test_grpc_web_calls_are_translated(edge: StackConfig) -> None:
    status, headers, body = _grpc_web(edge, f"/{AGENT}/GetSession", b"from-browser")
    assert status == 200
    assert headers["content-type"].startswith("application/grpc-web")
    assert headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "grpc-status" in headers["access-control-expose-headers"]
    assert body[5 : 5 + len(b"from-browser")] == b"from-browser"
    trailer_at = 5 + len(b"from-browser")
    assert body[trailer_at] == 0x80  # trailers frame
    assert b"grpc-status:0" in body[trailer_at:]


def test_cors_preflight(edge: StackConfig) -> None:
    request = urllib.request.Request(
        f"http://{edge.host}:{edge.envoy_listener_port}/{AGENT}/StreamChat",
        method="OPTIONS",
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-grpc-web,content-type,x-ragmesh-tenant,authorization",
        },
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        headers = {k.lower(): v for k, v in reply.headers.items()}
    assert headers["access-control-allow-origin"] == "http://localhost:5173"
    allowed = {h.strip() for h in headers["access-control-allow-headers"].split(",")}
    assert {"x-grpc-web", "content-type", "x-ragmesh-tenant", "authorization", "grpc-timeout"} <= allowed


def test_rate_limit_answers_resource_exhausted_to_grpc_and_grpc_web(
    upstream: tuple[Upstream, int], new_home: Callable[[], Path], make_stack_config: Callable[..., StackConfig]
) -> None:
    config = make_stack_config(
        new_home(),
        parts=("envoy",),
        svc_agent_port=upstream[1],
        edge_rate_limit_max_tokens=2,
        edge_rate_limit_tokens_per_fill=1,
        edge_rate_limit_fill_interval_s=3600,
    )
    supervisor = Supervisor(config)
    supervisor.up()
    try:
        assert _code(config, f"/{AGENT}/GetSession") == grpc.StatusCode.OK
        assert _code(config, f"/{AGENT}/GetSession") == grpc.StatusCode.OK
        try:
            _call(config, f"/{AGENT}/GetSession")
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        else:
            pytest.fail("the third call should have been rate limited")
        status, headers, body = _grpc_web(config, f"/{AGENT}/GetSession", b"x")
        assert status == 200
        assert headers["grpc-status"] == "8"
        assert body == b""
    finally:
        supervisor.down()
