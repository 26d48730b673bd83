"""Readiness probes: one quick check per kind of part, each returning a ProbeResult and never raising."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.stack.process import run_checked


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Whether a part answered as a ready part should, and what it said otherwise."""

    ok: bool
    detail: str = ""
    fatal: bool = False
    """Waiting will not help (wrong credentials, say): fail at once instead of at the timeout."""


Probe = Callable[[], ProbeResult]

OK = ProbeResult(True, "ready")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def tcp_open(host: str, port: int, timeout_s: float = 1.0) -> ProbeResult:
    """Something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return OK
    except OSError as exc:
        return ProbeResult(False, f"{host}:{port}: {exc.strerror or exc}")


def command_succeeds(argv: list[str], env: Mapping[str, str] | None = None, timeout_s: float = 15.0) -> ProbeResult:
    """``argv`` exits 0 within ``timeout_s``."""
    try:
        done = run_checked(argv, env=env, timeout_s=timeout_s)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"{Path(argv[0]).name} did not answer within {timeout_s:.0f}s")
    except OSError as exc:
        return ProbeResult(False, f"{argv[0]}: {exc}")
    if done.returncode == 0:
        return OK
    return ProbeResult(False, _first_line(done.stderr) or _first_line(done.stdout) or f"exit {done.returncode}")


def postgres_query(
    psql: Path, host: str, port: int, user: str, password: str, database: str, env: Mapping[str, str]
) -> ProbeResult:
    """``user`` can log in to ``database`` over TCP and run ``SELECT 1``."""
    argv = [str(psql), "-X", "-q", "-h", host, "-p", str(port), "-U", user, "-d", database, "-tAc", "SELECT 1"]
    return command_succeeds(argv, env={**env, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3"}, timeout_s=10.0)


def redis_ping(host: str, port: int, timeout_s: float = 2.0) -> ProbeResult:
    """redis-server answers PING with PONG."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return ProbeResult(False, f"{host}:{port}: {exc.strerror or exc}")
    if reply.startswith(b"+PONG"):
        return OK
    return ProbeResult(False, f"unexpected reply to PING: {reply.decode(errors='replace').strip()}")


def neo4j_query(uri: str, user: str, password: str, timeout_s: float = 5.0) -> ProbeResult:
    """Neo4j runs ``RETURN 1`` over Bolt for ``user``."""
    import neo4j  # imported here: the driver is only needed when Neo4j is probed

    try:
        with (
            neo4j.GraphDatabase.driver(uri, auth=(user, password), connection_timeout=timeout_s) as driver,
            driver.session(database="neo4j") as session,
        ):
            # A plain session.run: no managed-transaction retries (and their back-off) in a probe.
            record = session.run("RETURN 1 AS one").single()
    except neo4j.exceptions.AuthError as exc:
        return ProbeResult(False, f"{uri}: {exc.code}: {exc.message}", fatal=True)
    except neo4j.exceptions.Neo4jError as exc:
        return ProbeResult(False, f"{uri}: {exc.code}: {exc.message}")
    except (OSError, neo4j.exceptions.DriverError) as exc:
        return ProbeResult(False, f"{uri}: {exc}")
    if record is not None and record["one"] == 1:
        return OK
    return ProbeResult(False, f"{uri}: RETURN 1 gave {record!r}")


def grpc_serving(host: str, port: int, timeout_s: float = 2.0) -> ProbeResult:
    """The standard gRPC health service reports the server as a whole ("") SERVING."""
    target = f"{host}:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        name = code.name if code is not None else "ERROR"
        return ProbeResult(False, f"{target}: health check failed: {name}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return OK
    return ProbeResult(False, f"{target}: health status {status}")


# Ray 2.60's GCS method listing the nodes; protected by the cluster's auth token.
_RAY_GET_ALL_NODES = "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo"
_RAY_NODE_LIST_FIELD = 2  # GetAllNodeInfoReply.node_info_list
_RAY_NODE_STATE_FIELD = 7  # GcsNodeInfo.state
_RAY_NODE_NAME_FIELD = 12  # GcsNodeInfo.node_name
_RAY_NODE_ALIVE = 0  # GcsNodeInfo.GcsNodeState.ALIVE


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def count_proto_field(data: bytes, field_number: int) -> int:
    """How often top-level field ``field_number`` occurs in a serialized protobuf message.

    Enough wire-format reading to count Ray's nodes without importing Ray
    (which takes seconds) or its generated messages.
    """
    count = pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            pos += length
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        if number == field_number:
            count += 1
    return count


def proto_submessages(data: bytes, field_number: int) -> list[bytes]:
    """The bytes of every length-delimited top-level field ``field_number`` (sub-messages, strings)."""
    found: list[bytes] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if number == field_number:
                found.append(data[pos : pos + length])
            pos += length
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return found


def _proto_varint_field(data: bytes, field_number: int) -> int:
    """The last value of top-level varint field ``field_number`` (0, proto3's default, when absent)."""
    value = pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            read, pos = _varint(data, pos)
            if number == field_number:
                value = read
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            pos += length
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return value


def _ray_nodes(host: str, port: int, token: str, timeout_s: float) -> tuple[list[bytes] | None, str]:
    """GcsNodeInfo messages from the GCS (None and why when it did not answer)."""
    target = f"{host}:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(
                _RAY_GET_ALL_NODES,
                request_serializer=lambda raw: raw,
                response_deserializer=lambda raw: raw,
            )
            reply = call(b"", timeout=timeout_s, metadata=(("authorization", f"Bearer {token}"),))
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = exc.details() if isinstance(exc, grpc.Call) else ""
        return None, f"GCS {target}: {code.name if code else 'ERROR'}: {details}"
    try:
        return proto_submessages(bytes(reply), _RAY_NODE_LIST_FIELD), ""
    except (ValueError, IndexError):
        return None, f"GCS {target}: unreadable node list"


def ray_node_alive(host: str, port: int, token: str, node_name: str, timeout_s: float = 2.0) -> ProbeResult:
    """The head's GCS lists a node called ``node_name`` (``ray start --node-name``) as alive."""
    nodes, problem = _ray_nodes(host, port, token, timeout_s)
    if nodes is None:
        return ProbeResult(False, problem)
    try:
        for node in nodes:
            names = proto_submessages(node, _RAY_NODE_NAME_FIELD)
            named = bool(names) and names[-1].decode(errors="replace") == node_name
            if named and _proto_varint_field(node, _RAY_NODE_STATE_FIELD) == _RAY_NODE_ALIVE:
                return OK
    except (ValueError, IndexError):
        return ProbeResult(False, f"GCS {host}:{port}: unreadable node list")
    return ProbeResult(False, f"the head lists no alive node named {node_name} yet")


def ray_head_ready(host: str, port: int, token: str, timeout_s: float = 2.0) -> ProbeResult:
    """The Ray head's GCS is SERVING and, asked with ``token``, lists at least one node (the head's raylet)."""
    target = f"{host}:{port}"
    health = grpc_serving(host, port, timeout_s)
    if not health.ok:
        return ProbeResult(False, f"GCS {health.detail}")
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(
                _RAY_GET_ALL_NODES,
                request_serializer=lambda raw: raw,
                response_deserializer=lambda raw: raw,
            )
            reply = call(b"", timeout=timeout_s, metadata=(("authorization", f"Bearer {token}"),))
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = exc.details() if isinstance(exc, grpc.Call) else ""
        return ProbeResult(False, f"GCS {target}: {code.name if code else 'ERROR'}: {details}")
    try:
        nodes = count_proto_field(bytes(reply), _RAY_NODE_LIST_FIELD)
    except (ValueError, IndexError):
        return ProbeResult(False, f"GCS {target}: unreadable node list")
    if nodes == 0:
        return ProbeResult(False, f"GCS {target}: no node has registered yet")
    return OK


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, str]:
    """Status and body of a GET; (0, reason) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            return int(reply.status), reply.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def envoy_live(host: str, admin_port: int, listener_port: int) -> ProbeResult:
    """Envoy's admin /ready says LIVE and the edge listener accepts connections."""
    status, body = http_get(f"http://{host}:{admin_port}/ready")
    if status != 200 or body.strip() != "LIVE":
        return ProbeResult(False, f"admin /ready: {status or 'no answer'} {body.strip()}".strip())
    return tcp_open(host, listener_port)
