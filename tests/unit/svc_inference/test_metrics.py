"""PrometheusObserver: the runtime's reports as svc_inference's metrics."""

from __future__ import annotations

import pytest

from svc_inference import metrics
from svc_inference.domain.model import FinishReason, GenerationSummary, Priority


def test_requests_move_the_queue_gauges_and_refusals_are_counted() -> None:
    observer = metrics.PrometheusObserver()
    depth = metrics.QUEUE_DEPTH.labels("m-queue")
    pending = metrics.PENDING.labels("m-queue", Priority.BATCH.value)
    observer.request_started("m-queue", Priority.BATCH)
    assert (depth._value.get(), pending._value.get()) == (1, 1)
    observer.request_ended("m-queue", Priority.BATCH)
    assert (depth._value.get(), pending._value.get()) == (0, 0)
    rejected = metrics.REJECTED.labels("m-queue", "QUEUE_FULL")
    before = rejected._value.get()
    observer.rejected("m-queue", "QUEUE_FULL")
    assert rejected._value.get() == before + 1


def test_a_summary_feeds_tokens_and_the_inter_token_latency_is_the_gap_after_the_first() -> None:
    observer = metrics.PrometheusObserver()
    latency = metrics.INTER_TOKEN_LATENCY.labels("itl")
    tokens = metrics.TOKENS_GENERATED.labels("itl")
    total, generated = latency._sum.get(), tokens._value.get()
    observer.generation_summary(GenerationSummary("itl", 3, 11, FinishReason.STOP, 12.0, 50.0, 220.0))
    assert latency._sum.get() == pytest.approx(total + 0.02)
    assert tokens._value.get() == generated + 11
    # One token has no gap after it: nothing is observed.
    observer.generation_summary(GenerationSummary("itl", 3, 1, FinishReason.STOP, 12.0, 0.0, 12.0))
    assert latency._sum.get() == pytest.approx(total + 0.02)
