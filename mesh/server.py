"""Server bootstrap: every ragmesh service starts through ``serve``.

It builds a ``grpc.aio`` server with the mesh interceptor (trace span, context,
metrics, validation, error mapping, in one layer), adds the library health
service (every registered service and "" report SERVING) and reflection with
names taken from the descriptors, serves Prometheus metrics, and on SIGTERM or
SIGINT enters graceful shutdown (health NOT_SERVING) before ``server.stop(grace)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mesh import heap, telemetry
from mesh.auth import Authenticator, AuthSettings
from mesh.config import ConfigError, EnvConfig
from mesh.interceptors import MeshServerInterceptor
from mesh.logging import configure_logging
from mesh.metrics import start_metrics_server
from mesh.settings import MeshSettings

log = logging.getLogger(__name__)
# The asyncio health servicer; grpcio-health-checking ships no type stubs for it.
_health_aio: Any = health.aio  # type: ignore[attr-defined]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

_Resources = TypeVar("_Resources")


@dataclasses.dataclass(frozen=True)
class ServerConfig(EnvConfig):
    """Settings every service's server shares; a service's Config subclasses this."""

    host: str = "127.0.0.1"
    """Address to bind."""
    port: int = 0
    """Port to bind; 0 picks a free one."""
    metrics_port: int = 0
    """Port of the Prometheus /metrics endpoint; 0 disables it."""
    grace_s: float = 5.0
    """Seconds in-flight RPCs get to finish on shutdown."""
    log_level: str = "info"
    """Log level of the root logger."""
    gc_freeze: bool = True
    """Once serving, move every object alive (imports, loaded data, clients) out of the garbage collector's walks
    (``mesh.heap``); false leaves the collector as CPython sets it."""


@dataclasses.dataclass(frozen=True)
class ServiceBinding:
    """One gRPC service to serve: its full name, the generated add function and the servicer."""

    full_name: str
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: Any


class MeshServer:
    """A started server; ``port`` is the bound port."""

    def __init__(self, server: grpc.aio.Server, health_servicer: Any, port: int) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port

    async def stop(self, grace_s: float | None) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


def auth_settings(settings: MeshSettings) -> AuthSettings:
    """The token verification settings of ``settings``; a service does not start without a JWKS."""
    if settings.auth_jwks_file is None:
        raise ConfigError(
            "RAGMESH_AUTH_JWKS_FILE is not set: a service verifies every caller's token against a JWKS "
            "(ragmesh up writes one under the stack's secrets folder)"
        )
    return AuthSettings(
        jwks_file=settings.auth_jwks_file,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        internal_audience=settings.auth_internal_audience,
        clock_skew_s=settings.auth_clock_skew_s,
    )


async def start_server(
    bindings: Sequence[ServiceBinding], config: ServerConfig, *, auth: AuthSettings | None
) -> MeshServer:
    """Builds and starts the server; used by ``serve`` and by in-process tests.

    ``auth`` says how callers' tokens are verified; None serves unverified header
    identities, which only the benchmark's baseline does.
    """
    authenticator = None if auth is None else Authenticator(auth)
    server = grpc.aio.server(
        interceptors=[MeshServerInterceptor(authenticator)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = _health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for binding in bindings:
        binding.add_to_server(binding.servicer, server)
    names = [b.full_name for b in bindings]
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    if port == 0:
        raise RuntimeError(f"could not bind {config.host}:{config.port}")
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return MeshServer(server, health_servicer, port)


async def serve(
    service_name: str,
    bindings: Sequence[ServiceBinding] | Callable[[], Awaitable[Sequence[ServiceBinding]]],
    config: ServerConfig,
    *,
    lifespan: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
) -> None:
    """Runs a service until SIGTERM/SIGINT. ``lifespan`` opens and closes its resources."""
    configure_logging(service_name, config.log_level)
    auth = auth_settings(MeshSettings.from_env())
    # Where spans go is mesh-wide (RAGMESH_OTEL_*, mesh.telemetry.TracingSettings), not per service.
    telemetry.configure(service_name)
    start_metrics_server(config.metrics_port, config.host)
    heap.watch_pauses()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with (lifespan or _no_lifespan)():
        resolved = bindings if isinstance(bindings, Sequence) else await bindings()
        started = await start_server(resolved, config, auth=auth)
        if config.gc_freeze:
            # Everything start-up built lives as long as the process: later collections need not walk it.
            heap.freeze_startup_heap()
        log.info(
            "serving",
            extra={"fields": {"port": started.port, "services": [b.full_name for b in resolved]}},
        )
        await stop.wait()
        log.info("shutting down", extra={"fields": {"grace_s": config.grace_s}})
        await started.stop(config.grace_s)


async def serve_opened(
    service_name: str,
    open_resources: Callable[[], contextlib.AbstractAsyncContextManager[_Resources]],
    bindings: Callable[[_Resources], Sequence[ServiceBinding]],
    config: ServerConfig,
) -> None:
    """Runs a service whose servicers need resources (stores, channels, models) opened first.

    ``open_resources`` opens them before the server starts and closes them after it stops;
    ``bindings`` binds the servicers to what it opened.
    """
    opened: list[_Resources] = []

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with open_resources() as resources:
            opened.append(resources)
            yield

    async def resolve() -> Sequence[ServiceBinding]:
        return bindings(opened[0])

    await serve(service_name, resolve, config, lifespan=lifespan)


@contextlib.asynccontextmanager
async def _no_lifespan() -> AsyncIterator[None]:
    yield
