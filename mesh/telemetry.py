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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableSequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

log = logging.getLogger(__name__)
_configured = False
_tracer = trace.get_tracer("ragmesh.mesh")

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


def configure_tracing(service_name: str, exporter: str = "none", otlp_endpoint: str = "") -> None:
    """Installs the tracer provider. ``exporter`` is "none", "console" or "otlp".

    With "none" spans are still created, so trace ids reach logs and downstream
    calls, but nothing is exported.
    """
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint or None)))
    elif exporter != "none":
        log.warning("unknown trace exporter %r; exporting nothing", exporter)
    trace.set_tracer_provider(provider)
    _configured = True


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
