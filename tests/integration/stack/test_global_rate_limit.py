"""Per-tenant global limits at the edge: the real rate limit service and Redis behind a real Envoy.

A throwaway upstream serves raw-bytes handlers under the real service names
(Search, StreamChat, GetSession) and the health service; the stack parts redis,
ratelimit and envoy run in a home of their own, the rate limit service with a
small limits file this module writes (per hour, so no window ends mid-test).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mesh.cli import main
from mesh.stack import StackConfig, StackLayout, Supervisor, identity
from mesh.stack.envoy_ratelimit import global_limit_report, read_edge_limit_counters
from tests.support import grpcweb
from tests.support.tenants import new_tenant

pytestmark = pytest.mark.integration

SEARCH = "/ragmesh.retrieval.v1.RetrievalService/Search"
CHAT = "/ragmesh.agent.v1.AgentService/StreamChat"
GET_SESSION = "/ragmesh.agent.v1.AgentService/GetSession"

SEARCH_LIMIT = 5
CHAT_LIMIT = 2

LIMITS = f"""\
domain: ragmesh
descriptors:
  - key: tenant
    descriptors:
      - key: family
        value: search
        rate_limit: {{unit: hour, requests_per_unit: {SEARCH_LIMIT}}}
      - key: family
        value: chat
        rate_limit: {{unit: hour, requests_per_unit: {CHAT_LIMIT}}}
      - key: family
        value: default
        rate_limit: {{unit: hour, requests_per_unit: 1000}}
"""


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def _stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield b"token"
    yield b"done"


@pytest.fixture(scope="module")
def upstream_port() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "ragmesh.retrieval.v1.RetrievalService", {"Search": grpc.unary_unary_rpc_method_handler(_echo)}
            ),
            grpc.method_handlers_generic_handler(
                "ragmesh.agent.v1.AgentService",
                {
                    "StreamChat": grpc.unary_stream_rpc_method_handler(_stream),
                    "GetSession": grpc.unary_unary_rpc_method_handler(_echo),
                },
            ),
        )
    )
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(grace=None)


@pytest.fixture(scope="module")
def stack(
    upstream_port: int, new_home: Callable[[], Path], make_stack_config: Callable[..., StackConfig]
) -> Iterator[Supervisor]:
    home = new_home()
    limits = home / "limits.yaml"
    limits.write_text(LIMITS)
    config = make_stack_config(
        home,
        parts=("redis", "ratelimit", "envoy"),
        svc_retrieval_port=upstream_port,
        svc_agent_port=upstream_port,
        ratelimit_config_file=limits,
    )
    supervisor = Supervisor(config)
    supervisor.up()
    yield supervisor
    supervisor.down(purge=True)


def _auth(config: StackConfig, tenant: str) -> tuple[tuple[str, str], ...]:
    """A token of ``tenant`` from the test home's key: the edge keys the limit on its verified tenant."""
    token = identity.issue_token(
        config, StackLayout(config.home), tenant=tenant, subject="load", roles=("reader",), ttl_s=600
    )
    return (("authorization", f"Bearer {token}"),)


def _unary(config: StackConfig, path: str, tenant: str) -> grpc.StatusCode:
    with grpc.insecure_channel(f"{config.host}:{config.envoy_listener_port}") as channel:
        method = channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            method(b"q", timeout=5, metadata=_auth(config, tenant))
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            return exc.code()
    return grpc.StatusCode.OK


def _limited_call(config: StackConfig, path: str, tenant: str) -> grpc.Call:
    """The error of a call that must be refused."""
    with grpc.insecure_channel(f"{config.host}:{config.envoy_listener_port}") as channel:
        method = channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as caught:
            method(b"q", timeout=5, metadata=_auth(config, tenant))
    error = caught.value
    assert isinstance(error, grpc.Call)
    return error


def _chat(config: StackConfig, tenant: str) -> grpc.StatusCode:
    with grpc.insecure_channel(f"{config.host}:{config.envoy_listener_port}") as channel:
        method = channel.unary_stream(CHAT, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            assert list(method(b"q", timeout=5, metadata=_auth(config, tenant))) == [b"token", b"done"]
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            return exc.code()
    return grpc.StatusCode.OK


def _web(config: StackConfig, path: str, tenant: str) -> grpcweb.GrpcWebReply:
    with httpx.Client() as client:
        return grpcweb.call(
            client,
            f"http://{config.host}:{config.envoy_listener_port}",
            path,
            health_pb2.HealthCheckRequest(service="q"),
            headers=dict(_auth(config, tenant)),
        )


def _health(config: StackConfig, tenant: str) -> int:
    with grpc.insecure_channel(f"{config.host}:{config.envoy_listener_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""),
            timeout=5,
            metadata=(("x-ragmesh-upstream", "svc_agent"), ("x-ragmesh-tenant", tenant)),
        )
    return int(reply.status)


OK = grpc.StatusCode.OK
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_tenant_past_its_limit_is_refused_while_another_keeps_every_call(stack: Supervisor) -> None:
    config = stack.config
    # Counters live in Redis for the hour: a tenant of its own per test keeps tests apart.
    noisy, quiet = new_tenant("noisy"), new_tenant("quiet")
    noisy_codes: list[grpc.StatusCode] = []
    quiet_codes: list[grpc.StatusCode] = []
    # Interleaved: the quiet tenant calls as often as its own limit allows, the noisy one
    # past it; gRPC first, then grpc-web for each.
    for _ in range(SEARCH_LIMIT + 2):
        noisy_codes.append(_unary(config, SEARCH, noisy))
        if len(quiet_codes) < SEARCH_LIMIT - 1:
            quiet_codes.append(_unary(config, SEARCH, quiet))
    assert noisy_codes == [OK] * SEARCH_LIMIT + [EXHAUSTED] * 2
    web_noisy = _web(config, SEARCH, noisy)
    web_quiet = _web(config, SEARCH, quiet)
    assert quiet_codes == [OK] * (SEARCH_LIMIT - 1)
    assert (web_quiet.http_status, web_quiet.grpc_status) == (200, 0)
    assert web_quiet.messages, "the quiet tenant's grpc-web call got no message"
    assert (web_noisy.http_status, web_noisy.grpc_status) == (200, 8)
    assert noisy in web_noisy.grpc_message and "retry in" in web_noisy.grpc_message


def test_the_refusal_says_whose_limit_and_when_to_retry(stack: Supervisor) -> None:
    config = stack.config
    tenant = new_tenant("hint")
    assert [_unary(config, SEARCH, tenant) for _ in range(SEARCH_LIMIT)] == [OK] * SEARCH_LIMIT
    error = _limited_call(config, SEARCH, tenant)
    assert error.code() == EXHAUSTED
    details = error.details() or ""
    assert f"tenant {tenant} is over its rate limit" in details
    metadata = {key: value for key, value in (*error.initial_metadata(), *error.trailing_metadata())}
    reset_s = int(str(metadata["x-ratelimit-reset"]))
    assert 0 < reset_s <= 3600
    assert f"retry in {reset_s} s" in details


def test_families_are_counted_apart_and_health_checks_are_not_limited(stack: Supervisor) -> None:
    config = stack.config
    tenant = new_tenant("families")
    assert [_chat(config, tenant) for _ in range(CHAT_LIMIT + 1)] == [OK] * CHAT_LIMIT + [EXHAUSTED]
    # Over its chat limit, the tenant still searches, reads sessions and passes health checks.
    assert _unary(config, SEARCH, tenant) == OK
    assert [_unary(config, GET_SESSION, tenant) for _ in range(3)] == [OK] * 3
    assert [_health(config, tenant) for _ in range(CHAT_LIMIT + SEARCH_LIMIT + 2)] == [
        health_pb2.HealthCheckResponse.SERVING
    ] * (CHAT_LIMIT + SEARCH_LIMIT + 2)
    web = _web(config, CHAT, tenant)
    assert (web.http_status, web.grpc_status) == (200, 8)


def _status_json(config: StackConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    for key, value in config.env_vars().items():
        monkeypatch.setenv(key, value)
    main(["status", "--json"])
    return json.loads(capsys.readouterr().out)


def test_the_edge_fails_open_and_counts_it_when_the_service_is_down(
    stack: Supervisor, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = stack.config
    tenant = new_tenant("open")
    assert [_unary(config, SEARCH, tenant) for _ in range(SEARCH_LIMIT + 1)] == [OK] * SEARCH_LIMIT + [EXHAUSTED]
    before = read_edge_limit_counters(config)
    assert before is not None and before.over_limit >= 1
    stack.down(["ratelimit"])
    try:
        assert [_unary(config, SEARCH, tenant) for _ in range(3)] == [OK] * 3
        assert _web(config, SEARCH, tenant).grpc_status == 0
        after = read_edge_limit_counters(config)
        assert after is not None
        assert after.failure_mode_allowed - before.failure_mode_allowed == 4
        (service,) = stack.status(["ratelimit"])
        report = global_limit_report(after, service.state)
        assert report.state == "failing_open"
        assert f"{after.failure_mode_allowed} calls let through" in report.line()
        shown = _status_json(config, monkeypatch, capsys)["global_rate_limit"]
        assert shown["state"] == "failing_open"
        assert shown["counters"]["failure_mode_allowed"] == after.failure_mode_allowed
    finally:
        stack.up(["ratelimit"])
    # Back up, the service finds the tenant's count where it left it, in Redis.
    assert _unary(config, SEARCH, tenant) == EXHAUSTED
    assert _status_json(config, monkeypatch, capsys)["global_rate_limit"]["state"] == "enforcing"


def test_the_edge_fails_open_when_redis_is_down(stack: Supervisor) -> None:
    config = stack.config
    tenant = new_tenant("noredis")
    before = read_edge_limit_counters(config)
    assert before is not None
    stack.down(["redis"])
    try:
        assert [_unary(config, SEARCH, tenant) for _ in range(SEARCH_LIMIT + 2)] == [OK] * (SEARCH_LIMIT + 2)
        after = read_edge_limit_counters(config)
        assert after is not None
        assert after.failure_mode_allowed - before.failure_mode_allowed == SEARCH_LIMIT + 2
        (service,) = stack.status(["ratelimit"])
        assert service.state == "unhealthy"
        report = global_limit_report(after, service.state)
        assert report.state == "failing_open" and "unhealthy" in report.detail
    finally:
        stack.up(["redis"])
        # Its pool heals one broken connection per call (each failing open once more); a fresh
        # start gives the next check a clean pool.
        stack.down(["ratelimit"])
        stack.up(["ratelimit"])
    # Redis back, the service counts again (the calls it could not count left no trace).
    codes = [_unary(config, SEARCH, tenant) for _ in range(SEARCH_LIMIT + 1)]
    assert codes == [OK] * SEARCH_LIMIT + [EXHAUSTED]
