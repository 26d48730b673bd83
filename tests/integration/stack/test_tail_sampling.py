"""Production sampling, on the real collector: failed and slow traces kept whole, the rest at the ratio.

The jaeger part runs with the very config ``ragmesh up`` renders for
``RAGMESH_TRACE_SAMPLE_RATIO=0`` (no ordinary trace kept), a 1.5 s slow threshold and a
short decision wait. Spans go in over OTLP/gRPC through the OpenTelemetry SDK exporter
the services use, each trace as a root and a child as a request makes them; whether
each trace was kept is read back from the query API (``/api/traces/<id>``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from mesh.stack import StackConfig, Supervisor
from mesh.stack.binaries import jaeger_installed
from mesh.stack.jaeger_config import tail_sampling
from tests.support.stores import free_ports

pytestmark = pytest.mark.integration

DECISION_WAIT_S = 2.0
SLOW_MS = 1_500


@pytest.fixture(scope="module")
def collector(new_home: Callable[[], Path]) -> Iterator[StackConfig]:
    """The jaeger part alone, sampling as production does."""
    if not jaeger_installed(StackConfig().go_home):
        pytest.skip("jaeger is not built: scripts/install-go-tools.sh jaeger")
    otlp, query, query_grpc = free_ports(3)
    config = StackConfig(
        home=new_home(),
        parts=("jaeger",),
        jaeger_otlp_grpc_port=otlp,
        jaeger_query_port=query,
        jaeger_query_grpc_port=query_grpc,
        trace_sample_ratio=0.0,
        trace_keep_slower_than_ms=SLOW_MS,
        trace_decision_wait_s=DECISION_WAIT_S,
        stop_timeout_s=5.0,
    )
    assert tail_sampling(config) is not None
    supervisor = Supervisor(config)
    supervisor.up(["jaeger"], with_deps=False)
    try:
        yield config
    finally:
        supervisor.down(["jaeger"], purge=True)


@pytest.fixture(scope="module")
def tracer(collector: StackConfig) -> Iterator[Tracer]:
    exporter = OTLPSpanExporter(endpoint=f"{collector.host}:{collector.jaeger_otlp_grpc_port}", insecure=True)
    provider = TracerProvider(resource=Resource.create({"service.name": "svc_tail_test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("tail-sampling-test")
    provider.shutdown()


def _request(tracer: Tracer, *, seconds: float = 0.01, failed: bool = False) -> str:
    """One request's trace (a SERVER root and a CLIENT child), its timestamps laid out without sleeping."""
    start = time.time_ns()
    end = start + int(seconds * 1e9)
    root = tracer.start_span("/ragmesh.agent.v1.AgentService/StreamChat", kind=SpanKind.SERVER, start_time=start)
    trace_id = format(root.get_span_context().trace_id, "032x")
    child = tracer.start_span(
        "/ragmesh.retrieval.v1.RetrievalService/Search",
        context=trace.set_span_in_context(root),
        kind=SpanKind.CLIENT,
        start_time=start + 1_000,
    )
    if failed:
        child.set_attribute("rpc.grpc.status_code", 14)
        child.set_status(Status(StatusCode.ERROR, "UNAVAILABLE"))
    child.end(end_time=end - 1_000)
    root.end(end_time=end)
    return trace_id


def _spans(config: StackConfig, trace_id: str) -> list[dict[str, Any]]:
    """The spans the backend holds for ``trace_id`` (none: it was not kept, or not yet)."""
    url = f"http://{config.host}:{config.jaeger_query_port}/api/traces/{trace_id}"
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = json.load(reply)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise
    return [span for t in body.get("data") or [] for span in t["spans"]]


def _wait_for(config: StackConfig, trace_id: str, spans: int, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = _spans(config, trace_id)
        if len(found) >= spans or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_failed_and_slow_traces_are_kept_whole_and_an_ordinary_one_is_dropped(
    collector: StackConfig, tracer: Tracer
) -> None:
    ordinary = _request(tracer)
    failed = _request(tracer, failed=True)
    slow = _request(tracer, seconds=SLOW_MS / 1000 + 0.5)
    timeout = DECISION_WAIT_S + 30

    assert len(_wait_for(collector, failed, 2, timeout)) == 2, "a trace with an error span must be kept whole"
    assert len(_wait_for(collector, slow, 2, timeout)) == 2, "a trace over the slow threshold must be kept whole"
    # The ordinary trace reached the collector first, so it was decided before the other two.
    time.sleep(1.0)
    assert _spans(collector, ordinary) == [], "at ratio 0 an ordinary, fast, successful trace is dropped"


def test_a_span_arriving_after_the_decision_follows_it(collector: StackConfig, tracer: Tracer) -> None:
    """The root of a long answer often ends after its children's trace was decided: it must join it."""
    start = time.time_ns()
    root = tracer.start_span("/ragmesh.agent.v1.AgentService/StreamChat", kind=SpanKind.SERVER, start_time=start)
    trace_id = format(root.get_span_context().trace_id, "032x")
    child = tracer.start_span(
        "/ragmesh.inference.v1.InferenceService/Embed", context=trace.set_span_in_context(root), start_time=start
    )
    child.set_status(Status(StatusCode.ERROR, "INTERNAL"))
    child.end(end_time=start + 5_000_000)
    assert len(_wait_for(collector, trace_id, 1, DECISION_WAIT_S + 30)) == 1
    root.end(end_time=start + 20_000_000)
    assert len(_wait_for(collector, trace_id, 2, 15)) == 2, "the late root span was dropped after a keep decision"
