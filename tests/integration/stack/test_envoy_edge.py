"""The Envoy edge in front of a throwaway upstream: tokens, routing, grpc-web, CORS, deadlines, retries, rate limits.

The upstream stands in for svc_agent (raw-bytes handlers under the real
service name, plus the standard health service); it does not verify tokens,
so what it sees is what the edge let through. Tokens are minted from the key
the stack part made in the test's home, as ``ragmesh token issue`` does.
"""

from __future__ import annotations

import base64
import struct
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mesh import status
from mesh.auth import SigningKey, TokenIssuer
from mesh.stack import StackConfig, StackLayout, Supervisor, identity

pytestmark = pytest.mark.integration

AGENT = "ragmesh.agent.v1.AgentService"
#: StreamChat streams the test edge lets through at once.
ANSWERS_CAP = 2


class Upstream:
    """Raw-bytes handlers: Echo (GetSession), Flaky (ListSessions: UNAVAILABLE once), Slow (DeleteSession)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.seen_deadlines: list[float | None] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    def _count(self, name: str) -> int:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            return self.calls[name]

    def echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._count("echo")
        seen = dict(context.invocation_metadata())
        context.set_trailing_metadata(
            (
                ("x-seen-tenant", str(seen.get("x-ragmesh-tenant", ""))),
                ("x-seen-subject", str(seen.get("x-ragmesh-subject", ""))),
                ("x-seen-roles", str(seen.get("x-ragmesh-roles", ""))),
                ("x-seen-authorization", "yes" if "authorization" in seen else "no"),
            )
        )
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

    def answer(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        """StreamChat: a token at once, then holds the stream until the test releases it."""
        self._count("answer")
        yield b"first"
        self.release.wait(timeout=30)
        yield b"last"


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
                    "StreamChat": grpc.unary_stream_rpc_method_handler(handlers.answer),
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
    config = make_stack_config(
        new_home(), parts=("envoy",), svc_agent_port=upstream[1], edge_max_answers_in_flight=ANSWERS_CAP
    )
    supervisor = Supervisor(config)
    supervisor.up()
    yield config
    supervisor.down()


def _token(config: StackConfig, tenant: str = "acme", subject: str = "ann", **claims: Any) -> str:
    issuer = identity.issuer(config, StackLayout(config.home))
    return issuer.issue(
        tenant=tenant, subject=subject, roles=("reader",), audience=config.auth_audience, ttl_s=600, extra=claims
    )


def _auth(config: StackConfig, **claims: Any) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {_token(config, **claims)}"),)


def _call(config: StackConfig, path: str, body: bytes = b"", **kwargs: Any) -> tuple[bytes, grpc.Call]:
    """One raw call through the edge, with a valid token unless ``metadata`` says otherwise."""
    kwargs.setdefault("metadata", _auth(config))
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


def _grpc_web(
    config: StackConfig, path: str, payload: bytes, authorization: str | None = ""
) -> tuple[int, dict[str, str], bytes]:
    """One grpc-web call; ``authorization`` "" sends a valid token, None sends none."""
    frame = b"\x00" + struct.pack(">I", len(payload)) + payload
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "origin": "http://localhost:5173"}
    if authorization is not None:
        headers["authorization"] = authorization or f"Bearer {_token(config)}"
    request = urllib.request.Request(
        f"http://{config.host}:{config.envoy_listener_port}{path}", data=frame, headers=headers
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()


def test_the_identity_the_upstream_sees_comes_from_the_verified_token(edge: StackConfig) -> None:
    forged = (("x-ragmesh-tenant", "victim"), ("x-ragmesh-subject", "root"), ("x-ragmesh-roles", "admin"))
    response, call = _call(edge, f"/{AGENT}/GetSession", b"hello", metadata=(*_auth(edge), *forged))
    assert response == b"hello"
    seen = dict(call.trailing_metadata())
    assert (seen["x-seen-tenant"], seen["x-seen-subject"], seen["x-seen-roles"]) == ("acme", "ann", "")
    # The token itself travels on: the service verifies it again.
    assert seen["x-seen-authorization"] == "yes"


#: The ErrorInfo reason the edge gives for each bad-token case (the services give the same ones).
BAD_TOKEN_REASONS = {
    "missing": "TOKEN_MISSING",
    "malformed": "TOKEN_MALFORMED",
    "expired": "TOKEN_EXPIRED",
    "wrong-signature": "TOKEN_BAD_SIGNATURE",
    "wrong-issuer": "TOKEN_WRONG_ISSUER",
    "wrong-audience": "TOKEN_WRONG_AUDIENCE",
}


def _details_reason(encoded: str | bytes) -> str:
    """The ErrorInfo reason inside a grpc-status-details-bin value."""
    raw = encoded if isinstance(encoded, bytes) else base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    info = status.error_info(status_pb2.Status.FromString(raw))
    assert info is not None and info.domain == status.ERROR_DOMAIN
    return info.reason


def _bad_tokens(config: StackConfig) -> dict[str, tuple[str | None, str]]:
    """Each way a token can be wrong -> (authorization header or None, words Envoy's reason contains)."""
    now = int(time.time())
    stranger = SigningKey.generate()
    own_kid = identity.signing_key(StackLayout(config.home)).kid
    forged = TokenIssuer(stranger.private_key, own_kid, config.auth_issuer).issue(
        tenant="acme", subject="ann", roles=("reader",), audience=config.auth_audience, ttl_s=600
    )
    return {
        "missing": (None, "Jwt is missing"),
        "malformed": ("Bearer not.a.token", "Jwt"),
        "expired": (f"Bearer {_token(config, exp=now - 3600, iat=now - 7200, nbf=now - 7200)}", "expired"),
        "wrong-signature": (f"Bearer {forged}", "verification fail"),
        "wrong-issuer": (f"Bearer {_token(config, iss='https://elsewhere.example')}", "issuer"),
        "wrong-audience": (f"Bearer {_token(config, aud='another-app')}", "udience"),
    }


BAD_TOKEN_CASES = ("missing", "malformed", "expired", "wrong-signature", "wrong-issuer", "wrong-audience")


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_a_bad_token_is_unauthenticated_over_grpc(edge: StackConfig, upstream: tuple[Upstream, int], case: str) -> None:
    header, reason = _bad_tokens(edge)[case]
    before = upstream[0].calls.get("echo", 0)
    metadata = () if header is None else (("authorization", header),)
    with pytest.raises(grpc.RpcError) as info:
        _call(edge, f"/{AGENT}/GetSession", b"x", metadata=metadata)
    assert isinstance(info.value, grpc.Call)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    details = info.value.details() or ""
    assert reason in details and "ragmesh token issue" in details, details
    trailers = dict(info.value.trailing_metadata() or ())
    assert _details_reason(trailers["grpc-status-details-bin"]) == BAD_TOKEN_REASONS[case]
    assert upstream[0].calls.get("echo", 0) == before, "a refused call must not reach the service"


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_a_bad_token_is_unauthenticated_over_grpc_web(edge: StackConfig, case: str) -> None:
    header, reason = _bad_tokens(edge)[case]
    status, headers, body = _grpc_web(edge, f"/{AGENT}/GetSession", b"x", authorization=header)
    assert status == 200
    assert headers["grpc-status"] == "16"
    message = urllib.parse.unquote(headers["grpc-message"])
    assert reason.lower() in message.replace("_", " ").lower() and "ragmesh token issue" in message, message
    assert _details_reason(headers["grpc-status-details-bin"]) == BAD_TOKEN_REASONS[case]
    assert "grpc-status-details-bin" in headers["access-control-expose-headers"]
    assert headers["access-control-allow-origin"] == "http://localhost:5173"
    assert body == b""


def test_a_token_within_the_clock_skew_is_accepted(edge: StackConfig) -> None:
    now = int(time.time())
    response, _ = _call(edge, f"/{AGENT}/GetSession", b"ok", metadata=_auth(edge, exp=now - 5))
    assert response == b"ok"


def test_reflection_needs_a_token_and_health_does_not(edge: StackConfig) -> None:
    reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    with grpc.insecure_channel(f"{edge.host}:{edge.envoy_listener_port}") as channel:
        method = channel.stream_stream(reflection, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as info:
            list(method(iter([b""]), timeout=5, metadata=(("x-ragmesh-upstream", "svc_agent"),)))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5, metadata=(("x-ragmesh-upstream", "svc_agent"),)
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_internal_and_unknown_services_are_unimplemented(edge: StackConfig) -> None:
    assert _code(edge, "/ragmesh.inference.v1.InferenceService/Embed") == grpc.StatusCode.UNIMPLEMENTED
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


def test_answers_past_the_cap_are_refused_at_once_and_other_calls_pass(
    edge: StackConfig, upstream: tuple[Upstream, int]
) -> None:
    handlers, _ = upstream
    handlers.release.clear()
    with grpc.insecure_channel(f"{edge.host}:{edge.envoy_listener_port}") as channel:
        chat = channel.unary_stream(
            f"/{AGENT}/StreamChat", request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        held = [chat(b"q", metadata=_auth(edge), timeout=30) for _ in range(ANSWERS_CAP)]
        for stream in held:
            assert next(stream) == b"first"
        # The streams in flight are at the cap: one more is refused by the edge, while they still run.
        with pytest.raises(grpc.RpcError) as refused:
            list(chat(b"q", metadata=_auth(edge), timeout=30))
        error = refused.value
        assert isinstance(error, grpc.Call)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert f"({ANSWERS_CAP})" in (error.details() or "")
        details = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
        assert _details_reason(details) == "ANSWERS_AT_CAPACITY"
        assert all(s.is_active() for s in held), "the refusal waited for an admitted answer to end"
        # svc_agent's other calls do not count against the answers' cap.
        assert _call(edge, f"/{AGENT}/GetSession", b"still-served")[0] == b"still-served"
        # grpc-web callers get the same code in the headers of a trailers-only reply.
        status, headers, _ = _grpc_web(edge, f"/{AGENT}/StreamChat", b"q")
        assert (status, headers.get("grpc-status")) == (200, "8")

        handlers.release.set()
        for stream in held:
            assert list(stream) == [b"last"]
        # Once they ended, a new question is let through.
        handlers.release.clear()
        again = chat(b"q", metadata=_auth(edge), timeout=30)
        assert next(again) == b"first"
        handlers.release.set()
        assert list(again) == [b"last"]
