"""The edge's global rate limit pieces: filter, cluster, route descriptors, the checked-in limits, counters."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from mesh.stack.config import StackConfig
from mesh.stack.envoy_config import ROUTED_SERVICES, TENANT_HEADER, envoy_config
from mesh.stack.envoy_ratelimit import (
    DEFAULT_FAMILY,
    FAMILIES,
    EdgeLimitCounters,
    family_of,
    global_limit_report,
    limits_problem,
    parse_edge_limit_counters,
    rate_limited_reply_mapper,
    ratelimit_cluster,
    ratelimit_filter,
    route_rate_limits,
)

AGENT = "ragmesh.agent.v1.AgentService"
RETRIEVAL = "ragmesh.retrieval.v1.RetrievalService"
INGEST = "ragmesh.ingest.v1.IngestService"

_RPCS = {
    AGENT: ("StreamChat", "GetSession", "ListSessions", "DeleteSession", "SubmitFeedback"),
    INGEST: ("CreateIngestJob", "StreamIngestJob", "GetIngestJob", "ListDocuments", "DeleteDocument"),
    RETRIEVAL: ("Search", "GetChunk", "ExploreGraph"),
    "ragmesh.sandbox.v1.SandboxService": ("Execute", "StreamExecute"),
}


def _descriptors(entries: list[dict[str, Any]], path: str, headers: dict[str, str]) -> list[list[tuple[str, str]]]:
    """What Envoy would send for a request: the entries all of whose actions produce something.

    A small reading of the actions this module uses (request_headers, generic_key,
    header_value_match on :path), enough to check that each call gets exactly one descriptor.
    """
    request = {**headers, ":path": path}
    sent = []
    for entry in entries:
        descriptor: list[tuple[str, str]] = []
        for action in entry["actions"]:
            if "request_headers" in action:
                spec = action["request_headers"]
                if spec["header_name"] not in request:
                    break
                descriptor.append((spec["descriptor_key"], request[spec["header_name"]]))
            elif "generic_key" in action:
                spec = action["generic_key"]
                descriptor.append((spec["descriptor_key"], spec["descriptor_value"]))
            elif "header_value_match" in action:
                spec = action["header_value_match"]
                ((matcher_header),) = spec["headers"]
                assert matcher_header["name"] == ":path"
                matcher = matcher_header["string_match"]
                if "exact" in matcher:
                    matched = request[":path"] == matcher["exact"]
                else:
                    matched = re.fullmatch(matcher["safe_regex"]["regex"], request[":path"]) is not None
                if matched != spec["expect_match"]:
                    break
                descriptor.append((spec["descriptor_key"], spec["descriptor_value"]))
            else:
                raise AssertionError(f"unexpected action {action}")
        else:
            sent.append(descriptor)
    return sent


@pytest.mark.parametrize("service", sorted(_RPCS))
def test_every_routed_rpc_sends_one_tenant_and_family_descriptor(service: str) -> None:
    entries = route_rate_limits(service, TENANT_HEADER)
    for method in _RPCS[service]:
        sent = _descriptors(entries, f"/{service}/{method}", {TENANT_HEADER: "acme"})
        assert sent == [[("tenant", "acme"), ("family", family_of(service, method))]], method


def test_families() -> None:
    assert family_of(AGENT, "StreamChat") == "chat"
    assert family_of(AGENT, "GetSession") == DEFAULT_FAMILY
    assert family_of(RETRIEVAL, "Search") == "search"
    assert family_of(RETRIEVAL, "GetChunk") == DEFAULT_FAMILY
    assert {family_of(INGEST, method) for method in _RPCS[INGEST]} == {"ingest"}


def test_a_call_without_a_tenant_sends_no_descriptor() -> None:
    assert _descriptors(route_rate_limits(AGENT, TENANT_HEADER), f"/{AGENT}/StreamChat", {}) == []


def test_every_public_route_is_limited_and_health_is_not() -> None:
    manager = envoy_config(StackConfig())["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    limited = {route["name"] for route in routes if "rate_limits" in route["route"]}
    # StreamChat has its own route (the answers' capped cluster), limited like its service.
    assert limited == {*ROUTED_SERVICES, "answers"}
    assert not [route for route in routes if route["name"].startswith("grpc.") and "rate_limits" in route["route"]]


def test_filter_fails_open_and_answers_resource_exhausted() -> None:
    typed = ratelimit_filter(StackConfig(edge_global_rate_limit_timeout_s=0.5))["typed_config"]
    assert typed["domain"] == "ragmesh"
    assert typed["failure_mode_deny"] is False
    assert typed["rate_limited_as_resource_exhausted"] is True
    assert typed["enable_x_ratelimit_headers"] == "DRAFT_VERSION_03"
    assert typed["timeout"] == "0.5s"
    assert typed["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"] == "ratelimit"


def test_cluster_speaks_http2_to_the_service() -> None:
    cluster = ratelimit_cluster(StackConfig(ratelimit_grpc_port=41071))
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 41071}


def test_reply_mapper_is_grpc_status_8_with_the_tenant_and_retry_hint() -> None:
    mapper = rate_limited_reply_mapper(TENANT_HEADER)
    filters = mapper["filter"]["and_filter"]["filters"]
    assert {"response_flag_filter": {"flags": ["RL"]}} in filters
    headers = {h["header"]["key"]: h["header"]["value"] for h in mapper["headers_to_add"]}
    assert headers["grpc-status"] == "8"
    assert "%REQ(x-ragmesh-tenant)%" in headers["grpc-message"]
    assert "%RESP(x-ratelimit-reset)%" in headers["grpc-message"]
    assert mapper["status_code"] == 200


def _per_second(limit: dict[str, Any]) -> float:
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[limit["unit"]]
    return float(limit["requests_per_unit"]) / seconds


def _tenant_limits(doc: dict[str, Any], tenant: str | None) -> dict[str, float]:
    (entry,) = [d for d in doc["descriptors"] if d["key"] == "tenant" and d.get("value") == tenant]
    return {d["value"]: _per_second(d["rate_limit"]) for d in entry["descriptors"] if d["key"] == "family"}


def test_checked_in_limits() -> None:
    path = StackConfig().ratelimit_config_file
    text = path.read_text()
    assert limits_problem(text) == ""
    doc = yaml.safe_load(text)
    anyone = _tenant_limits(doc, None)
    bench = _tenant_limits(doc, "bench")
    assert set(anyone) == set(bench) == set(FAMILIES)
    # Chat and ingest are dearer than search, so tighter.
    assert anyone["chat"] < anyone["search"] and anyone["ingest"] < anyone["search"]
    # The benchmarks' tenant has more room in every family.
    assert all(bench[family] > anyone[family] for family in FAMILIES)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("domain: other\ndescriptors: []\n", "domain must be 'ragmesh'"),
        ("[1, 2]", "expected a mapping"),
        ("domain: ragmesh\ndescriptors: {}\n", "descriptors must be a list"),
        (
            "domain: ragmesh\ndescriptors:\n  - key: tenant\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n",
            "rate_limit.unit must be one of",
        ),
        (
            "domain: ragmesh\ndescriptors:\n  - key: tenant\n    descriptors:\n"
            "      - key: family\n        value: chat\n        rate_limit: {unit: second, requests_per_unit: -1}\n",
            "descriptors[0] (tenant=*).descriptors[0] (family=chat): rate_limit.requests_per_unit",
        ),
        ("domain: ragmesh\ndescriptors: [\n", "not valid YAML"),
    ],
)
def test_limits_problems_are_named(text: str, problem: str) -> None:
    assert problem in limits_problem(text)


_STATS = """\
cluster.ratelimit.upstream_rq_total: 9
cluster.svc_agent.ratelimit.error: 2
cluster.svc_agent.ratelimit.failure_mode_allowed: 2
cluster.svc_agent.ratelimit.ok: 10
cluster.svc_agent.ratelimit.over_limit: 3
cluster.svc_retrieval.ratelimit.failure_mode_allowed: 5
cluster.svc_retrieval.ratelimit.error: 5
cluster.svc_retrieval.ratelimit.ok: 1
cluster.svc_retrieval.upstream_rq_total: 40
"""


def test_counters_are_summed_over_the_upstreams() -> None:
    counters = parse_edge_limit_counters(_STATS)
    assert counters == EdgeLimitCounters(ok=11, over_limit=3, error=7, failure_mode_allowed=7)


def test_report_says_when_the_edge_fails_open() -> None:
    counters = EdgeLimitCounters(ok=11, over_limit=3, error=7, failure_mode_allowed=7)
    stopped = global_limit_report(counters, "stopped")
    assert stopped.state == "failing_open"
    assert stopped.line().startswith("global rate limit: failing open: the rate limit service is stopped")
    assert "7 calls let through without a per-tenant check" in stopped.line()
    running = global_limit_report(counters, "running")
    assert running.state == "enforcing"
    assert "3 calls refused" in running.detail and "7 let through unchecked" in running.detail
    assert running.as_json()["counters"] == {"ok": 11, "over_limit": 3, "error": 7, "failure_mode_allowed": 7}
    unknown = global_limit_report(None, "running")
    assert unknown.state == "unknown" and unknown.as_json()["counters"] is None
