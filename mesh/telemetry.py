"""OpenTelemetry tracing: one provider per process, exporter chosen by config, and the mesh's RPC spans.

The mesh's own interceptors make the spans (``mesh.interceptors`` on the
server side, ``mesh.channels`` on the client side) instead of the generic gRPC
instrumentation, which adds an interceptor layer of its own to every call and
wraps every servicer context in a proxy. The spans follow OpenTelemetry's RPC
conventions: a SERVER span per served call whose parent is the caller's W3C
``traceparent`` from the request metadata, a CLIENT span per outgoing call
whose context travels in that call's metadata, attributes ``rpc.system``,
``rpc.service``, ``rpc.method`` and ``rpc.grpc.status_code``, and an error
status where the conventions call the code an error.

Where spans go is ``TracingSettings`` (``RAGMESH_OTEL_*``, the one place every
process reads it: services, Ray Serve replicas, Ray Data workers): an OTLP/gRPC
endpoint (the local stack's jaeger part; none: spans are made, so trace ids
reach logs and callers, but not exported) and the sampler, parent-based with a
ratio for the traces a process starts itself (1.0, always on, locally).

Work that leaves the process outside a gRPC call (a Serve replica call, a Ray
task) carries its trace context as a plain dict (``carrier()``) and opens its
span under it there (``remote_span``); store calls get a CLIENT span each
(``store_span``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, MutableSequence
from typing import Any, ClassVar, ParamSpec, TypeVar

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from mesh.config import ConfigError, EnvConfig

_P = ParamSpec("_P")
_R = TypeVar("_R")

log = logging.getLogger(__name__)
#: The W3C trace context header (request metadata key).
TRACEPARENT = "traceparent"
_configured = False
_tracer = trace.get_tracer("ragmesh.mesh")


@dataclasses.dataclass(frozen=True)
class TracingSettings(EnvConfig):
    """Where a process's spans go and which traces it records (``RAGMESH_OTEL_*``)."""

    env_prefix: ClassVar[str] = "RAGMESH_OTEL"

    endpoint: str = ""
    """OTLP/gRPC ``host:port`` spans are exported to; empty exports nothing (``ragmesh up`` sets the jaeger part's)."""
    exporter: str = "otlp"
    """``otlp`` (to ``endpoint``), ``console`` (stdout, for debugging) or ``none``."""
    sample_ratio: float = 1.0
    """Share of the traces this process starts that are recorded (0 to 1); a call that arrives with a
    caller's trace follows the caller's decision (parent-based), so one request is traced whole or not at all."""
    export_timeout_s: float = 5.0
    """Longest one export to the backend may take before the batch is dropped."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_ratio <= 1.0:
            raise ConfigError("RAGMESH_OTEL_SAMPLE_RATIO: must be between 0 and 1")
        if self.exporter not in ("otlp", "console", "none"):
            raise ConfigError(f"RAGMESH_OTEL_EXPORTER: expected otlp, console or none, got {self.exporter!r}")

    @property
    def exporting(self) -> bool:
        """Whether spans leave the process."""
        return self.exporter == "console" or (self.exporter == "otlp" and bool(self.endpoint))

    def sampler(self) -> Sampler:
        """Parent-based: follow the caller; traces started here are kept at ``sample_ratio``."""
        return ParentBased(TraceIdRatioBased(self.sample_ratio))


def configure(service_name: str, settings: TracingSettings | None = None) -> None:
    """Installs this process's tracer provider from ``settings`` (default: the environment); once per process."""
    global _configured
    if _configured:
        return
    settings = TracingSettings.from_env() if settings is None else settings
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}), sampler=settings.sampler())
    if settings.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif settings.exporting:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.endpoint, insecure=True, timeout=settings.export_timeout_s)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    trace.set_tracer_provider(provider)
    _configured = True


def use_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Makes the mesh's RPC and store spans come from ``provider`` (None: the global one again).

    For ``ragmesh bench mesh``, which times one hop with and without tracing in one process.
    """
    global _tracer
    _tracer = trace.get_tracer("ragmesh.mesh") if provider is None else provider.get_tracer("ragmesh.mesh")


def flush(timeout_s: float = 5.0) -> None:
    """Exports the spans this process has ended so far (a Ray worker may be gone before the next batch)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush(int(timeout_s * 1000))


def trace_id_hex() -> str:
    """The current trace id as 32 lowercase hex digits; empty outside any span."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers, to hand to work in another process."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextlib.contextmanager
def remote_span(
    name: str, headers: Mapping[str, str] | None, attributes: Mapping[str, Any] | None = None
) -> Iterator[trace.Span]:
    """A span (current in the block) under the trace context ``headers`` carried from another process."""
    parent = propagate.extract(dict(headers or {}))
    with _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.SERVER, attributes=dict(attributes or {})
    ) as span:
        yield span


def start_remote_span(
    name: str, headers: Mapping[str, str] | None, attributes: Mapping[str, Any] | None = None
) -> trace.Span:
    """Like ``remote_span`` but not made current (for async generators, which may resume in another context)."""
    parent = propagate.extract(dict(headers or {}))
    return _tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=dict(attributes or {}))


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span]:
    """An INTERNAL span, current in the block, under the current one (a stage of a request or job)."""
    with _tracer.start_as_current_span(name, attributes=dict(attributes or {})) as current:
        yield current


@contextlib.contextmanager
def store_span(system: str, operation: str, **attributes: Any) -> Iterator[None]:
    """A CLIENT span around one call to a store (``db.system`` postgresql, redis, neo4j, qdrant)."""
    if not trace.get_current_span().get_span_context().is_valid:
        # Outside any request (start-up, background sweeps): nothing to attach the span to.
        yield
        return
    attrs = {"db.system": system, "db.operation": operation, **attributes}
    with _tracer.start_as_current_span(f"{system} {operation}", kind=SpanKind.CLIENT, attributes=attrs):
        yield


# Codes a server reports as span errors (OpenTelemetry's RPC conventions): the
# others (NOT_FOUND, INVALID_ARGUMENT, ...) are the caller's doing, not the server's fault.
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def split_method(method: str) -> tuple[str, str]:
    """("pkg.Service", "Method") of a gRPC method path "/pkg.Service/Method"."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def _rpc_attributes(method: str) -> dict[str, str]:
    service, name = split_method(method)
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


class ServerSpan:
    """The SERVER span of one served RPC, current (with its caller's trace as parent) until ``end``."""

    __slots__ = ("_span", "_token")

    def __init__(self, method: str, metadata: Mapping[str, str]) -> None:
        parent = propagate.extract(metadata)
        attributes = _rpc_attributes(method)
        self._span = _tracer.start_span(method, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        self._token = otel_context.attach(trace.set_span_in_context(self._span, parent))

    def end(self, code: grpc.StatusCode, message: str = "", error: BaseException | None = None) -> None:
        """Records the RPC's status (and an unexpected exception) and ends the span."""
        span = self._span
        try:
            if span.is_recording():
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if error is not None:
                    span.record_exception(error)
                if code in _SERVER_ERRORS:
                    span.set_status(Status(StatusCode.ERROR, message or code.name))
            span.end()
        finally:
            otel_context.detach(self._token)


class _ListSetter(Setter[MutableSequence[tuple[str, Any]]]):
    """Writes propagation fields as gRPC metadata pairs."""

    def set(self, carrier: MutableSequence[tuple[str, Any]], key: str, value: str) -> None:
        carrier.append((key, value))


_SETTER = _ListSetter()


class ClientSpan:
    """The CLIENT span of one outgoing RPC; ``inject`` puts its context into the call's metadata."""

    __slots__ = ("_span",)

    def __init__(self, method: str | bytes) -> None:
        # grpc.aio may hand the method over as bytes.
        name = method.decode() if isinstance(method, bytes) else method
        self._span = _tracer.start_span(name, kind=SpanKind.CLIENT, attributes=_rpc_attributes(name))

    def inject(self, metadata: MutableSequence[tuple[str, Any]]) -> None:
        """Adds ``traceparent`` (and whatever else the global propagator carries) to ``metadata``."""
        propagate.inject(metadata, context=trace.set_span_in_context(self._span), setter=_SETTER)

    def end(self, code: grpc.StatusCode | None, message: str = "") -> None:
        """Records the call's status (None: cancelled by the caller) and ends the span."""
        span = self._span
        if span.is_recording():
            if code is None:
                span.set_status(Status(StatusCode.ERROR, "cancelled by the caller"))
            else:
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code is not grpc.StatusCode.OK:
                    span.set_status(Status(StatusCode.ERROR, message or code.name))
        span.end()


def traced_store(
    system: str, operation: str
) -> Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, Coroutine[Any, Any, _R]]]:
    """Decorates an async store method so each call is a ``store_span``."""

    def decorate(method: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
        @functools.wraps(method)
        async def traced(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with store_span(system, operation):
                return await method(*args, **kwargs)

        return traced

    return decorate
