"""The jaeger part's configuration: Jaeger v2 (an OpenTelemetry Collector build) with in-memory storage.

Only what the stack uses is switched on, each on a port from the stack config and
bound on the stack host: the OTLP/gRPC receiver (Envoy and every service export
there) and the query extension (HTTP ``/api/traces/<id>``, which ``ragmesh trace``
reads, and its gRPC twin, which it cannot leave unbound). Jaeger's own telemetry
is off: its defaults would bind fixed ports that a second stack on the machine
holds already.
"""

from __future__ import annotations

from typing import Any

import yaml

from mesh.stack.config import StackConfig

_STORE = "memstore"


def jaeger_config(config: StackConfig) -> dict[str, Any]:
    """The collector configuration for ``config`` as plain data."""
    host = config.host
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {"level": "none"},
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            "jaeger_query": {
                "storage": {"traces": _STORE},
                "http": {"endpoint": f"{host}:{config.jaeger_query_port}"},
                "grpc": {"endpoint": f"{host}:{config.jaeger_query_grpc_port}"},
            },
            "jaeger_storage": {"backends": {_STORE: {"memory": {"max_traces": config.jaeger_max_traces}}}},
        },
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"{host}:{config.jaeger_otlp_grpc_port}"}}}},
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": _STORE}},
    }


def render_jaeger_config(config: StackConfig) -> str:
    """The configuration as YAML text (stable: same config, same bytes)."""
    return yaml.safe_dump(jaeger_config(config), sort_keys=False, default_flow_style=False)
