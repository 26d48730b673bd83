"""Render the Grafana dashboards of kustomize/components/observability from the specs below.

Dashboards as code: each dashboard is a short list of rows and panels (a title, a unit and
its PromQL), and this script turns them into the JSON Grafana reads, with the template
variables (datasource, namespace, job, instance; the RPC method on a service's dashboard),
the layout (gridPos) and the links between the overview and the service dashboards. One
file per dashboard, ``<uid>.json``; kustomization.yaml puts each in the ConfigMap the
Grafana sidecar picks up. ``--check`` fails when a checked-in file differs or is missing.

    uv run --no-sync python scripts/render_dashboards.py [--check]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent.parent / "kustomize" / "components" / "observability"

#: Codes that are the server's failure, not the caller's (bad input, auth, not found): the rules use the same set.
SERVER_FAULT_CODES = "INTERNAL|UNKNOWN|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED"
#: Every series a service exports carries these, narrowed by the dashboard's variables.
SCOPE = 'namespace=~"$namespace", job=~"$job", instance=~"$instance"'
#: For a series of another job than the dashboard's (the edge's, on the overview).
NAMESPACE = 'namespace=~"$namespace"'
RATE = "$__rate_interval"
GRID_WIDTH = 24
PANEL_HEIGHT = 8
TAGS = ("ragmesh",)


@dataclasses.dataclass(frozen=True)
class Query:
    """One PromQL target of a panel and the legend of its series."""

    expr: str
    legend: str


@dataclasses.dataclass(frozen=True)
class Panel:
    """A graph (or a single figure, ``kind="stat"``) of one or more queries, ``width`` of 24 columns."""

    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    width: int = 12
    kind: str = "timeseries"
    #: (title, dashboard uid) of the dashboards this panel links to, time range and datasource kept.
    links: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Row:
    """A titled band of panels, laid out left to right and wrapped at 24 columns; ``repeat`` names a variable."""

    title: str
    panels: tuple[Panel, ...]
    repeat: str = ""


@dataclasses.dataclass(frozen=True)
class Dashboard:
    """A whole dashboard: ``anchor`` is the metric (with selector) its variables read their values from."""

    uid: str
    title: str
    description: str
    anchor: str
    rows: tuple[Row, ...]
    #: A gRPC service: adds the ``method`` variable, for the rows that repeat per RPC.
    grpc_service: str = ""


# -- PromQL helpers -------------------------------------------------------------------------


def _selector(labels: str = "", scope: str = SCOPE) -> str:
    return "{" + ", ".join(part for part in (labels, scope) if part) + "}"


def rate(metric: str, labels: str = "", by: str = "", scope: str = SCOPE) -> str:
    """``sum by (by) (rate(metric{labels, scope}[$__rate_interval]))``."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{_selector(labels, scope)}[{RATE}]))"


def ratio(metric: str, part: str, whole: str = "", by: str = "") -> str:
    """The share of ``metric``'s rate whose labels match ``part`` (of those matching ``whole``)."""
    numerator = rate(metric, ", ".join(x for x in (whole, part) if x), by)
    return f"{numerator}\n  / {rate(metric, whole, by)}"


def quantile(q: float, histogram: str, labels: str = "", by: str = "", scope: str = SCOPE) -> str:
    """The ``q`` quantile of a histogram's buckets, grouped by ``by``."""
    grouping = ", ".join(x for x in ("le", by) if x)
    return f"histogram_quantile({q}, sum by ({grouping}) (rate({histogram}_bucket{_selector(labels, scope)}[{RATE}])))"


def gauge(metric: str, labels: str = "", by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({metric}{_selector(labels)})"


def quantiles(histogram: str, labels: str = "", by: str = "", scope: str = SCOPE) -> tuple[Query, ...]:
    """p50, p95 and p99 of a histogram."""
    return tuple(Query(quantile(q, histogram, labels, by, scope), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99))


# -- RED per RPC, the same on every service ------------------------------------------------

REQUESTS = "ragmesh_rpc_server_requests_total"
DURATION = "ragmesh_rpc_server_duration_seconds"
IN_FLIGHT = "ragmesh_rpc_server_in_flight"


def red_rows(grpc_service: str) -> tuple[Row, ...]:
    """RED of a gRPC service: every method side by side, then one repeated row per RPC of ``$method``."""
    svc = f'service="{grpc_service}"'
    methods = f'{svc}, method=~"$method"'
    one = f'{svc}, method="$method"'
    summary = Row(
        "RPCs",
        (
            Panel("Requests per second by method", "reqps", (Query(rate(REQUESTS, methods, "method"), "{{method}}"),)),
            Panel(
                "Errors per second by method and code",
                "reqps",
                (Query(rate(REQUESTS, f'{methods}, code!="OK"', "method, code"), "{{method}} {{code}}"),),
                "Every status other than OK, the caller's mistakes (INVALID_ARGUMENT, NOT_FOUND, ...) included.",
            ),
            Panel(
                "Server-fault ratio by method",
                "percentunit",
                (Query(ratio(REQUESTS, f'code=~"{SERVER_FAULT_CODES}"', methods, "method"), "{{method}}"),),
                f"Share of calls that ended {SERVER_FAULT_CODES.replace('|', ', ')}: the server's failures "
                "(the RagmeshServerErrors alert fires above 5%).",
                width=8,
            ),
            Panel(
                "p99 latency by method",
                "s",
                (Query(quantile(0.99, DURATION, methods, "method"), "{{method}}"),),
                width=8,
            ),
            Panel(
                "RPCs in flight by method",
                "short",
                (Query(gauge(IN_FLIGHT, methods, "method"), "{{method}}"),),
                width=8,
            ),
        ),
    )
    per_method = Row(
        "RPC $method",
        (
            Panel(
                "$method: requests per second by code",
                "reqps",
                (Query(rate(REQUESTS, one, "code"), "{{code}}"),),
                width=8,
            ),
            Panel(
                "$method: error ratio",
                "percentunit",
                (
                    Query(ratio(REQUESTS, 'code!="OK"', one), "any code but OK"),
                    Query(ratio(REQUESTS, f'code=~"{SERVER_FAULT_CODES}"', one), "server faults"),
                ),
                width=8,
            ),
            Panel("$method: latency", "s", quantiles(DURATION, one), width=8),
        ),
        repeat="method",
    )
    return summary, per_method


# -- The dashboards -------------------------------------------------------------------------

SERVICES = {
    "svc_agent": "ragmesh.agent.v1.AgentService",
    "svc_retrieval": "ragmesh.retrieval.v1.RetrievalService",
    "svc_inference": "ragmesh.inference.v1.InferenceService",
    "svc_ingest": "ragmesh.ingest.v1.IngestService",
    "svc_sandbox": "ragmesh.sandbox.v1.SandboxService",
}


def uid_of(part: str) -> str:
    """Dashboard uid of a part: svc_agent -> ragmesh-svc-agent, envoy -> ragmesh-envoy."""
    return "ragmesh-" + part.replace("_", "-")


def service_dashboard(part: str, title: str, domain: tuple[Row, ...]) -> Dashboard:
    grpc_service = SERVICES[part]
    return Dashboard(
        uid=uid_of(part),
        title=f"ragmesh {part}",
        description=title,
        anchor=f'{REQUESTS}{{service="{grpc_service}"}}',
        rows=(red_rows(grpc_service)[0], *domain, red_rows(grpc_service)[1]),
        grpc_service=grpc_service,
    )


AGENT = service_dashboard(
    "svc_agent",
    "svc_agent: RED per RPC, answers by cache, time to first token, tokens, the answer loop's steps.",
    (
        Row(
            "Answers",
            (
                Panel(
                    "Answers per second by cache",
                    "reqps",
                    (Query(rate("ragmesh_agent_answers_total", by="cache"), "{{cache}}"),),
                    "Which answer cache answered (none: the whole loop ran).",
                    width=8,
                ),
                Panel(
                    "Answered from the documents",
                    "percentunit",
                    (Query(ratio("ragmesh_agent_answers_total", 'from_documents="true"'), "from documents"),),
                    "Share of answers the retrieved documents held; a drop means retrieval finds less.",
                    width=8,
                ),
                Panel(
                    "Cache hit ratio",
                    "percentunit",
                    (Query(ratio("ragmesh_agent_answers_total", 'cache!="none"'), "exact or semantic"),),
                    width=8,
                ),
                Panel(
                    "Time to first answer token",
                    "s",
                    quantiles("ragmesh_agent_time_to_first_token_seconds"),
                    "From the request to the first answer token (RagmeshAgentSlowFirstToken: p95 above 10 s).",
                ),
                Panel(
                    "Model tokens per second by kind",
                    "short",
                    (Query(rate("ragmesh_agent_tokens_total", by="kind"), "{{kind}}"),),
                    "Prompt and completion tokens the answers used.",
                ),
            ),
        ),
        Row(
            "Answer loop",
            (
                Panel(
                    "Step time p95 by step",
                    "s",
                    (Query(quantile(0.95, "ragmesh_agent_step_duration_seconds", by="step"), "{{step}}"),),
                    width=8,
                ),
                Panel(
                    "Steps per second by step",
                    "ops",
                    (Query(rate("ragmesh_agent_step_duration_seconds_count", by="step"), "{{step}}"),),
                    width=8,
                ),
                Panel(
                    "Failed steps per second by step",
                    "ops",
                    (Query(rate("ragmesh_agent_step_duration_seconds_count", 'status="failed"', "step"), "{{step}}"),),
                    width=8,
                ),
            ),
        ),
    ),
)

RETRIEVAL = service_dashboard(
    "svc_retrieval",
    "svc_retrieval: RED per RPC, searches and the legs they answered without.",
    (
        Row(
            "Searches",
            (
                Panel(
                    "Searches per second",
                    "reqps",
                    (Query(rate("ragmesh_retrieval_searches_total", by="degraded"), "degraded={{degraded}}"),),
                    width=8,
                ),
                Panel(
                    "Degraded search ratio",
                    "percentunit",
                    (Query(ratio("ragmesh_retrieval_searches_total", 'degraded="true"'), "degraded"),),
                    "Searches that answered without one of their legs: worse answers, no error "
                    "(RagmeshRetrievalDegraded fires above 10%).",
                    width=8,
                ),
                Panel(
                    "Degraded legs per second by leg",
                    "ops",
                    (Query(rate("ragmesh_retrieval_degraded_legs_total", by="leg"), "{{leg}}"),),
                    "A leg is dropped when it is slower than its budget or its store fails.",
                    width=8,
                ),
            ),
        ),
    ),
)

INFERENCE = service_dashboard(
    "svc_inference",
    "svc_inference: RED per RPC, tokens in and out, TTFT and inter-token latency, queues, rejections, batches.",
    (
        Row(
            "Generation",
            (
                Panel(
                    "Completion tokens per second by model",
                    "short",
                    (Query(rate("ragmesh_inference_tokens_generated_total", by="model"), "{{model}}"),),
                    width=8,
                ),
                Panel(
                    "Prompt tokens per second by model",
                    "short",
                    (Query(rate("ragmesh_inference_prompt_tokens_total", by="model"), "{{model}}"),),
                    width=8,
                ),
                Panel(
                    "Generations per second by model and outcome",
                    "ops",
                    (Query(rate("ragmesh_inference_generations_total", by="model, outcome"), "{{model}} {{outcome}}"),),
                    "How generations ended: stop, length, cancelled or error.",
                    width=8,
                ),
                Panel(
                    "Time to first token by model",
                    "s",
                    (
                        Query(
                            quantile(0.5, "ragmesh_inference_time_to_first_token_seconds", by="model"), "{{model}} p50"
                        ),
                        Query(
                            quantile(0.95, "ragmesh_inference_time_to_first_token_seconds", by="model"), "{{model}} p95"
                        ),
                        Query(
                            quantile(0.99, "ragmesh_inference_time_to_first_token_seconds", by="model"), "{{model}} p99"
                        ),
                    ),
                    "From the request reaching the backend to its first token (RagmeshInferenceSlowFirstToken: "
                    "p95 above 5 s).",
                    width=8,
                ),
                Panel(
                    "Inter-token latency p95 by model",
                    "s",
                    (Query(quantile(0.95, "ragmesh_inference_inter_token_latency_seconds", by="model"), "{{model}}"),),
                    "Mean gap between two tokens after the first, per generation.",
                    width=8,
                ),
                Panel(
                    "Decode speed p50 by model",
                    "short",
                    (Query(quantile(0.5, "ragmesh_inference_decode_tokens_per_second", by="model"), "{{model}}"),),
                    "Completion tokens per second after the first token, per generation.",
                    width=8,
                ),
            ),
        ),
        Row(
            "Load",
            (
                Panel(
                    "Queue depth by model",
                    "short",
                    (Query(gauge("ragmesh_inference_queue_depth", by="model"), "{{model}}"),),
                    "Requests waiting for or running on a model.",
                    width=8,
                ),
                Panel(
                    "Pending requests by model and priority",
                    "short",
                    (
                        Query(
                            gauge("ragmesh_inference_pending_requests", by="model, priority"),
                            "{{model}} {{priority}}",
                        ),
                    ),
                    "Interactive (questions) against batch (ingest) work.",
                    width=8,
                ),
                Panel(
                    "Rejections per second by model and reason",
                    "ops",
                    (Query(rate("ragmesh_inference_rejected_total", by="model, reason"), "{{model}} {{reason}}"),),
                    "Requests refused before reaching a model (QUEUE_FULL: add replicas or GPUs).",
                    width=8,
                ),
                Panel(
                    "Batch size by model",
                    "short",
                    (
                        Query(quantile(0.5, "ragmesh_inference_batch_size", by="model"), "{{model}} p50"),
                        Query(quantile(0.95, "ragmesh_inference_batch_size", by="model"), "{{model}} p95"),
                    ),
                    "Items (texts, query-document pairs) in the backend batch a request was computed in.",
                ),
                Panel(
                    "Batched requests per second by model",
                    "reqps",
                    (Query(rate("ragmesh_inference_batch_size_count", by="model"), "{{model}}"),),
                    "Embedding and rerank requests that reached a model.",
                ),
            ),
        ),
    ),
)

INGEST = service_dashboard(
    "svc_ingest",
    "svc_ingest: RED per RPC, the job queue, jobs, files and chunks (counted when a job ends).",
    (
        Row(
            "Jobs",
            (
                Panel(
                    "Jobs waiting (queue depth)",
                    "short",
                    (Query(gauge("ragmesh_ingest_jobs_waiting"), "waiting"),),
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Jobs running",
                    "short",
                    (Query(gauge("ragmesh_ingest_jobs_running"), "running"),),
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Job queue",
                    "short",
                    (
                        Query(gauge("ragmesh_ingest_jobs_waiting"), "waiting for a slot"),
                        Query(gauge("ragmesh_ingest_jobs_running"), "running"),
                    ),
                    "Jobs waiting with none ending is a stalled ingest (RagmeshIngestStalled).",
                ),
                Panel(
                    "Jobs ended per second by state",
                    "ops",
                    (Query(rate("ragmesh_ingest_jobs_total", by="state"), "{{state}}"),),
                    width=8,
                ),
                Panel(
                    "Files per second by outcome",
                    "ops",
                    (Query(rate("ragmesh_ingest_files_total", by="outcome"), "{{outcome}}"),),
                    "Counted when their job ends: ingested, unchanged (skipped) or failed.",
                    width=8,
                ),
                Panel(
                    "Chunks embedded per second",
                    "ops",
                    (Query(rate("ragmesh_ingest_chunks_embedded_total"), "chunks"),),
                    "Counted when their job ends.",
                    width=8,
                ),
            ),
        ),
    ),
)

SANDBOX = service_dashboard(
    "svc_sandbox",
    "svc_sandbox: RED per RPC, executions by why they stopped and how long they ran.",
    (
        Row(
            "Executions",
            (
                Panel(
                    "Executions per second by stop reason",
                    "ops",
                    (Query(rate("ragmesh_sandbox_executions_total", by="stop_reason"), "{{stop_reason}}"),),
                    width=8,
                ),
                Panel(
                    "Stopped by a limit",
                    "percentunit",
                    (Query(ratio("ragmesh_sandbox_executions_total", 'stop_reason!="COMPLETED"'), "not completed"),),
                    "Share of executions that hit the time, memory or output limit or were killed.",
                    width=8,
                ),
                Panel(
                    "Execution time p95 by stop reason",
                    "s",
                    (
                        Query(
                            quantile(0.95, "ragmesh_sandbox_execution_duration_seconds", by="stop_reason"),
                            "{{stop_reason}}",
                        ),
                    ),
                    width=8,
                ),
            ),
        ),
    ),
)

_CLUSTERS = 'envoy_cluster_name=~"svc_.*"'
_EDGE = 'envoy_http_conn_manager_prefix="edge"'
_RATELIMIT = 'envoy_cluster_name="ratelimit"'
_OVER_LIMIT = rate("envoy_cluster_ratelimit_over_limit", _CLUSTERS)
EDGE = Dashboard(
    uid=uid_of("envoy"),
    title="ragmesh edge (Envoy)",
    description="The Envoy edge: requests and response classes, time at the edge and per service, connections, "
    "retries and timeouts, and the per-tenant rate limit decisions (Envoy's and the rate limit service's). "
    "gRPC status codes travel in trailers: the service dashboards have them.",
    anchor="envoy_cluster_upstream_rq_total",
    rows=(
        Row(
            "Edge listener",
            (
                Panel(
                    "Requests per second by response class",
                    "reqps",
                    (
                        Query(
                            rate("envoy_http_downstream_rq_xx", _EDGE, "envoy_response_code_class"),
                            "{{envoy_response_code_class}}xx",
                        ),
                    ),
                    "HTTP classes at the edge; a gRPC error is a 200 with grpc-status in its trailers.",
                    width=8,
                ),
                Panel(
                    "Time at the edge",
                    "ms",
                    quantiles("envoy_http_downstream_rq_time", _EDGE),
                    "From the request's first byte to the response's last, streams included.",
                    width=8,
                ),
                Panel(
                    "Open connections and streams",
                    "short",
                    (
                        Query(gauge("envoy_http_downstream_cx_active", _EDGE), "connections"),
                        Query(gauge("envoy_http_downstream_rq_active", _EDGE), "requests"),
                    ),
                    width=8,
                ),
            ),
        ),
        Row(
            "Services behind the edge",
            (
                Panel(
                    "Requests per second by service",
                    "reqps",
                    (
                        Query(
                            rate("envoy_cluster_upstream_rq_total", _CLUSTERS, "envoy_cluster_name"),
                            "{{envoy_cluster_name}}",
                        ),
                    ),
                    width=8,
                ),
                Panel(
                    "Edge failures (5xx) per second by service",
                    "reqps",
                    (
                        Query(
                            rate(
                                "envoy_cluster_upstream_rq_xx",
                                f'{_CLUSTERS}, envoy_response_code_class="5"',
                                "envoy_cluster_name",
                            ),
                            "{{envoy_cluster_name}}",
                        ),
                    ),
                    "Envoy's own failures to reach a service: no healthy endpoint, connection refused or reset, "
                    "upstream timeout (RagmeshEdgeUpstreamFailures).",
                    width=8,
                ),
                Panel(
                    "p99 time by service",
                    "ms",
                    (
                        Query(
                            quantile(0.99, "envoy_cluster_upstream_rq_time", _CLUSTERS, "envoy_cluster_name"),
                            "{{envoy_cluster_name}}",
                        ),
                    ),
                    width=8,
                ),
                Panel(
                    "Retries, timeouts and connect failures per second",
                    "ops",
                    (
                        Query(
                            rate("envoy_cluster_upstream_rq_retry", _CLUSTERS, "envoy_cluster_name"),
                            "{{envoy_cluster_name}} retries",
                        ),
                        Query(
                            rate("envoy_cluster_upstream_rq_timeout", _CLUSTERS, "envoy_cluster_name"),
                            "{{envoy_cluster_name}} timeouts",
                        ),
                        Query(
                            rate("envoy_cluster_upstream_cx_connect_fail", _CLUSTERS, "envoy_cluster_name"),
                            "{{envoy_cluster_name}} connect failures",
                        ),
                    ),
                ),
                Panel(
                    "Healthy endpoints by service",
                    "short",
                    (
                        Query(
                            gauge("envoy_cluster_membership_healthy", _CLUSTERS, "envoy_cluster_name"),
                            "{{envoy_cluster_name}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Rate limits",
            (
                Panel(
                    "Envoy's rate limit decisions per second",
                    "reqps",
                    (
                        Query(rate("envoy_cluster_ratelimit_ok", _CLUSTERS), "within the limit"),
                        Query(rate("envoy_cluster_ratelimit_over_limit", _CLUSTERS), "over the limit"),
                    ),
                    "What the rate limit service told the edge for the per-tenant limits.",
                    width=8,
                ),
                Panel(
                    "Calls over the limit per second by service",
                    "reqps",
                    (
                        Query(
                            rate("envoy_cluster_ratelimit_over_limit", _CLUSTERS, "envoy_cluster_name"),
                            "{{envoy_cluster_name}}",
                        ),
                    ),
                    "Refused with RESOURCE_EXHAUSTED and x-ratelimit-reset.",
                    width=8,
                ),
                Panel(
                    "Share of calls over the limit",
                    "percentunit",
                    (
                        Query(
                            f"{_OVER_LIMIT}\n  / ({rate('envoy_cluster_ratelimit_ok', _CLUSTERS)}\n  + {_OVER_LIMIT})",
                            "over the limit",
                        ),
                    ),
                    width=8,
                ),
                Panel(
                    "Rate limit service: decisions per second by family",
                    "reqps",
                    (
                        Query(
                            rate("ratelimit_service_rate_limit_within_limit", by="key2", scope=NAMESPACE),
                            "{{key2}} within",
                        ),
                        Query(
                            rate("ratelimit_service_rate_limit_over_limit", by="key2", scope=NAMESPACE),
                            "{{key2}} over",
                        ),
                    ),
                    "The rate limit service's side of the same decisions, by limit family (flushed every 10 s).",
                    width=8,
                ),
                Panel(
                    "Rate limit service: answer time",
                    "s",
                    quantiles("ratelimit_service_response_time_seconds", scope=NAMESPACE),
                    "Time to one ShouldRateLimit decision, on the service.",
                    width=8,
                ),
                Panel(
                    "Rate limit service as the edge sees it",
                    "ops",
                    (
                        Query(rate("envoy_cluster_upstream_cx_connect_fail", _RATELIMIT), "connect failures"),
                        Query(rate("envoy_cluster_upstream_rq_timeout", _RATELIMIT), "timeouts"),
                        Query(
                            rate("envoy_cluster_upstream_rq_xx", f'{_RATELIMIT}, envoy_response_code_class="5"'), "5xx"
                        ),
                    ),
                    "Calls from Envoy to the rate limit service that got no decision: the edge fails open and lets "
                    "them through unlimited (RagmeshRateLimitServiceFailing).",
                    width=8,
                ),
                Panel(
                    "Edge local rate limit per second",
                    "reqps",
                    (
                        Query(
                            rate(
                                "envoy_http_local_rate_limit_rate_limited",
                                'envoy_local_http_ratelimit_prefix="edge_local_rate_limit"',
                            ),
                            "limited",
                        ),
                    ),
                    "The edge's own token bucket in front of everything.",
                ),
            ),
        ),
    ),
)

OVERVIEW = Dashboard(
    uid="ragmesh-overview",
    title="ragmesh overview",
    description="The whole mesh: RPCs, errors and latency by service, models, answers, retrieval, ingest, sandbox; "
    "each service's own dashboard is one click away (the Services row, or the ragmesh menu).",
    anchor=REQUESTS,
    rows=(
        Row(
            "Services",
            (
                *(
                    Panel(
                        part,
                        "reqps",
                        (Query(rate(REQUESTS, f'service="{grpc_service}"'), "RPCs per second"),),
                        f"RPCs {part} serves; the link opens its dashboard.",
                        width=4,
                        kind="stat",
                        links=((f"{part} dashboard", uid_of(part)),),
                    )
                    for part, grpc_service in SERVICES.items()
                ),
                Panel(
                    "edge (Envoy)",
                    "reqps",
                    (
                        Query(
                            rate("envoy_cluster_upstream_rq_total", 'envoy_cluster_name=~"svc_.*"', scope=NAMESPACE),
                            "routed per second",
                        ),
                    ),
                    "Requests the edge routed to the services; the link opens the edge dashboard.",
                    width=4,
                    kind="stat",
                    links=(("edge dashboard", uid_of("envoy")),),
                ),
            ),
        ),
        Row(
            "RPCs",
            (
                Panel("RPCs per second by service", "reqps", (Query(rate(REQUESTS, by="service"), "{{service}}"),)),
                Panel(
                    "Server-side failures by service and code",
                    "reqps",
                    (Query(rate(REQUESTS, 'code!="OK"', "service, code"), "{{service}} {{code}}"),),
                ),
                Panel(
                    "p50 / p99 RPC latency by service",
                    "s",
                    (
                        Query(quantile(0.5, DURATION, by="service"), "{{service}} p50"),
                        Query(quantile(0.99, DURATION, by="service"), "{{service}} p99"),
                    ),
                ),
                Panel("RPCs in flight", "short", (Query(gauge(IN_FLIGHT, by="service"), "{{service}}"),), width=6),
                Panel(
                    "Server-fault ratio by service",
                    "percentunit",
                    (Query(ratio(REQUESTS, f'code=~"{SERVER_FAULT_CODES}"', by="service"), "{{service}}"),),
                    "RagmeshServerErrors fires above 5%.",
                    width=6,
                ),
            ),
        ),
        Row(
            "Models and answers",
            (
                Panel(
                    "Tokens generated per second by model",
                    "short",
                    (Query(rate("ragmesh_inference_tokens_generated_total", by="model"), "{{model}}"),),
                ),
                Panel(
                    "Time to first token p95 by model",
                    "s",
                    (Query(quantile(0.95, "ragmesh_inference_time_to_first_token_seconds", by="model"), "{{model}}"),),
                ),
                Panel(
                    "Model queue depth and rejections",
                    "short",
                    (
                        Query(gauge("ragmesh_inference_queue_depth", by="model"), "{{model}} queued"),
                        Query(
                            rate("ragmesh_inference_rejected_total", by="model, reason"),
                            "{{model}} rejected {{reason}}",
                        ),
                    ),
                ),
                Panel(
                    "Answers per second by cache",
                    "reqps",
                    (Query(rate("ragmesh_agent_answers_total", by="cache"), "{{cache}}"),),
                ),
                Panel(
                    "Agent step time p95 by step",
                    "s",
                    (Query(quantile(0.95, "ragmesh_agent_step_duration_seconds", by="step"), "{{step}}"),),
                ),
                Panel(
                    "Answer time to first token p50 / p95",
                    "s",
                    (
                        Query(quantile(0.5, "ragmesh_agent_time_to_first_token_seconds"), "p50"),
                        Query(quantile(0.95, "ragmesh_agent_time_to_first_token_seconds"), "p95"),
                    ),
                ),
                Panel(
                    "Inter-token latency p95 by model",
                    "s",
                    (Query(quantile(0.95, "ragmesh_inference_inter_token_latency_seconds", by="model"), "{{model}}"),),
                ),
            ),
        ),
        Row(
            "Retrieval, ingest, sandbox",
            (
                Panel(
                    "Degraded retrieval legs per second",
                    "ops",
                    (Query(rate("ragmesh_retrieval_degraded_legs_total", by="leg"), "{{leg}}"),),
                ),
                Panel(
                    "Ingest queue and files per second",
                    "short",
                    (
                        Query(gauge("ragmesh_ingest_jobs_waiting"), "jobs waiting"),
                        Query(gauge("ragmesh_ingest_jobs_running"), "jobs running"),
                        Query(rate("ragmesh_ingest_files_total", by="outcome"), "files {{outcome}} per second"),
                    ),
                ),
                Panel(
                    "Sandbox executions by stop reason",
                    "ops",
                    (Query(rate("ragmesh_sandbox_executions_total", by="stop_reason"), "{{stop_reason}}"),),
                ),
            ),
        ),
    ),
)

DASHBOARDS = (OVERVIEW, AGENT, RETRIEVAL, INFERENCE, INGEST, SANDBOX, EDGE)


# -- Rendering ------------------------------------------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
LINK_VARIABLES = "${__url_time_range}&${datasource:queryparam}&${namespace:queryparam}"


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.unit == "percentunit":
        defaults |= {"min": 0, "max": 1}
    elif panel.unit in ("reqps", "ops", "s", "short"):
        defaults["min"] = 0
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": PANEL_HEIGHT, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend}
            for i, q in enumerate(panel.queries)
        ],
    }
    if panel.description:
        out["description"] = panel.description
    if panel.kind == "timeseries":
        out["options"] = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "area", "colorMode": "value"}
    if panel.links:
        out["links"] = [{"title": title, "url": f"/d/{uid}?{LINK_VARIABLES}"} for title, uid in panel.links]
    return out


def _layout(rows: tuple[Row, ...]) -> list[dict[str, Any]]:
    """Row headers and their panels, left to right, wrapping at 24 columns; ids and y in order."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in rows:
        header: dict[str, Any] = {
            "id": len(panels) + 1,
            "type": "row",
            "title": row.title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
            "panels": [],
        }
        if row.repeat:
            header["repeat"] = row.repeat
        panels.append(header)
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y = 0, y + PANEL_HEIGHT
            panels.append(_panel(panel, len(panels) + 1, x, y))
            x += panel.width
        y += PANEL_HEIGHT
    return panels


def _query_variable(name: str, label: str, query: str, multi: bool) -> dict[str, Any]:
    """A variable whose values Prometheus lists; All matches any value, a missing label included."""
    every: dict[str, Any] = {
        "selected": True,
        "text": ["All"] if multi else "All",
        "value": ["$__all"] if multi else "$__all",
    }
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": every,
    }


def _variables(dashboard: Dashboard) -> list[dict[str, Any]]:
    metric, _, labels = dashboard.anchor.partition("{")
    fixed = labels.rstrip("}")

    def values(scope: str, label: str) -> str:
        return f"label_values({metric}{{{', '.join(x for x in (fixed, scope) if x)}}}, {label})"

    namespace = 'namespace=~"$namespace"'
    job = f'{namespace}, job=~"$job"'
    variables = [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": {}},
        _query_variable("namespace", "Namespace", values("", "namespace"), multi=False),
        _query_variable("job", "Job", values(namespace, "job"), multi=True),
        _query_variable("instance", "Instance", values(job, "instance"), multi=True),
    ]
    if dashboard.grpc_service:
        instance = f'{job}, instance=~"$instance"'
        variables.append(_query_variable("method", "RPC", values(instance, "method"), multi=True))
    return variables


def render_dashboard(dashboard: Dashboard) -> dict[str, Any]:
    """The Grafana JSON model of ``dashboard``."""
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(TAGS),
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        # Every ragmesh dashboard in one menu, keeping the time range and the variables.
        "links": [
            {
                "title": "ragmesh",
                "type": "dashboards",
                "tags": list(TAGS),
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": _variables(dashboard)},
        "annotations": {"list": []},
        "panels": _layout(dashboard.rows),
    }


def render(dashboard: Dashboard) -> str:
    """The file text (stable: same specs, same bytes)."""
    return json.dumps(render_dashboard(dashboard), indent=2) + "\n"


def outputs() -> dict[Path, str]:
    return {OUTPUT / f"{d.uid}.json": render(d) for d in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a checked-in dashboard is stale")
    args = parser.parse_args(argv)
    stale = [path for path, text in outputs().items() if not path.exists() or path.read_text() != text]
    strays = sorted(set(OUTPUT.glob("*.json")) - set(outputs()))
    if args.check:
        for path in stale:
            print(f"{path} is stale: run scripts/render_dashboards.py", file=sys.stderr)
        for path in strays:
            print(f"{path} is no dashboard of scripts/render_dashboards.py", file=sys.stderr)
        return 1 if stale or strays else 0
    for path, text in outputs().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
