"""Hostile transports against the stack's real Envoy: each is refused or contained, other callers are served.

- a message over the services' size limit (64 MiB) gets RESOURCE_EXHAUSTED;
- a connection that opens streams and never reads (its receive window is 0) holds
  no one else up, and the edge advertises its per-connection stream limit;
- a client that sends half a DATA frame and stalls holds no one else up;
- a flood of RST_STREAMs on one connection is cut off by Envoy (premature-reset protection);
- grpc-web bodies that are not protobuf get INVALID_ARGUMENT, never INTERNAL or UNKNOWN.

After each, a normal Search through the edge succeeds and every service is SERVING.
Raw HTTP/2 is spoken with the ``h2`` package over plain sockets.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.settings import MeshSettings
from mesh.stack.config import StackConfig
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.support import grpcweb
from tests.support.auth import stack_bearer

pytestmark = pytest.mark.e2e

# The fuzz tenant has room in the per-tenant limits for adversarial traffic (envoy/ratelimit).
TENANT = "fuzz"
SEARCH = "/ragmesh.retrieval.v1.RetrievalService/Search"
PARTS = ("svc_retrieval", "svc_ingest", "svc_sandbox", "svc_agent")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _grpc_frame(payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def _token() -> str:
    ((_, value),) = stack_bearer(TENANT)
    return value


def _search_ok(settings: MeshSettings) -> None:
    """A normal Search through the edge succeeds (waiting out the edge's local bucket, if drained)."""
    deadline = time.monotonic() + 20
    with grpc.insecure_channel(settings.edge_addr) as channel:
        stub = rpb_grpc.RetrievalServiceStub(channel)  # type: ignore[no-untyped-call]
        while True:
            try:
                stub.Search(
                    rpb.SearchRequest(query="pod quality of service", top_k=3),
                    metadata=stack_bearer(TENANT),
                    timeout=30,
                )
                break
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        health = health_pb2_grpc.HealthStub(channel)
        for part in PARTS:
            reply = health.Check(health_pb2.HealthCheckRequest(), metadata=(("x-ragmesh-upstream", part),), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, part


class RawH2:
    """A client HTTP/2 connection to the edge over a plain socket, frame by frame."""

    def __init__(self, settings: MeshSettings, *, receive_window: int | None = None) -> None:
        host, port = settings.edge_addr.rsplit(":", 1)
        self.authority = settings.edge_addr
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if receive_window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: receive_window})
        self.flush()
        self.closed = False

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def headers(self, stream_id: int, path: str = SEARCH, token: str = "") -> None:
        self.conn.send_headers(
            stream_id,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", self.authority),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("authorization", token),
            ],
        )

    def read(self, seconds: float) -> list[Any]:
        """Events received within ``seconds`` (stops early when the edge closes the connection)."""
        events: list[Any] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.closed:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            events.extend(self.conn.receive_data(data))
            if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                self.closed = True
            try:
                self.flush()
            except OSError:
                self.closed = True
        return events

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(settings: MeshSettings) -> Iterator[list[RawH2]]:
    opened: list[RawH2] = []
    yield opened
    for connection in opened:
        connection.close()


def test_a_message_over_the_size_limit_is_resource_exhausted(settings: MeshSettings) -> None:
    query = b"q" * (MAX_MESSAGE_BYTES + 1024)
    body = b"\x0a" + _varint(len(query)) + query  # SearchRequest.query, far past the wire limit
    options = [("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(settings.edge_addr, options=options) as channel:
        call = channel.unary_unary(SEARCH, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as caught:
            call(body, metadata=stack_bearer(TENANT), timeout=60)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
    _search_ok(settings)


def test_streams_that_are_never_read_hold_no_one_up(settings: MeshSettings, raw: list[RawH2]) -> None:
    client = RawH2(settings, receive_window=0)
    raw.append(client)
    client.read(1.0)
    assert client.conn.remote_settings.max_concurrent_streams == StackConfig().edge_max_concurrent_streams
    request = _grpc_frame(rpb.SearchRequest(query="never read", top_k=50).SerializeToString())
    token = _token()
    for n in range(20):
        stream_id = 1 + 2 * n
        client.headers(stream_id, token=token)
        client.conn.send_data(stream_id, request, end_stream=True)
    client.flush()
    # The client never grants a byte of receive window: every reply sits in Envoy's bounded buffers.
    client.read(2.0)
    _search_ok(settings)
    # The per-connection stream limit holds for a client that respects it (h2 counts the streams).
    with pytest.raises(h2.exceptions.TooManyStreamsError):
        for n in range(20, 20 + StackConfig().edge_max_concurrent_streams + 1):
            client.headers(1 + 2 * n, token=token)


def test_half_a_frame_then_silence_holds_no_one_up(settings: MeshSettings, raw: list[RawH2]) -> None:
    client = RawH2(settings)
    raw.append(client)
    client.read(0.5)
    client.headers(1, token=_token())
    client.flush()
    # A DATA frame header announcing 100 bytes on stream 1, then 10 of them, then nothing.
    client.sock.sendall(
        struct.pack(">I", 100)[1:] + b"\x00\x00" + struct.pack(">I", 1) + b"\x00\x00\x00\x00\x5f" + b"x" * 5
    )
    _search_ok(settings)
    # Still stalled, still harmless; the stream idle timeout resets it in time (edge_stream_idle_timeout_s).
    client.read(1.0)
    _search_ok(settings)


def test_a_flood_of_rst_stream_is_cut_off(settings: MeshSettings, raw: list[RawH2]) -> None:
    client = RawH2(settings)
    raw.append(client)
    client.read(0.5)
    token = _token()
    sent = 0
    for n in range(5000):
        stream_id = 1 + 2 * n
        try:
            client.headers(stream_id, token=token)
            client.conn.reset_stream(stream_id)
            if n % 100 == 99:
                client.flush()
                client.read(0.01)
        except (OSError, h2.exceptions.ProtocolError):
            break
        if client.closed:
            break
        sent += 1
    client.read(3.0)
    assert client.closed, f"the edge kept a connection open through {sent} opened-and-reset streams"
    _search_ok(settings)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"this body is not protobuf and not a grpc-web frame", id="unframed-text"),
        pytest.param(_grpc_frame(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), id="framed-garbage"),
        pytest.param(
            b"\x00\x00\x00\x10\x00" + b"short",
            id="frame-longer-than-body",
            marks=pytest.mark.xfail(
                reason="found here: a body that ends inside a gRPC frame gets no reply until the stream idle "
                "timeout resets it (the call hangs instead of INVALID_ARGUMENT)",
                raises=httpx.ReadTimeout,
                strict=False,
            ),
        ),
        pytest.param(_grpc_frame(b'{"query": "json, not protobuf"}'), id="framed-json"),
    ],
)
def test_grpc_web_bodies_that_are_not_protobuf(settings: MeshSettings, body: bytes) -> None:
    headers = {
        "content-type": "application/grpc-web+proto",
        "x-grpc-web": "1",
        "accept": "application/grpc-web+proto",
        "authorization": _token(),
    }
    with httpx.Client() as client:
        reply = client.post(f"http://{settings.edge_addr}{SEARCH}", content=body, headers=headers, timeout=15)
    status = reply.headers.get("grpc-status") or grpcweb.parse(reply.content)[1].get("grpc-status", "")
    assert status not in ("", "0", "2", "13"), (status, reply.headers, reply.content[:300])
    assert status in ("3", "8"), (status, reply.headers, reply.content[:300])
    _search_ok(settings)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
