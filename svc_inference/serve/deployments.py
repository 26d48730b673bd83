"""The model role classes as Ray Serve deployments.

Each deployment class is its plain domain class plus what Serve adds:
``@serve.batch`` dynamic batching for the cross-encoder, the priority scheduler
for the embedder (interactive requests merged and run before batch slices),
async entry points, the fingerprint the service compares before redeploying,
and the process id that tests use to crash a replica for real. Serve calls ``check_health`` on its own
schedule and replaces a replica that fails it or dies.

Every request method takes the caller's trace context (``mesh.telemetry.carrier``) as its
last argument, so the replica's span joins the request's trace; a replica exports its
spans where the environment it inherited says (``RAGMESH_OTEL_*``, service name
``svc_inference.serve``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry.trace import Status, StatusCode
from ray import serve
from ray.serve.deployment import Application

from mesh import telemetry
from svc_inference.domain.embedder import Embedder
from svc_inference.domain.llm import LLM
from svc_inference.domain.model import (
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    GenerationChunk,
    RerankRequest,
    RerankResult,
)
from svc_inference.domain.model_config import EmbedderConfig, LLMConfig, ModelConfig, RerankerConfig
from svc_inference.domain.reranker import CrossEncoderReranker
from svc_inference.domain.scheduled_embedder import ScheduledEmbedder
from svc_inference.domain.scheduler import SchedulerStats
from svc_inference.domain.sources import SourceSettings

log = logging.getLogger(__name__)

#: The service name a replica's spans carry.
REPLICA_SERVICE = "svc_inference.serve"
TraceContext = dict[str, str] | None


def _replica_setup() -> None:
    serve_at_normal_priority()
    telemetry.configure(REPLICA_SERVICE)


def serve_at_normal_priority() -> None:
    """Runs this replica at niceness 0 rather than the 15 Ray gives its workers, when allowed to.

    Ray lowers workers' priority so its own daemons stay responsive; a model replica is the
    latency-critical process of the mesh, and at niceness 15 it lost a measured ~15% of its speed
    (prefill and decode) to ordinary processes on a loaded 2-core machine. Raising priority needs
    CAP_SYS_NICE; without it the replica keeps Ray's setting (set RAY_worker_niceness=0 on the
    head instead).
    """
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:
        log.warning("cannot raise this replica's priority; start the Ray head with RAY_worker_niceness=0")


class LLMDeployment(LLM):
    """An LLM replica; Serve streams ``generate`` (an async generator) to the caller."""

    def __init__(self, config: LLMConfig, sources: SourceSettings, fingerprint: str) -> None:
        _replica_setup()
        super().__init__(config, sources)
        self._fingerprint = fingerprint

    async def generate_traced(
        self, request: GenerateRequest, trace_context: TraceContext = None
    ) -> AsyncIterator[GenerationChunk]:
        """``generate`` in a span of the caller's trace (not made current: a generator may resume elsewhere)."""
        span = telemetry.start_remote_span(
            "serve LLM.generate", trace_context, {"ray.serve.deployment": self.config.name}
        )
        chunks = 0
        try:
            async for chunk in self.generate(request):
                chunks += 1
                summary = chunk.summary
                if summary is not None:
                    span.set_attribute("gen_ai.usage.output_tokens", summary.completion_tokens)
                    span.set_attribute("gen_ai.usage.input_tokens", summary.prompt_tokens)
                yield chunk
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.set_attribute("ragmesh.chunks", chunks)
            span.end()

    def fingerprint(self) -> str:
        """The config-and-code fingerprint this replica was deployed with."""
        return self._fingerprint

    def pid(self) -> int:
        """The replica's process id."""
        return os.getpid()


class EmbedderDeployment(Embedder):
    """An embedder replica: requests are checked one by one, then run by the priority scheduler.

    Interactive requests (queries, cosine reranking) waiting together are merged into one model call; batch
    (document) requests run in slices only while no interactive request waits (domain.scheduler).
    """

    def __init__(self, config: EmbedderConfig, sources: SourceSettings, fingerprint: str) -> None:
        _replica_setup()
        super().__init__(config, sources)
        self._fingerprint = fingerprint
        # The scheduler owns the model thread(s) and picks which call runs next.
        self._scheduled = ScheduledEmbedder(self, merge=config.serving.max_batch_size)

    def fingerprint(self) -> str:
        """The config-and-code fingerprint this replica was deployed with."""
        return self._fingerprint

    def pid(self) -> int:
        """The replica's process id."""
        return os.getpid()

    async def embed_request(self, request: EmbedRequest, trace_context: TraceContext = None) -> EmbedResult:
        """Checks one request (it fails alone), then embeds it in its priority's turn."""
        attributes = {"ray.serve.deployment": self.config.name, "ragmesh.texts": len(request.texts)}
        with telemetry.remote_span("serve Embedder.embed", trace_context, attributes):
            return await self._scheduled.embed(request)

    async def rerank_request(self, request: RerankRequest, trace_context: TraceContext = None) -> RerankResult:
        """Ranks one request by cosine similarity, ahead of batch work."""
        with telemetry.remote_span("serve Embedder.rerank", trace_context, {"ray.serve.deployment": self.config.name}):
            return await self._scheduled.rerank(request)

    async def queue_stats(self) -> SchedulerStats:
        """This replica's scheduler lines: waiting requests per class, refusals, model calls (read on the replica's
        event loop, where the scheduler lives)."""
        return self._scheduled.stats()


class RerankerDeployment(CrossEncoderReranker):
    """A cross-encoder replica: requests are scored in dynamic batches."""

    def __init__(self, config: RerankerConfig, sources: SourceSettings, fingerprint: str) -> None:
        _replica_setup()
        super().__init__(config, sources)
        self._fingerprint = fingerprint
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix=f"rerank-{config.name}")
        batched: Any = self._rerank_batched
        batched.set_max_batch_size(config.serving.max_batch_size)
        batched.set_batch_wait_timeout_s(config.serving.batch_wait_timeout_s)

    def fingerprint(self) -> str:
        """The config-and-code fingerprint this replica was deployed with."""
        return self._fingerprint

    def pid(self) -> int:
        """The replica's process id."""
        return os.getpid()

    async def rerank_request(self, request: RerankRequest, trace_context: TraceContext = None) -> RerankResult:
        """Scores one request, batched with others."""
        with telemetry.remote_span("serve Reranker.rerank", trace_context, {"ray.serve.deployment": self.config.name}):
            result: RerankResult = await self._rerank_batched(request)
        return result

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def _rerank_batched(self, items: list[RerankRequest]) -> list[RerankResult]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, self.rerank_batch, items)


_CLASSES: dict[type[Any], type[Any]] = {
    LLMConfig: LLMDeployment,
    EmbedderConfig: EmbedderDeployment,
    RerankerConfig: RerankerDeployment,
}


def build_application(
    config: ModelConfig, sources: SourceSettings, fingerprint: str, *, deployment: str = ""
) -> Application:
    """The Serve application of one model: a single deployment (named after the model unless ``deployment`` names
    it), options from its config's ``serving``."""
    serving = config.serving
    actor_options: dict[str, Any] = {"num_cpus": serving.num_cpus, "num_gpus": serving.num_gpus}
    if serving.memory_mb:
        actor_options["memory"] = serving.memory_mb * 1024 * 1024
    options: dict[str, Any] = {
        "name": deployment or config.name,
        "max_ongoing_requests": serving.max_ongoing_requests,
        "max_queued_requests": serving.max_queued_requests,
        "autoscaling_config": {
            "min_replicas": serving.min_replicas,
            "initial_replicas": serving.min_replicas,
            "max_replicas": serving.max_replicas,
            "target_ongoing_requests": serving.target_ongoing_requests,
            "upscale_delay_s": serving.upscale_delay_s,
            "downscale_delay_s": serving.downscale_delay_s,
        },
        "ray_actor_options": actor_options,
        "health_check_period_s": serving.health_check_period_s,
        "health_check_timeout_s": serving.health_check_timeout_s,
        "graceful_shutdown_timeout_s": serving.graceful_shutdown_timeout_s,
        # Per-request access logs cost more than a small model's call on a 2-core machine.
        "logging_config": {"enable_access_log": False, "log_level": "WARNING"},
    }
    if serving.placement_group_bundles:
        options["placement_group_bundles"] = [dict(b) for b in serving.placement_group_bundles]
        options["placement_group_strategy"] = serving.placement_group_strategy
    target: Any = serve.deployment(_CLASSES[type(config)], **options)
    application: Application = target.bind(config, sources, fingerprint)
    return application
