"""The Envoy edge in front of the real services: routing, grpc-web, CORS, errors, rate limits."""

from __future__ import annotations

import concurrent.futures
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import context, status
from mesh.settings import MeshSettings
from ragmesh.retrieval.v1 import index_service_pb2, index_service_pb2_grpc
from ragmesh.sandbox.v1 import sandbox_service_pb2, sandbox_service_pb2_grpc
from tests.support import grpcweb

pytestmark = pytest.mark.e2e

SERVICES = ("svc_inference", "svc_retrieval", "svc_ingest", "svc_sandbox", "svc_agent")
SERVICE_NAMES = {
    "svc_inference": "ragmesh.inference.v1.InferenceService",
    "svc_retrieval": "ragmesh.retrieval.v1.RetrievalService",
    "svc_ingest": "ragmesh.ingest.v1.IngestService",
    "svc_sandbox": "ragmesh.sandbox.v1.SandboxService",
    "svc_agent": "ragmesh.agent.v1.AgentService",
}


def _wait_for_bucket_refill() -> None:
    # The edge's local token bucket refills every second; give it a full one so
    # each test starts with tokens (the rate-limit test drains it on purpose).
    time.sleep(1.5)


@pytest.mark.parametrize("service", SERVICES)
def test_health_of_every_service_through_the_edge(settings: MeshSettings, service: str) -> None:
    with grpc.insecure_channel(settings.edge_addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE_NAMES[service]):
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=name), metadata=(("x-ragmesh-upstream", service),), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_validation_error_details_cross_the_edge(settings: MeshSettings) -> None:
    with grpc.insecure_channel(settings.edge_addr) as channel:
        stub = sandbox_service_pb2_grpc.SandboxServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Execute(
                sandbox_service_pb2.ExecuteRequest(code=""), metadata=((context.TENANT_HEADER, "e2e"),), timeout=5
            )
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    decoded = status.status_from_metadata(err.trailing_metadata())  # type: ignore[attr-defined]
    assert decoded is not None
    bad = status.bad_request(decoded)
    assert bad is not None and [v.field for v in bad.field_violations] == ["code"]


def test_internal_index_service_is_not_exposed(settings: MeshSettings) -> None:
    with grpc.insecure_channel(settings.edge_addr) as channel:
        stub = index_service_pb2_grpc.IndexServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetIndexStats(
                index_service_pb2.GetIndexStatsRequest(), metadata=((context.TENANT_HEADER, "e2e"),), timeout=5
            )
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_unknown_rpc_is_unimplemented_through_the_edge(settings: MeshSettings) -> None:
    with grpc.insecure_channel(settings.edge_addr) as channel:
        call = channel.unary_unary("/ragmesh.sandbox.v1.SandboxService/DoesNotExist")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", metadata=((context.TENANT_HEADER, "e2e"),), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_grpc_web_call_and_cors(settings: MeshSettings) -> None:
    _wait_for_bucket_refill()
    base = f"http://{settings.edge_addr}"
    with httpx.Client() as client:
        preflight = client.options(
            f"{base}/grpc.health.v1.Health/Check",
            headers={
                "origin": "http://localhost:5173",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,x-grpc-web,x-ragmesh-tenant,x-ragmesh-upstream",
            },
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers.get("access-control-allow-origin") in ("*", "http://localhost:5173")
        reply = grpcweb.call(
            client,
            base,
            "/grpc.health.v1.Health/Check",
            health_pb2.HealthCheckRequest(service=""),
            headers={"x-ragmesh-upstream": "svc_agent"},
        )
    assert reply.http_status == 200
    assert reply.grpc_status == 0, reply
    assert health_pb2.HealthCheckResponse.FromString(reply.messages[0]).status == health_pb2.HealthCheckResponse.SERVING
    assert "grpc-status" in reply.headers.get("access-control-expose-headers", "")


def _burst(settings: MeshSettings, n: int) -> list[grpc.StatusCode]:
    def one(stub: health_pb2_grpc.HealthStub) -> grpc.StatusCode:
        try:
            stub.Check(health_pb2.HealthCheckRequest(), metadata=(("x-ragmesh-upstream", "svc_agent"),), timeout=5)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()  # type: ignore[attr-defined,no-any-return]

    with grpc.insecure_channel(settings.edge_addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(lambda _: one(stub), range(n)))


def test_rate_limit_gives_resource_exhausted_to_grpc_and_grpc_web(settings: MeshSettings) -> None:
    _wait_for_bucket_refill()
    # Well beyond the bucket (default 200 tokens, 100 per second), sent as fast as 16 threads go.
    codes = _burst(settings, 1500)
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    # Drain again and check a browser client sees grpc-status 8 too.
    _burst(settings, 600)
    base = f"http://{settings.edge_addr}"
    seen: list[int | None] = []
    with httpx.Client() as client:
        for _ in range(400):
            reply = grpcweb.call(
                client,
                base,
                "/grpc.health.v1.Health/Check",
                health_pb2.HealthCheckRequest(),
                headers={"x-ragmesh-upstream": "svc_agent"},
            )
            seen.append(reply.grpc_status)
            if reply.grpc_status == 8:
                break
    assert 8 in seen, f"grpc-web client never saw RESOURCE_EXHAUSTED: {set(seen)}"
    _wait_for_bucket_refill()
