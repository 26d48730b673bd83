"""The agent's Prometheus metrics, observed from the events it streams."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from svc_agent.domain.events import Envelope, FinalEvent, StepEvent
from svc_agent.domain.model import StepStatus

_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

ANSWERS = Counter(
    "ragmesh_agent_answers_total",
    "Answers streamed, by which cache answered and whether the documents held the answer.",
    ("cache", "from_documents"),
)
TOKENS = Counter("ragmesh_agent_tokens_total", "Model tokens the answers used.", ("kind",))
STEP_SECONDS = Histogram(
    "ragmesh_agent_step_duration_seconds", "Time of each step of the answer loop.", ("step", "status"), buckets=_SECONDS
)
TTFT_SECONDS = Histogram(
    "ragmesh_agent_time_to_first_token_seconds", "From the request to the first answer token.", buckets=_SECONDS
)


def observe(envelope: Envelope) -> None:
    """Counts what one streamed event says."""
    event = envelope.event
    if isinstance(event, StepEvent) and event.status is not StepStatus.STARTED:
        STEP_SECONDS.labels(event.step.value, event.status.value).observe(event.duration_ms / 1000)
    elif isinstance(event, FinalEvent):
        ANSWERS.labels(event.cache_hit.value, str(event.answered_from_documents).lower()).inc()
        TOKENS.labels("prompt").inc(event.usage.prompt_tokens)
        TOKENS.labels("completion").inc(event.usage.completion_tokens)
        if event.latency.time_to_first_token_ms:
            TTFT_SECONDS.observe(event.latency.time_to_first_token_ms / 1000)
