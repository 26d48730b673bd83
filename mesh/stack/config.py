"""The local stack's configuration: every port, path, limit and timeout in one frozen dataclass.

``StackConfig.from_env()`` reads ``RAGMESH_<FIELD_UPPER>`` (for example
``RAGMESH_HOME``, ``RAGMESH_REDIS_PORT``, ``RAGMESH_PARTS=postgres,redis``).
Nothing else in ``mesh.stack`` reads the environment.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import ClassVar

from mesh.config import ConfigError, EnvConfig

#: Every part of the local stack, in dependency order.
PART_NAMES: tuple[str, ...] = (
    "postgres",
    "redis",
    "ratelimit",
    "jaeger",
    "neo4j",
    "ray",
    "svc_inference",
    "svc_retrieval",
    "svc_ingest",
    "svc_sandbox",
    "svc_agent",
    "envoy",
)

#: Ray worker node parts are called ``ray_worker_<i>`` (i from 1); how many is ``StackConfig.ray_workers``.
RAY_WORKER_PREFIX = "ray_worker_"

#: Most worker nodes ``ray_workers`` may ask for.
MAX_RAY_WORKERS = 8

_RAY_WORKER_NAME = re.compile(r"ray_worker_([1-9][0-9]*)")
_RESOURCE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")


def ray_worker_name(index: int) -> str:
    """The part name of worker node ``index`` (from 1)."""
    return f"{RAY_WORKER_PREFIX}{index}"


def ray_worker_index(name: str) -> int | None:
    """``ray_worker_3`` -> 3; None for a name that is not a worker node's."""
    match = _RAY_WORKER_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def is_part_name(name: str) -> bool:
    """A fixed part, or a worker node part of any number (how many run is the config's business)."""
    index = ray_worker_index(name)
    return name in PART_NAMES or (index is not None and index <= MAX_RAY_WORKERS)


#: The gRPC services, in the order they start.
SERVICE_NAMES: tuple[str, ...] = tuple(name for name in PART_NAMES if name.startswith("svc_"))

_SQL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

#: The Neo4j release the stack runs; scripts/fetch-neo4j.sh pins the same one.
DEFAULT_NEO4J_VERSION = "5.26.25"


def default_root_dir() -> Path:
    """The repository root when running from a checkout, else the working directory."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "mesh").is_dir():
        return checkout
    return Path.cwd()


def _default_home() -> Path:
    return default_root_dir() / ".ragmesh"


def _default_tools_dir() -> Path:
    return default_root_dir() / ".tools"


def _default_ratelimit_config_file() -> Path:
    return default_root_dir() / "envoy" / "ratelimit" / "ragmesh.yaml"


@dataclasses.dataclass(frozen=True)
class StackConfig(EnvConfig):
    """How ``ragmesh up`` runs the local stack on one machine."""

    env_prefix: ClassVar[str] = "RAGMESH"

    home: Path = dataclasses.field(default_factory=_default_home)
    """Root of the stack's state: data/, logs/, run/ (pid files), secrets/, envoy/."""

    tools_dir: Path = dataclasses.field(default_factory=_default_tools_dir)
    """Cache of downloaded tools shared by every stack home (Neo4j jars live in tools_dir/neo4j/<version>/lib)."""

    go_home: Path = dataclasses.field(default_factory=lambda: Path.home() / ".cache" / "ragmesh" / "go")
    """Cache of the Go programs scripts/install-go-tools.sh builds (bin/ratelimit, bin/jaeger)."""

    host: str = "127.0.0.1"
    """Address every part binds to and that clients use to reach it."""

    parts: tuple[str, ...] = PART_NAMES
    """Which parts ``ragmesh up`` runs when ``--only`` is not given (comma-separated in the environment)."""

    postgres_port: int = 55432
    """TCP port of PostgreSQL."""

    postgres_bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    """Directory holding Debian's PostgreSQL 15 binaries (initdb, postgres, pg_isready, psql)."""

    postgres_os_user: str = "postgres"
    """OS user that runs PostgreSQL when ``ragmesh`` runs as root (PostgreSQL refuses to run as root)."""

    postgres_user: str = "ragmesh"
    """Database role the services log in as."""

    postgres_password: str = "ragmesh"
    """Password of ``postgres_user`` (loopback only; the local stack is not a production deployment)."""

    postgres_database: str = "ragmesh"
    """Database owned by ``postgres_user``."""

    redis_port: int = 56379
    """TCP port of redis-server."""

    ratelimit_http_port: int = 58080
    """HTTP port of the rate limit service (``/healthcheck``, ``/json``)."""

    ratelimit_grpc_port: int = 58081
    """gRPC port of the rate limit service, the one Envoy asks."""

    ratelimit_debug_port: int = 58082
    """Debug port of the rate limit service (``/rlconfig``: the limits it loaded; ``/stats``)."""

    ratelimit_metrics_port: int = 58083
    """Port of the rate limit service's Prometheus ``/metrics`` (its decisions: within, near and over limit)."""

    ratelimit_config_file: Path = dataclasses.field(default_factory=_default_ratelimit_config_file)
    """The per-tenant limits (domain ``ragmesh``) the rate limit service loads; copied into the stack home."""

    tracing: bool = True
    """Collect traces: run the jaeger part and have Envoy and every service export their spans to it.

    Off by itself when the Jaeger binary is not built (scripts/install-go-tools.sh jaeger):
    the stack then runs without a trace backend and ``ragmesh status`` says tracing is off."""

    trace_sample_ratio: float = 1.0
    """Share of ordinary traces the trace backend keeps (0 to 1). Locally every trace is kept.

    Below 1 the stack samples as production does (``kustomize/base/otel-collector``): Envoy and
    the services still record and export every request, and the collector decides per whole
    trace once it has seen it (tail sampling): a trace with an error span, or longer than
    ``trace_keep_slower_than_ms``, is always kept; the others at this ratio."""

    trace_keep_slower_than_ms: int = 2_000
    """With tail sampling (``trace_sample_ratio`` below 1): a trace at least this long is always kept."""

    trace_decision_wait_s: float = 10.0
    """With tail sampling: how long the collector holds a trace's spans, from its first span,
    before deciding. It should exceed the slow threshold, so a slow request's later spans are
    seen; spans arriving after the decision follow it (the decision is remembered)."""

    jaeger_otlp_grpc_port: int = 54317
    """OTLP/gRPC port of the jaeger part: where Envoy and the services send their spans."""

    jaeger_query_port: int = 56686
    """HTTP port of Jaeger's query API (``/api/traces/<id>``; what ``ragmesh trace`` reads)."""

    jaeger_query_grpc_port: int = 56685
    """gRPC port of Jaeger's query service (bound on ``host`` only)."""

    jaeger_max_traces: int = 50_000
    """Traces Jaeger keeps in memory (oldest dropped first); nothing survives its restart."""

    neo4j_version: str = DEFAULT_NEO4J_VERSION
    """Neo4j 5 community release whose Maven artifacts the stack runs."""

    neo4j_bolt_port: int = 57687
    """Bolt port of Neo4j."""

    neo4j_http_port: int = 57474
    """HTTP port of Neo4j (browser and HTTP API)."""

    neo4j_user: str = "neo4j"
    """Neo4j user the services log in as."""

    neo4j_password: str = "ragmesh-dev"
    """Password set for ``neo4j_user`` before Neo4j's first start (auth stays on, as in production)."""

    neo4j_heap_mb: int = 512
    """Neo4j JVM heap (initial and maximum), in MiB."""

    neo4j_pagecache_mb: int = 128
    """Neo4j page cache, in MiB."""

    neo4j_auto_fetch: bool = True
    """Let ``ragmesh up`` run scripts/fetch-neo4j.sh when the Neo4j jars are missing."""

    ray_gcs_port: int = 56380
    """Port of the Ray head's GCS (the address clients pass to ``ray.init``)."""

    ray_client_server_port: int = 56381
    """Port of the Ray client server (``ray://`` addresses)."""

    ray_dashboard_agent_port: int = 56382
    """HTTP port of Ray's dashboard agent (Ray fixes it to 52365 unless told otherwise)."""

    ray_num_cpus: int = 4
    """Logical CPUs the Ray head offers to tasks and actors (a scheduling budget, not a pinning).

    svc_inference's Serve replicas hold theirs for life (1.0 locally: embedder 0.5 + LLM 0.5)
    while an ingest job needs a parse task (1.0) next to its embedding actors (0.25 each); a
    budget equal to a 2-core machine's cores leaves the parse task pending for ever, so the
    local default offers twice that and lets the kernel share the cores."""

    ray_object_store_mb: int = 1024
    """Size of the Ray head's shared-memory object store, in MiB."""

    ray_workers: int = 0
    """Ray worker nodes ``ragmesh up`` starts beside the head (``ray start --address=<head>``), 0 to 8.

    They rehearse the cluster's worker groups on one machine: node ``ray_worker_<i>`` belongs to
    group ``ray_worker_groups[(i - 1) % len(ray_worker_groups)]`` and offers that group's custom
    resource, which svc_ingest's pipeline stages ask for (svc_ingest.pipeline)."""

    ray_worker_groups: tuple[str, ...] = ("parse", "embed")
    """The worker groups nodes are dealt into, in turn; each name is also the custom resource its nodes offer
    (the groups of kustomize/components/kuberay/raycluster-ingest.yaml)."""

    ray_worker_slots: int = 2
    """Units of its group's resource a worker node offers: how many of the group's tasks or actors it runs at once."""

    ray_worker_num_cpus: int = 0
    """Plain CPUs a worker node offers besides its group's resource. 0 keeps work that names no group
    (svc_inference's Serve replicas, which Serve spreads over the nodes) on the head, so a worker node
    holds only its group's work and killing one loses no model replica."""

    ray_worker_object_store_mb: int = 100
    """Size of each worker node's object store, in MiB (Ray's minimum is about 75)."""

    ray_worker_port_base: int = 56400
    """Worker node ``i`` takes the four ports from ``ray_worker_port_base + 4 * (i - 1)``: its dashboard
    agent's HTTP and gRPC ports, its metrics export port and its runtime env agent port. Ray fixes the
    first to 52365 unless told, and a node whose agents must report ports Ray picked waits 15 s for
    them and then aborts, which a loaded machine misses."""

    svc_inference_port: int = 50051
    """gRPC port of svc_inference."""

    svc_retrieval_port: int = 50052
    """gRPC port of svc_retrieval."""

    svc_ingest_port: int = 50053
    """gRPC port of svc_ingest."""

    svc_sandbox_port: int = 50054
    """gRPC port of svc_sandbox."""

    svc_agent_port: int = 50055
    """gRPC port of svc_agent."""

    svc_inference_metrics_port: int = 50061
    """Port of svc_inference's Prometheus ``/metrics`` (bound on ``host`` only)."""

    svc_retrieval_metrics_port: int = 50062
    """Port of svc_retrieval's Prometheus ``/metrics`` (bound on ``host`` only)."""

    svc_ingest_metrics_port: int = 50063
    """Port of svc_ingest's Prometheus ``/metrics`` (bound on ``host`` only)."""

    svc_sandbox_metrics_port: int = 50064
    """Port of svc_sandbox's Prometheus ``/metrics`` (bound on ``host`` only)."""

    svc_agent_metrics_port: int = 50065
    """Port of svc_agent's Prometheus ``/metrics`` (bound on ``host`` only)."""

    envoy_listener_port: int = 8080
    """Port of Envoy's edge listener (gRPC, grpc-web)."""

    envoy_admin_port: int = 9901
    """Port of Envoy's admin interface (/ready, /stats/prometheus)."""

    edge_rate_limit_max_tokens: int = 200
    """Envoy local rate limit: bucket size, in requests."""

    edge_rate_limit_tokens_per_fill: int = 100
    """Envoy local rate limit: requests added to the bucket per fill interval."""

    edge_rate_limit_fill_interval_s: float = 1.0
    """Envoy local rate limit: seconds between refills."""

    edge_global_rate_limit_timeout_s: float = 0.25
    """How long Envoy waits for the rate limit service per call before letting the call through (fail open)."""

    edge_grpc_timeout_max_s: float = 0.0
    """Longest a call may hold a stream at the edge, in seconds (Envoy resets it then); 0: no cap.
    The client's own deadline (grpc-timeout) is enforced by the client and the services."""

    edge_retries: int = 2
    """How often Envoy retries a call that failed with UNAVAILABLE."""

    edge_max_answers_in_flight: int = 6
    """StreamChat streams the edge lets through to svc_agent at once; one more is refused at once
    with RESOURCE_EXHAUSTED (reason ANSWERS_AT_CAPACITY) instead of queueing until its deadline.

    Sized to what the answering model finishes within a caller's deadline: the local profile's
    Gemma 3 270M runs one sequence at a time, about 4 s of generation per answer on 2 cores, so
    about 6 answers fit in the default 30 s deadline (``ragmesh bench load`` shows the queue past
    that: DEADLINE_EXCEEDED at 16 in flight). Per Envoy instance; 0: no cap."""

    edge_max_concurrent_streams: int = 100
    """Most streams (calls) one HTTP/2 connection may have open at the edge; more are refused (REFUSED_STREAM)."""

    edge_stream_idle_timeout_s: float = 300.0
    """A stream with no bytes either way for this long is reset (a client that stalls mid-frame or never reads)."""

    edge_request_headers_timeout_s: float = 10.0
    """How long a client may take to send a request's headers."""

    edge_buffer_bytes: int = 1024 * 1024
    """Bytes Envoy buffers per connection and per HTTP/2 stream window before it stops reading (flow control)."""

    edge_max_connections: int = 10_000
    """Most downstream connections Envoy holds at once (overload manager); more are closed on accept."""

    edge_max_heap_bytes: int = 1024 * 1024 * 1024
    """Envoy heap the overload manager measures against: it stops accepting requests at 95% of it."""

    auth_issuer: str = "ragmesh-local"
    """The ``iss`` of the tokens the stack's key signs, checked by Envoy and every service."""

    auth_audience: str = "ragmesh"
    """The ``aud`` of tokens for people and programs; the only audience the edge accepts."""

    auth_internal_audience: str = "ragmesh-internal"
    """The ``aud`` of the services' own tokens (accepted by services, refused by the edge)."""

    auth_clock_skew_s: int = 30
    """Clock skew allowed when checking a token's ``exp`` and ``nbf``, in seconds."""

    auth_service_token_ttl_s: int = 30 * 24 * 3600
    """Lifetime of the service tokens ``ragmesh up`` mints at each start, in seconds."""

    postgres_ready_timeout_s: float = 60.0
    """Seconds PostgreSQL gets to accept connections after it is started."""

    redis_ready_timeout_s: float = 30.0
    """Seconds redis-server gets to answer PING."""

    ratelimit_ready_timeout_s: float = 30.0
    """Seconds the rate limit service gets to answer OK on ``/healthcheck``."""

    jaeger_ready_timeout_s: float = 30.0
    """Seconds Jaeger gets to answer on its query API."""

    neo4j_ready_timeout_s: float = 120.0
    """Seconds Neo4j gets to answer ``RETURN 1`` over Bolt."""

    ray_ready_timeout_s: float = 90.0
    """Seconds the Ray head gets to pass ``ray health-check``."""

    ray_worker_ready_timeout_s: float = 90.0
    """Seconds a Ray worker node gets to register with the head as alive."""

    services_ready_timeout_s: float = 180.0
    """Seconds each gRPC service gets to report SERVING (model loading included)."""

    envoy_ready_timeout_s: float = 30.0
    """Seconds Envoy gets to report LIVE on /ready."""

    stop_timeout_s: float = 20.0
    """Seconds a part gets to exit after its stop signal before it is killed."""

    def __post_init__(self) -> None:
        unknown = [name for name in self.parts if not is_part_name(name)]
        if unknown:
            raise ConfigError(f"RAGMESH_PARTS: unknown part(s) {', '.join(unknown)}; known: {', '.join(PART_NAMES)}")
        for field in ("postgres_user", "postgres_database", "postgres_os_user"):
            if not _SQL_IDENTIFIER.fullmatch(getattr(self, field)):
                raise ConfigError(f"RAGMESH_{field.upper()}: must be a plain identifier (letters, digits, _)")
        if not 0.0 <= self.trace_sample_ratio <= 1.0:
            raise ConfigError("RAGMESH_TRACE_SAMPLE_RATIO: must be between 0 and 1")
        if self.trace_keep_slower_than_ms <= 0:
            raise ConfigError("RAGMESH_TRACE_KEEP_SLOWER_THAN_MS: must be a positive number of milliseconds")
        if not 0.0 < self.trace_decision_wait_s <= 600.0:
            raise ConfigError("RAGMESH_TRACE_DECISION_WAIT_S: must be more than 0 and at most 600 seconds")
        if not 0 <= self.ray_workers <= MAX_RAY_WORKERS:
            raise ConfigError(f"RAGMESH_RAY_WORKERS: must be 0 to {MAX_RAY_WORKERS}, got {self.ray_workers}")
        if self.ray_workers and not self.ray_worker_groups:
            raise ConfigError("RAGMESH_RAY_WORKER_GROUPS: name at least one group for the worker nodes")
        bad = [g for g in self.ray_worker_groups if not _RESOURCE_NAME.fullmatch(g) or g in ("CPU", "GPU", "memory")]
        if bad:
            raise ConfigError(f"RAGMESH_RAY_WORKER_GROUPS: {', '.join(bad)} cannot name a Ray custom resource")
        if self.ray_worker_slots < 1 or self.ray_worker_num_cpus < 0 or self.ray_worker_object_store_mb < 75:
            raise ConfigError(
                "RAGMESH_RAY_WORKER_SLOTS must be at least 1, RAGMESH_RAY_WORKER_NUM_CPUS at least 0 and "
                "RAGMESH_RAY_WORKER_OBJECT_STORE_MB at least 75 (Ray's smallest object store)"
            )
        if self.edge_rate_limit_fill_interval_s <= 0:
            raise ConfigError("RAGMESH_EDGE_RATE_LIMIT_FILL_INTERVAL_S: must be positive")
        if self.edge_global_rate_limit_timeout_s <= 0:
            raise ConfigError("RAGMESH_EDGE_GLOBAL_RATE_LIMIT_TIMEOUT_S: must be positive")
        if self.edge_rate_limit_max_tokens < 1 or self.edge_rate_limit_tokens_per_fill < 1:
            raise ConfigError("RAGMESH_EDGE_RATE_LIMIT_*_TOKENS*: must be at least 1")
        if self.edge_max_answers_in_flight < 0:
            raise ConfigError("RAGMESH_EDGE_MAX_ANSWERS_IN_FLIGHT: must be 0 (no cap) or more")
        for name in ("edge_max_concurrent_streams", "edge_max_connections"):
            if getattr(self, name) < 1:
                raise ConfigError(f"RAGMESH_{name.upper()}: must be at least 1")
        for name in ("edge_stream_idle_timeout_s", "edge_request_headers_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"RAGMESH_{name.upper()}: must be positive")
        if self.edge_buffer_bytes < 65536 or self.edge_max_heap_bytes < 64 * 1024 * 1024:
            raise ConfigError("RAGMESH_EDGE_BUFFER_BYTES must be at least 64 KiB, RAGMESH_EDGE_MAX_HEAP_BYTES 64 MiB")

    def service_port(self, name: str) -> int:
        """The gRPC port of the service part ``name`` (for example ``svc_agent``)."""
        if name not in SERVICE_NAMES:
            raise KeyError(name)
        port: int = getattr(self, f"{name}_port")
        return port

    def metrics_port(self, name: str) -> int:
        """The Prometheus ``/metrics`` port of the service part ``name``."""
        if name not in SERVICE_NAMES:
            raise KeyError(name)
        port: int = getattr(self, f"{name}_metrics_port")
        return port

    @property
    def ray_worker_names(self) -> tuple[str, ...]:
        """The worker node parts this config runs, ``ray_worker_1`` first."""
        return tuple(ray_worker_name(i) for i in range(1, self.ray_workers + 1))

    def ray_worker_group(self, index: int) -> str:
        """The group (and custom resource) of worker node ``index`` (from 1)."""
        return self.ray_worker_groups[(index - 1) % len(self.ray_worker_groups)]

    @property
    def neo4j_lib_dir(self) -> Path:
        """Where scripts/fetch-neo4j.sh puts the Neo4j jars for ``neo4j_version``."""
        return self.tools_dir / "neo4j" / self.neo4j_version / "lib"
