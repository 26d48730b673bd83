"""The jaeger part's configuration: Jaeger v2 (an OpenTelemetry Collector build) with in-memory storage.

Only what the stack uses is switched on, each on a port from the stack config and
bound on the stack host: the OTLP/gRPC receiver (Envoy and every service export
there) and the query extension (HTTP ``/api/traces/<id>``, which ``ragmesh trace``
reads, and its gRPC twin, which it cannot leave unbound). Jaeger's own telemetry
is off: its defaults would bind fixed ports that a second stack on the machine
holds already.

Sampling happens here, not at the head. With ``trace_sample_ratio`` below 1 the
pipeline runs the collector's ``tail_sampling`` processor (``tail_sampling``): every
process records and exports every request, and the collector keeps a whole trace
when any of its spans failed, when it lasted ``trace_keep_slower_than_ms`` or more,
or else at the ratio (hashed on the trace id, so every collector agrees). A head
sampler cannot do this: at the edge nobody knows yet whether the request will fail
or be slow. The Kubernetes gateway (``gateway_config``, rendered into
``kustomize/base/otel-collector`` by scripts/render_k8s_collector.py) runs the very
same processor settings and forwards what it keeps to the cluster's trace store.
"""

from __future__ import annotations

from typing import Any

import yaml

from mesh.stack.config import StackConfig

_STORE = "memstore"


#: Traces the tail sampler holds at once while it waits to decide (older ones are decided early).
_TAIL_NUM_TRACES = 50_000
#: Decisions remembered, so spans that arrive after their trace was decided follow it.
_TAIL_DECISION_CACHE = 100_000


def tail_sampling(config: StackConfig) -> dict[str, Any] | None:
    """The ``tail_sampling`` processor for ``config``; None when every trace is kept (ratio 1).

    The policies are ORed: one that says "sample" keeps the trace.
    """
    if config.trace_sample_ratio >= 1.0:
        return None
    return {
        "decision_wait": f"{config.trace_decision_wait_s:g}s",
        "num_traces": _TAIL_NUM_TRACES,
        "expected_new_traces_per_sec": 100,
        "decision_cache": {
            "sampled_cache_size": _TAIL_DECISION_CACHE,
            "non_sampled_cache_size": _TAIL_DECISION_CACHE,
        },
        "policies": [
            # A span with status ERROR: a server fault (mesh.telemetry marks UNAVAILABLE, INTERNAL,
            # DEADLINE_EXCEEDED, ... on the server side, any failed call on the client side).
            {"name": "keep-errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
            # From the earliest span start to the latest span end the collector has seen.
            {"name": "keep-slow", "type": "latency", "latency": {"threshold_ms": config.trace_keep_slower_than_ms}},
            {
                "name": "keep-share",
                "type": "probabilistic",
                "probabilistic": {"sampling_percentage": round(config.trace_sample_ratio * 100.0, 4)},
            },
        ],
    }


def _processors(config: StackConfig) -> tuple[list[str], dict[str, Any]]:
    """The traces pipeline's processors in order, and their settings."""
    names, settings = [], {}
    tail = tail_sampling(config)
    if tail is not None:
        names.append("tail_sampling")
        settings["tail_sampling"] = tail
    names.append("batch")
    settings["batch"] = {"timeout": "200ms"}
    return names, settings


def jaeger_config(config: StackConfig) -> dict[str, Any]:
    """The collector configuration for ``config`` as plain data."""
    host = config.host
    processors, processor_settings = _processors(config)
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": processors,
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
        "processors": processor_settings,
        "exporters": {"jaeger_storage_exporter": {"trace_storage": _STORE}},
    }


def gateway_config(config: StackConfig, *, backend_env: str, health_port: int) -> dict[str, Any]:
    """A trace gateway with ``config``'s sampling that forwards what it keeps over OTLP/gRPC.

    The backend's address comes from the environment variable ``backend_env`` when the
    collector starts (``${env:...}``), so one rendered file serves every cluster. The
    memory limiter refuses spans before the pod runs out of memory (callers' exporters
    drop them and count it; requests are never slowed down by tracing).
    """
    processors, processor_settings = _processors(config)
    return {
        "service": {
            "extensions": ["healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", *processors],
                    "exporters": ["otlp"],
                }
            },
            "telemetry": {
                "resource": {"service.name": "otel-collector"},
                "metrics": {"level": "basic", "readers": [_prometheus_reader(config.host)]},
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": f"{config.host}:{health_port}"}},
        },
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"{config.host}:{config.jaeger_otlp_grpc_port}"}}}},
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
            **processor_settings,
        },
        "exporters": {
            "otlp": {
                "endpoint": "${env:" + backend_env + "}",
                "sending_queue": {"enabled": True, "queue_size": 5_000},
                "retry_on_failure": {"enabled": True, "max_elapsed_time": "60s"},
            }
        },
    }


#: Where the gateway serves its own metrics (spans received, sampled, dropped) for Prometheus.
GATEWAY_METRICS_PORT = 8888


def _prometheus_reader(host: str) -> dict[str, Any]:
    return {"pull": {"exporter": {"prometheus": {"host": host, "port": GATEWAY_METRICS_PORT}}}}


def render_jaeger_config(config: StackConfig) -> str:
    """The configuration as YAML text (stable: same config, same bytes)."""
    return yaml.safe_dump(jaeger_config(config), sort_keys=False, default_flow_style=False)
