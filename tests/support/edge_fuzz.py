"""Sends descriptor-drawn request bodies to every public RPC through the edge.

Shared by the e2e fuzz test (a small budget) and ``ragmesh bench fuzz`` (the
full one). Bodies come from ``tests.support.proto_fuzz`` and travel as raw
bytes, so undecodable ones reach the services too. Each call is bounded by a
deadline; streams are read to their end. An outcome is the status code and
what the caller sees of the error (grpc-message and the google.rpc.Status
details), checked for anything internal leaking out.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor as _descriptor
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mesh import status
from mesh.auth import INTERNAL_SERVICES
from ragmesh.agent.v1 import agent_service_pb2
from ragmesh.ingest.v1 import ingest_service_pb2
from ragmesh.retrieval.v1 import retrieval_service_pb2
from ragmesh.sandbox.v1 import sandbox_service_pb2
from tests.support import proto_fuzz

#: The fuzzer's tenant (its own rate limits in envoy/ratelimit/ragmesh.yaml); it holds no real data.
TENANT = "fuzz"
#: Roles of the fuzzer's token: enough for every public RPC, so requests reach the services.
ROLES = ("reader", "editor")
#: Ingest sources stay under this folder, which does not exist: no job reads a real file.
SOURCE_ROOT = "/nonexistent-ragmesh-fuzz"
#: Status codes a fuzzed request must never get.
FORBIDDEN_CODES = frozenset({"INTERNAL", "UNKNOWN"})
#: Services behind the edge and the value of ``x-ragmesh-upstream`` that reaches each one's health.
UPSTREAMS = {
    "svc_agent": "ragmesh.agent.v1.AgentService",
    "svc_ingest": "ragmesh.ingest.v1.IngestService",
    "svc_retrieval": "ragmesh.retrieval.v1.RetrievalService",
    "svc_sandbox": "ragmesh.sandbox.v1.SandboxService",
    "svc_inference": "ragmesh.inference.v1.InferenceService",
}
# What the caller must never read in an error: exception class names, tracebacks, source files.
_LEAK = re.compile(
    r"Traceback|File \"|<class '|\b[A-Z][A-Za-z]*(?:Error|Exception)\b|\.py\b|site-packages|/usr/lib/python"
)
_MODULES = (agent_service_pb2, ingest_service_pb2, retrieval_service_pb2, sandbox_service_pb2)
# The edge's rate-limit families (mesh/stack/envoy_ratelimit.py) and the pace the fuzzer keeps in each,
# under the fuzz tenant's limits and the edge's local token bucket (100 calls/s for the whole edge).
_CHAT = "ragmesh.agent.v1.AgentService/StreamChat"
_PACE_PER_S = {"chat": 15.0, "ingest": 30.0, "other": 60.0}


@dataclasses.dataclass(frozen=True)
class Rpc:
    """One public RPC: its path and request type, and how its messages flow."""

    path: str
    request: _descriptor.Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def name(self) -> str:
        return self.path.lstrip("/")

    @property
    def family(self) -> str:
        if self.name == _CHAT:
            return "chat"
        return "ingest" if self.name.startswith("ragmesh.ingest.") else "other"


def public_rpcs() -> list[Rpc]:
    """Every RPC the edge routes (the services not in ``mesh.auth.INTERNAL_SERVICES``)."""
    found = []
    for module in _MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name in INTERNAL_SERVICES:
                continue
            for method in service.methods:
                found.append(
                    Rpc(
                        path=f"/{service.full_name}/{method.name}",
                        request=method.input_type,
                        client_streaming=method.client_streaming,
                        server_streaming=method.server_streaming,
                    )
                )
    return found


def fuzzer() -> proto_fuzz.Fuzzer:
    """The request fuzzer, with ingest sources kept under the nonexistent ``SOURCE_ROOT``."""
    source = st.text(max_size=40).map(lambda tail: f"{SOURCE_ROOT}/{tail}")
    return proto_fuzz.Fuzzer(
        overrides={ingest_service_pb2.CreateIngestJobRequest.DESCRIPTOR.fields_by_name["sources"].full_name: source}
    )


def _harmless(rpc: Rpc, body: bytes) -> bool:
    """False for a body that would make the ingest service read real files (random bytes can decode to one)."""
    if rpc.request is not ingest_service_pb2.CreateIngestJobRequest.DESCRIPTOR:
        return True
    try:
        decoded = ingest_service_pb2.CreateIngestJobRequest.FromString(body)
    except DecodeError:
        return True
    return all(proto_fuzz.local_path_is_under(s, SOURCE_ROOT) for s in decoded.sources)


def requests(rpc: Rpc) -> st.SearchStrategy[list[bytes]]:
    """The request bodies of one call: one body, or one to three for a client stream."""
    body = fuzzer().body(rpc.request).filter(lambda b: _harmless(rpc, b))
    return st.lists(body, min_size=1, max_size=3) if rpc.client_streaming else body.map(lambda b: [b])


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one fuzzed call came back with."""

    code: str
    """Status code name; OK when the call succeeded."""
    seen: str
    """Everything the caller reads of an error: grpc-message and the status details' text."""
    sent: bytes = b""
    """What the caller sent: an error that quotes the caller's own input back leaks nothing."""

    @property
    def leak(self) -> str | None:
        """The internal detail the caller can read, if any (text the caller sent itself does not count)."""
        for found in _LEAK.finditer(self.seen):
            if found.group(0).encode() not in self.sent:
                return found.group(0)
        return None

    @property
    def problem(self) -> str | None:
        """Why this outcome breaks the fuzzer's properties, or None."""
        if self.code in FORBIDDEN_CODES:
            return f"status {self.code}: {self.seen[:300]!r}"
        if self.leak is not None:
            return f"leaked {self.leak!r} in {self.seen[:300]!r}"
        return None


def _seen(err: grpc.RpcError) -> str:
    parts = [err.details() or ""]
    decoded = status.status_from_metadata(err.trailing_metadata())
    if decoded is not None:
        parts.append(decoded.message)
        info = status.error_info(decoded)
        if info is not None:
            parts.extend([info.reason, *info.metadata.values()])
        bad = status.bad_request(decoded)
        if bad is not None:
            parts.extend(f"{v.field}: {v.description}" for v in bad.field_violations)
    return "\n".join(parts)


class Pacer:
    """Keeps each rate-limit family under its pace, so calls reach the services instead of the limiter."""

    def __init__(self, per_s: dict[str, float] | None = None) -> None:
        self._interval = {family: 1.0 / rate for family, rate in (per_s or _PACE_PER_S).items()}
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, family: str) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(family, now))
            self._next[family] = at + self._interval[family]
        if at > now:
            time.sleep(at - now)


def call(
    channel: grpc.Channel, rpc: Rpc, bodies: Sequence[bytes], metadata: Sequence[tuple[str, str]], timeout_s: float
) -> Outcome:
    """One call of ``rpc`` with raw ``bodies``; the stream, if any, read to its end."""
    # No serializers: the bodies go out as they are, the responses come back as bytes.
    raw: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}
    md = tuple(metadata)
    try:
        if rpc.client_streaming and not rpc.server_streaming:
            channel.stream_unary(rpc.path, **raw)(iter(bodies), metadata=md, timeout=timeout_s)
        elif rpc.server_streaming and not rpc.client_streaming:
            for _ in channel.unary_stream(rpc.path, **raw)(bodies[0], metadata=md, timeout=timeout_s):
                pass
        elif rpc.client_streaming:
            for _ in channel.stream_stream(rpc.path, **raw)(iter(bodies), metadata=md, timeout=timeout_s):
                pass
        else:
            channel.unary_unary(rpc.path, **raw)(bodies[0], metadata=md, timeout=timeout_s)
    except grpc.RpcError as err:
        return Outcome(code=err.code().name, seen=_seen(err), sent=b"".join(bodies))
    return Outcome(code="OK", seen="")


def timeout_for(rpc: Rpc, default_s: float, chat_s: float) -> float:
    """StreamChat gets its own (small) deadline: a valid-shaped message starts a model generation."""
    return chat_s if rpc.name == _CHAT else default_s


def fuzz(rpc: Rpc, examples: int, send: Callable[[list[bytes]], None]) -> None:
    """Draws ``examples`` request bodies for ``rpc`` and hands each to ``send`` (no shrinking, no database)."""

    @settings(
        max_examples=examples,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests(rpc))
    def run(bodies: list[bytes]) -> None:
        send(bodies)

    run()


def health(channel: grpc.Channel) -> dict[str, str]:
    """Each service's health through the edge, by ``x-ragmesh-upstream``: SERVING or what came back."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(channel)
    found = {}
    for upstream, service in UPSTREAMS.items():
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                metadata=(("x-ragmesh-upstream", upstream),),
                timeout=5,
            )
            found[upstream] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as err:
            found[upstream] = err.code().name
    return found


def part_pids(status_json: dict[str, Any]) -> dict[str, int | None]:
    """Part name to pid, from ``ragmesh status --json``."""
    return {part["name"]: part.get("pid") for part in status_json.get("parts", [])}


def restarted(before: dict[str, int | None], after: dict[str, int | None]) -> list[str]:
    """Parts whose pid changed (or vanished) between two status snapshots."""
    return sorted(name for name, pid in before.items() if pid is not None and after.get(name) != pid)
