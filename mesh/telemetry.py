"""OpenTelemetry tracing: one provider per process, exporter chosen by config."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

log = logging.getLogger(__name__)
_configured = False


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


def server_interceptor() -> Any:
    return aio_server_interceptor()  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    return list(aio_client_interceptors())  # type: ignore[no-untyped-call]
