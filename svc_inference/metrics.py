"""Prometheus metrics of svc_inference, beside the RPC metrics of mesh.metrics.

They are recorded in the service process from what the backends report back
(usage, timings, batch sizes), so one /metrics endpoint covers both hostings,
whether the models run in Ray Serve replicas or in this process. The runtime
reports through its observer port (svc_inference.domain.observer);
``PrometheusObserver`` turns those reports into these series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from svc_inference.domain.model import GenerationSummary, Priority

TOKENS_GENERATED = Counter(
    "ragmesh_inference_tokens_generated_total",
    "Completion tokens generated, by model.",
    ("model",),
)
PROMPT_TOKENS = Counter(
    "ragmesh_inference_prompt_tokens_total",
    "Prompt tokens processed, by model.",
    ("model",),
)
TIME_TO_FIRST_TOKEN = Histogram(
    "ragmesh_inference_time_to_first_token_seconds",
    "Seconds from a generation request reaching the backend to its first token, by model.",
    ("model",),
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DECODE_TOKENS_PER_SECOND = Histogram(
    "ragmesh_inference_decode_tokens_per_second",
    "Completion tokens per second after the first token, per generation, by model.",
    ("model",),
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
INTER_TOKEN_LATENCY = Histogram(
    "ragmesh_inference_inter_token_latency_seconds",
    "Mean seconds between two completion tokens after the first, per generation, by model.",
    ("model",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
GENERATIONS = Counter(
    "ragmesh_inference_generations_total",
    "Generations by model and how they ended: stop, length, cancelled or error.",
    ("model", "outcome"),
)
BATCH_SIZE = Histogram(
    "ragmesh_inference_batch_size",
    "Items (texts or query-document pairs) in the backend batch a request was computed in, by model.",
    ("model",),
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
)
QUEUE_DEPTH = Gauge(
    "ragmesh_inference_queue_depth",
    "Requests from this service waiting for or running on a model, by model.",
    ("model",),
)
REJECTED = Counter(
    "ragmesh_inference_rejected_total",
    "Requests refused before reaching a model, by model and reason (for example QUEUE_FULL).",
    ("model", "reason"),
)
PENDING = Gauge(
    "ragmesh_inference_pending_requests",
    "Requests from this service waiting for or running on a model, by model and priority (interactive or batch).",
    ("model", "priority"),
)


class PrometheusObserver:
    """The runtime's events (svc_inference.domain.observer) as this module's metrics."""

    def request_started(self, model: str, priority: Priority) -> None:
        QUEUE_DEPTH.labels(model).inc()
        PENDING.labels(model, priority.value).inc()

    def request_ended(self, model: str, priority: Priority) -> None:
        QUEUE_DEPTH.labels(model).dec()
        PENDING.labels(model, priority.value).dec()

    def rejected(self, model: str, reason: str) -> None:
        REJECTED.labels(model, reason).inc()

    def generation_ended(self, model: str, outcome: str) -> None:
        GENERATIONS.labels(model, outcome).inc()

    def batch(self, model: str, size: int) -> None:
        BATCH_SIZE.labels(model).observe(size)

    def generation_summary(self, summary: GenerationSummary) -> None:
        model = summary.model
        TOKENS_GENERATED.labels(model).inc(summary.completion_tokens)
        PROMPT_TOKENS.labels(model).inc(summary.prompt_tokens)
        if summary.completion_tokens:
            TIME_TO_FIRST_TOKEN.labels(model).observe(summary.time_to_first_token_ms / 1000.0)
        if summary.tokens_per_second > 0:
            DECODE_TOKENS_PER_SECOND.labels(model).observe(summary.tokens_per_second)
            INTER_TOKEN_LATENCY.labels(model).observe(1.0 / summary.tokens_per_second)
