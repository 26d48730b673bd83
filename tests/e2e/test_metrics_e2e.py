"""Metrics from every part of the running stack, scraped where ``ragmesh status`` says they are.

One cheap RPC per public service goes through the edge with a token; afterwards each
service's /metrics must show the RED series (request counter by method and code,
duration histogram) of the RPC it served, the internal hop included (svc_retrieval's
Search embeds the query on svc_inference), and Envoy and the rate limit service must
have counted the calls. The dashboards and alert rules of
kustomize/components/observability may only query metrics this running stack exports.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml

from mesh.settings import MeshSettings
from mesh.stack import StackConfig
from mesh.stack.config import SERVICE_NAMES
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from ragmesh.sandbox.v1 import sandbox_service_pb2 as spb
from ragmesh.sandbox.v1 import sandbox_service_pb2_grpc as spb_grpc
from tests.support.auth import stack_bearer
from tests.support.tenants import new_tenant

pytestmark = pytest.mark.e2e

OBSERVABILITY = Path(__file__).resolve().parents[2] / "kustomize" / "components" / "observability"

#: (part, gRPC service, method) of every RPC the calls below cause, the internal hop included.
RPCS = (
    ("svc_retrieval", "ragmesh.retrieval.v1.RetrievalService", "Search"),
    ("svc_inference", "ragmesh.inference.v1.InferenceService", "Embed"),
    ("svc_ingest", "ragmesh.ingest.v1.IngestService", "ListDocuments"),
    ("svc_sandbox", "ragmesh.sandbox.v1.SandboxService", "Execute"),
    ("svc_agent", "ragmesh.agent.v1.AgentService", "ListSessions"),
)

#: The series a declared metric family exposes once it has a labelled child, by type.
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str) -> str:
    reply = httpx.get(url, timeout=10)
    assert reply.status_code == 200, f"{url}: HTTP {reply.status_code}"
    return reply.text


def _samples(text: str) -> Samples:
    """The series of a Prometheus text exposition, under the names it sends (no client renames them)."""
    samples: Samples = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        name, labels, value = match.groups()
        samples[(name, frozenset(_LABEL.findall(labels or "")))] = float(value)
    return samples


def _exported_names(text: str) -> set[str]:
    """Every series name the exposition has, or declares (``# TYPE``) before a labelled series has a value."""
    names = {name for name, _ in _samples(text)}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            # prometheus_client declares a counter by its name without _total.
            family = parts[2].removesuffix("_total") if parts[3] == "counter" else parts[2]
            names |= {family + suffix for suffix in _SUFFIXES.get(parts[3], ("",))}
    return names


def _value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the series ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def _metrics_urls(config: StackConfig) -> dict[str, str]:
    """Where each part serves its metrics, from the stack's configuration, as ``ragmesh status`` lists them."""
    from mesh.stack.layout import StackLayout
    from mesh.stack.parts import build_parts

    parts = build_parts(config, StackLayout(config.home))
    return {name: part.metrics_url() for name, part in parts.items() if part.metrics_url()}


@pytest.fixture(scope="module")
def config() -> StackConfig:
    return StackConfig.from_env()


@pytest.fixture(scope="module")
def scrape(config: StackConfig) -> Callable[[], dict[str, str]]:
    urls = _metrics_urls(config)
    assert set(urls) == {*SERVICE_NAMES, "envoy", "ratelimit"}

    def everything() -> dict[str, str]:
        return {part: _get(url) for part, url in urls.items()}

    return everything


@pytest.fixture(scope="module")
def calls(
    settings: MeshSettings, scrape: Callable[[], dict[str, str]]
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The scrapes (by part) before and after one call of each public service through the edge."""
    before = scrape()
    tenant = new_tenant("e2e-metrics")
    md = stack_bearer(tenant)
    with grpc.insecure_channel(settings.edge_addr) as channel:
        # A query never asked before, so no cache stands in for the embedding hop.
        rpb_grpc.RetrievalServiceStub(channel).Search(
            rpb.SearchRequest(query=f"metrics probe {uuid.uuid4().hex}", top_k=3), metadata=md, timeout=60
        )
        gpb_grpc.IngestServiceStub(channel).ListDocuments(
            gpb.ListDocumentsRequest(page_size=10), metadata=md, timeout=30
        )
        ran = spb_grpc.SandboxServiceStub(channel).Execute(
            spb.ExecuteRequest(code="print(6 * 7)"), metadata=md, timeout=60
        )
        assert ran.result.stdout.strip() == "42", ran.result
        apb_grpc.AgentServiceStub(channel).ListSessions(apb.ListSessionsRequest(page_size=10), metadata=md, timeout=30)
    yield before, scrape()


@pytest.mark.parametrize(("part", "service", "method"), RPCS)
def test_red_series_of_each_rpc_just_called(
    calls: tuple[dict[str, str], dict[str, str]], part: str, service: str, method: str
) -> None:
    before, after = (_samples(scraped[part]) for scraped in calls)
    labels = {"service": service, "method": method, "code": "OK"}
    # Rate and errors: the request counter, by method and status code.
    name = "ragmesh_rpc_server_requests_total"
    assert _value(after, name, **labels) >= _value(before, name, **labels) + 1, f"{part}: {name} {labels} not counted"
    # Duration: the histogram's count moved and its +Inf bucket holds every call.
    count = _value(after, "ragmesh_rpc_server_duration_seconds_count", **labels)
    assert count >= _value(before, "ragmesh_rpc_server_duration_seconds_count", **labels) + 1
    assert _value(after, "ragmesh_rpc_server_duration_seconds_bucket", le="+Inf", **labels) == count
    assert _value(after, "ragmesh_rpc_server_in_flight", service=service, method=method) == 0


def test_errors_are_counted_by_status_code(settings: MeshSettings, scrape: Callable[[], dict[str, str]]) -> None:
    labels = {"service": "ragmesh.sandbox.v1.SandboxService", "method": "Execute", "code": "INVALID_ARGUMENT"}
    before = _value(_samples(scrape()["svc_sandbox"]), "ragmesh_rpc_server_requests_total", **labels)
    with grpc.insecure_channel(settings.edge_addr) as channel, pytest.raises(grpc.RpcError) as info:
        spb_grpc.SandboxServiceStub(channel).Execute(
            spb.ExecuteRequest(code=""), metadata=stack_bearer("e2e-metrics"), timeout=30
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = _value(_samples(scrape()["svc_sandbox"]), "ragmesh_rpc_server_requests_total", **labels)
    assert after == before + 1


def test_envoy_counts_the_routed_calls_and_its_rate_limit_decisions(
    calls: tuple[dict[str, str], dict[str, str]],
) -> None:
    before, after = (_samples(scraped["envoy"]) for scraped in calls)
    for part in ("svc_retrieval", "svc_ingest", "svc_sandbox", "svc_agent"):
        cluster = {"envoy_cluster_name": part}
        assert _value(after, "envoy_cluster_upstream_rq_total", **cluster) > _value(
            before, "envoy_cluster_upstream_rq_total", **cluster
        ), part
        # Each routed call asked the rate limit service, which let it through.
        assert _value(after, "envoy_cluster_ratelimit_ok", **cluster) > _value(
            before, "envoy_cluster_ratelimit_ok", **cluster
        ), part


def test_the_rate_limit_service_exports_its_decisions(
    calls: tuple[dict[str, str], dict[str, str]], scrape: Callable[[], dict[str, str]]
) -> None:
    # It flushes its counters to /metrics every 10 s.
    deadline = time.monotonic() + 40
    hits = 0.0
    while time.monotonic() < deadline:
        hits = _value(_samples(scrape()["ratelimit"]), "ratelimit_service_rate_limit_total_hits")
        if hits > 0:
            break
        time.sleep(2)
    assert hits > 0, "the rate limit service's /metrics never showed a decision"


def _queried_metrics() -> set[str]:
    """Every metric a dashboard panel or alert rule in kustomize/components/observability queries."""
    expressions: list[str] = []
    for path in sorted(OBSERVABILITY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "PrometheusRule":
                expressions += [r["expr"] for g in doc["spec"]["groups"] for r in g["rules"]]
    dashboards = sorted(OBSERVABILITY.glob("*.json"))
    assert dashboards, f"no dashboard JSON in {OBSERVABILITY}"
    for path in dashboards:
        expressions += _panel_expressions(json.loads(path.read_text()))
    assert expressions
    return {m for e in expressions for m in _metric_names(e)}


#: Label matchers, and the label lists of grouping and vector matching: label names, not metrics.
_MATCHERS = re.compile(r"\{[^}]*\}")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def _metric_names(expr: str) -> set[str]:
    """The exporters' metrics an expression selects (``envoy_cluster_name`` in ``by (...)`` is a label, not one)."""
    bare = _LABEL_LISTS.sub("", _MATCHERS.sub("", expr))
    # Prometheus's own `up` is not an exporter's metric; every other selector is.
    return set(re.findall(r"\b(?:ragmesh|envoy|ratelimit)_[a-zA-Z0-9_:]+", bare))


def _panel_expressions(node: Any) -> list[str]:
    """The ``expr`` of every panel target, rows and nested panels included."""
    if isinstance(node, list):
        return [e for item in node for e in _panel_expressions(item)]
    if not isinstance(node, dict):
        return []
    found = [t["expr"] for t in node.get("targets", []) if isinstance(t, dict) and "expr" in t]
    return found + _panel_expressions(node.get("panels", []))


@pytest.fixture(scope="module")
def over_limit(settings: MeshSettings) -> None:
    """A fresh tenant goes over its ``default`` limit (20 calls a second) once, as a dashboard shows it.

    Envoy and the rate limit service make their over-limit series on the first refusal, like every
    series they count on first use.
    """
    md = stack_bearer(f"e2e-metrics-burst-{uuid.uuid4().hex[:8]}")

    def one(stub: apb_grpc.AgentServiceStub) -> grpc.StatusCode:
        try:
            stub.ListSessions(apb.ListSessionsRequest(page_size=1), metadata=md, timeout=30)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()  # type: ignore[attr-defined,no-any-return]

    with grpc.insecure_channel(settings.edge_addr) as channel:
        stub = apb_grpc.AgentServiceStub(channel)
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            for _ in range(5):
                codes = list(pool.map(lambda _: one(stub), range(40)))
                assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
                if grpc.StatusCode.RESOURCE_EXHAUSTED in codes:
                    return
    pytest.fail("five bursts of 40 calls never went over the tenant's limit of 20 a second")


def test_dashboards_and_rules_query_only_what_the_running_stack_exports(
    calls: tuple[dict[str, str], dict[str, str]], over_limit: None, scrape: Callable[[], dict[str, str]]
) -> None:
    # After traffic through the edge, one tenant over its limit included: the parts make many series
    # on first use. The rate limit service flushes its counters to /metrics every 10 s.
    used = _queried_metrics()
    assert len(used) >= 8, used
    deadline = time.monotonic() + 40
    while True:
        exported = {name for text in scrape().values() for name in _exported_names(text)}
        missing = sorted(used - exported)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not missing, f"queried by a dashboard or rule but exported by no part of the running stack: {missing}"


def test_label_names_in_queries_are_not_taken_for_metrics() -> None:
    expr = (
        'sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx{envoy_response_code_class="5"}[5m]))'
        " / on (envoy_cluster_name) group_left sum by (envoy_cluster_name) (rate(ragmesh_x_total[5m]))"
    )
    assert _metric_names(expr) == {"envoy_cluster_upstream_rq_xx", "ragmesh_x_total"}
