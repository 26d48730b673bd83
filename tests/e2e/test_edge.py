"""The Envoy edge in front of the real services: identity, routing, grpc-web, CORS, errors, rate limits."""

from __future__ import annotations

import concurrent.futures
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import status
from mesh.settings import MeshSettings
from ragmesh.inference.v1 import inference_service_pb2, inference_service_pb2_grpc
from ragmesh.retrieval.v1 import index_service_pb2, index_service_pb2_grpc
from ragmesh.sandbox.v1 import sandbox_service_pb2, sandbox_service_pb2_grpc
from tests.support import grpcweb
from tests.support.auth import stack_bearer

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
            stub.Execute(sandbox_service_pb2.ExecuteRequest(code=""), metadata=stack_bearer("e2e"), timeout=5)
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    decoded = status.status_from_metadata(err.trailing_metadata())  # type: ignore[attr-defined]
    assert decoded is not None
    bad = status.bad_request(decoded)
    assert bad is not None and [v.field for v in bad.field_violations] == ["code"]


def test_internal_services_are_not_exposed(settings: MeshSettings) -> None:
    with grpc.insecure_channel(settings.edge_addr) as channel, pytest.raises(grpc.RpcError) as info:
        inference_service_pb2_grpc.InferenceServiceStub(channel).ListModels(
            inference_service_pb2.ListModelsRequest(), metadata=stack_bearer("e2e", roles=("admin",)), timeout=5
        )
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_internal_index_service_is_not_exposed(settings: MeshSettings) -> None:
    with grpc.insecure_channel(settings.edge_addr) as channel:
        stub = index_service_pb2_grpc.IndexServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetIndexStats(index_service_pb2.GetIndexStatsRequest(), metadata=stack_bearer("e2e"), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_unknown_rpc_is_unimplemented_through_the_edge(settings: MeshSettings) -> None:
    with grpc.insecure_channel(settings.edge_addr) as channel:
        call = channel.unary_unary("/ragmesh.sandbox.v1.SandboxService/DoesNotExist")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", metadata=stack_bearer("e2e"), timeout=5)
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


# One cheap RPC per service, called straight at the service's port (no Envoy).
_DIRECT_CALLS = {
    "svc_inference": ("/ragmesh.inference.v1.InferenceService/ListModels", b""),
    "svc_retrieval": ("/ragmesh.retrieval.v1.RetrievalService/GetChunk", b"\n\x01x"),
    "svc_ingest": ("/ragmesh.ingest.v1.IngestService/ListDocuments", b""),
    "svc_sandbox": ("/ragmesh.sandbox.v1.SandboxService/Execute", b"\n\x0aprint('x')"),
    "svc_agent": ("/ragmesh.agent.v1.AgentService/ListSessions", b""),
}


def _direct(settings: MeshSettings, service: str, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    path, body = _DIRECT_CALLS[service]
    addr = getattr(settings, f"{service.removeprefix('svc_')}_addr")
    with grpc.insecure_channel(addr) as channel:
        method = channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            method(body, metadata=metadata, timeout=30)
        except grpc.RpcError as err:
            return err.code()  # type: ignore[attr-defined,no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.parametrize("service", SERVICES)
def test_a_forged_identity_header_at_a_service_port_is_unauthenticated(settings: MeshSettings, service: str) -> None:
    forged = (("x-ragmesh-tenant", "e2e-agent"), ("x-ragmesh-subject", "someone"), ("x-ragmesh-roles", "admin"))
    assert _direct(settings, service, forged) == grpc.StatusCode.UNAUTHENTICATED
    # A token signed by another key, with the stack key's id, fares no better.
    from mesh.auth import SigningKey, TokenIssuer
    from mesh.stack import StackConfig, StackLayout, identity

    kid = identity.signing_key(StackLayout(StackConfig.from_env().home)).kid
    stranger = SigningKey.generate()
    forged_token = TokenIssuer(stranger.private_key, kid, "ragmesh-local").issue(
        tenant="e2e-agent", subject="x", roles=("admin",), audience="ragmesh", ttl_s=60
    )
    assert _direct(settings, service, (("authorization", f"Bearer {forged_token}"), *forged)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_roles_decide_what_a_verified_caller_may_do(settings: MeshSettings) -> None:
    reader = stack_bearer("e2e-roles", roles=("reader",))
    # A person may not reach an internal service even at its own port, whatever their roles.
    assert _direct(settings, "svc_inference", stack_bearer("e2e-roles", roles=("admin",))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert _direct(settings, "svc_ingest", reader) == grpc.StatusCode.OK
    with grpc.insecure_channel(settings.edge_addr) as channel:
        create = channel.unary_unary(
            "/ragmesh.ingest.v1.IngestService/CreateIngestJob",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as info:
            create(b"\n\x08/nowhere", metadata=reader, timeout=10)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        assert "editor" in (info.value.details() or "")  # type: ignore[attr-defined]
