from __future__ import annotations

from typing import Any

import yaml

from mesh.stack.config import SERVICE_NAMES, StackConfig
from mesh.stack.envoy_config import (
    CORS_ALLOW_HEADERS,
    ROUTED_SERVICES,
    TRACING_CLUSTER,
    UPSTREAM_HEADER,
    envoy_config,
    render_envoy_config,
)


def _manager(doc: dict[str, Any]) -> dict[str, Any]:
    (listener,) = doc["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (hcm,) = chain["filters"]
    typed: dict[str, Any] = hcm["typed_config"]
    return typed


def _routes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    (vhost,) = _manager(doc)["route_config"]["virtual_hosts"]
    routes: list[dict[str, Any]] = vhost["routes"]
    return routes


def test_rendering_is_stable_yaml_with_a_generated_header() -> None:
    text = render_envoy_config(StackConfig())
    assert text == render_envoy_config(StackConfig())
    assert text.startswith("# Envoy edge")
    assert "GENERATED" in text
    assert yaml.safe_load(text) == envoy_config(StackConfig())


def test_listener_and_admin_follow_the_config() -> None:
    doc = envoy_config(StackConfig(host="127.0.0.2", envoy_listener_port=18080, envoy_admin_port=19901))
    (listener,) = doc["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.2", "port_value": 18080}
    assert doc["admin"]["address"]["socket_address"] == {"address": "127.0.0.2", "port_value": 19901}


def test_public_services_are_routed_by_prefix_to_their_cluster() -> None:
    all_routes = _routes(envoy_config(StackConfig()))
    routes = {r["match"]["prefix"]: r for r in all_routes if "headers" not in r["match"] and "prefix" in r["match"]}
    assert routes.keys() == {f"/{service}/" for service in ROUTED_SERVICES}
    assert routes["/ragmesh.retrieval.v1.RetrievalService/"]["route"]["cluster"] == "svc_retrieval"
    assert routes["/ragmesh.ingest.v1.IngestService/"]["route"]["cluster"] == "svc_ingest"
    assert routes["/ragmesh.sandbox.v1.SandboxService/"]["route"]["cluster"] == "svc_sandbox"
    assert routes["/ragmesh.agent.v1.AgentService/"]["route"]["cluster"] == "svc_agent"


def test_internal_services_are_not_routed() -> None:
    text = render_envoy_config(StackConfig())
    for internal in ("ragmesh.retrieval.v1.IndexService", "ragmesh.inference.v1.InferenceService"):
        assert internal not in text
        for route in _routes(envoy_config(StackConfig())):
            assert not f"/{internal}/".startswith(route["match"].get("prefix", route["match"].get("path")))


def test_health_and_reflection_are_routed_by_upstream_header() -> None:
    header_routes = [
        r
        for r in _routes(envoy_config(StackConfig()))
        if "headers" in r["match"] and r["match"]["headers"][0]["name"] != ":method"
    ]
    seen = set()
    for route in header_routes:
        (header,) = route["match"]["headers"]
        assert header["name"] == UPSTREAM_HEADER
        assert header["string_match"]["exact"] == route["route"]["cluster"]
        seen.add((route["match"]["prefix"], route["route"]["cluster"]))
    for prefix in (
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
    ):
        for service in SERVICE_NAMES:
            assert (prefix, service) in seen


def test_cors_preflight_of_header_routed_services_has_a_route() -> None:
    preflight = [
        r for r in _routes(envoy_config(StackConfig())) if r["match"].get("headers", [{}])[0].get("name") == ":method"
    ]
    assert {r["match"]["prefix"] for r in preflight} == {
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
    }


def test_header_routes_come_before_prefix_routes() -> None:
    kinds = ["headers" in r["match"] for r in _routes(envoy_config(StackConfig()))]
    assert kinds == sorted(kinds, reverse=True)


def test_routes_leave_the_deadline_to_client_and_service_and_retry_only_unavailable() -> None:
    for route in _routes(envoy_config(StackConfig(edge_retries=3))):
        action = route["route"]
        assert action["timeout"] == "0s"
        # Envoy timing a stream out on grpc-timeout resets it mid-response: the client saw INTERNAL.
        assert "max_stream_duration" not in action
        assert action["retry_policy"] == {"retry_on": "unavailable", "num_retries": 3}


def test_a_stream_duration_cap_is_configurable() -> None:
    route = _routes(envoy_config(StackConfig(edge_grpc_timeout_max_s=30)))[0]
    assert route["route"]["max_stream_duration"] == {"max_stream_duration": "30s"}


def test_filters_are_in_order() -> None:
    names = [f["name"] for f in _manager(envoy_config(StackConfig()))["http_filters"]]
    assert names == [
        "envoy.filters.http.grpc_web",
        "envoy.filters.http.cors",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.header_mutation",
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.ratelimit",
        "envoy.filters.http.router",
    ]


def test_cors_allows_the_grpc_web_headers() -> None:
    (vhost,) = _manager(envoy_config(StackConfig()))["route_config"]["virtual_hosts"]
    policy = vhost["typed_per_filter_config"]["envoy.filters.http.cors"]
    allowed = {h.strip() for h in policy["allow_headers"].split(",")}
    assert allowed == set(CORS_ALLOW_HEADERS)
    assert {"x-ragmesh-tenant", "authorization", "x-request-id", "grpc-timeout"} <= allowed
    exposed = {h.strip() for h in policy["expose_headers"].split(",")}
    assert exposed == {"grpc-status", "grpc-message", "grpc-status-details-bin"}
    assert policy["allow_origin_string_match"] == [{"safe_regex": {"regex": ".*"}}]


def test_rate_limit_comes_from_the_config_and_says_resource_exhausted() -> None:
    config = StackConfig(
        edge_rate_limit_max_tokens=7, edge_rate_limit_tokens_per_fill=3, edge_rate_limit_fill_interval_s=0.5
    )
    manager = _manager(envoy_config(config))
    (limit,) = [f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.local_ratelimit"]
    typed = limit["typed_config"]
    assert typed["token_bucket"] == {"max_tokens": 7, "tokens_per_fill": 3, "fill_interval": "0.5s"}
    assert typed["rate_limited_as_resource_exhausted"] is True
    # The global limit's mapper comes first; the local bucket's matches any other 429.
    *_, mapper, _answers = manager["local_reply_config"]["mappers"]
    assert "status_code_filter" in mapper["filter"]
    headers = {h["header"]["key"]: h["header"]["value"] for h in mapper["headers_to_add"]}
    assert headers["grpc-status"] == "8"
    assert mapper["status_code"] == 200


def test_clusters_speak_http2_to_each_service() -> None:
    config = StackConfig(svc_agent_port=60055)
    clusters = {c["name"]: c for c in envoy_config(config)["static_resources"]["clusters"]}
    assert clusters.keys() == {*SERVICE_NAMES, "ratelimit", TRACING_CLUSTER, "svc_agent_answers"}
    agent = clusters["svc_agent"]
    assert agent["type"] == "STATIC"
    options = agent["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]
    (locality,) = agent["load_assignment"]["endpoints"]
    (endpoint,) = locality["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 60055}


def test_tracing_starts_at_the_edge_and_exports_to_the_jaeger_part() -> None:
    config = StackConfig(jaeger_otlp_grpc_port=41317, trace_sample_ratio=0.25)
    bootstrap = envoy_config(config)
    tracing = _manager(bootstrap)["tracing"]
    # The edge records every request whatever the ratio: the collector samples whole traces.
    assert tracing["random_sampling"] == {"value": 100.0}
    provider = tracing["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    assert provider["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] == TRACING_CLUSTER
    assert provider["typed_config"]["service_name"] == "envoy"
    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    (locality,) = clusters[TRACING_CLUSTER]["load_assignment"]["endpoints"]
    (endpoint,) = locality["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 41317}


def test_without_tracing_the_edge_has_no_tracer_and_no_collector_cluster() -> None:
    bootstrap = envoy_config(StackConfig(), tracing=False)
    assert "tracing" not in _manager(bootstrap)
    assert TRACING_CLUSTER not in {c["name"] for c in bootstrap["static_resources"]["clusters"]}


def test_hostnames_resolve_by_dns() -> None:
    clusters = envoy_config(StackConfig(host="localhost"))["static_resources"]["clusters"]
    assert {c["type"] for c in clusters} == {"STRICT_DNS"}


def _filter(name: str) -> dict:  # type: ignore[type-arg]
    (found,) = [f for f in _manager(envoy_config(StackConfig()))["http_filters"] if f["name"] == name]
    return found["typed_config"]  # type: ignore[no-any-return]


def test_identity_headers_a_client_sent_are_removed_before_jwt_authn() -> None:
    removed = {m["remove"] for m in _filter("envoy.filters.http.header_mutation")["mutations"]["request_mutations"]}
    assert removed == {"x-ragmesh-tenant", "x-ragmesh-subject", "x-ragmesh-roles"}


def test_jwt_is_required_on_every_route_but_health() -> None:
    jwt = _filter("envoy.filters.http.jwt_authn")
    (provider,) = jwt["providers"].values()
    assert provider["issuer"] == "ragmesh-local" and provider["audiences"] == ["ragmesh"]
    assert provider["local_jwks"] == {"environment_variable": "RAGMESH_EDGE_JWKS"}
    assert provider["forward"] is True and provider["clock_skew_seconds"] == 30
    assert {c["header_name"]: c["claim_name"] for c in provider["claim_to_headers"]} == {
        "x-ragmesh-tenant": "tenant",
        "x-ragmesh-subject": "sub",
    }
    open_rule, required = jwt["rules"]
    assert open_rule == {"match": {"prefix": "/grpc.health.v1.Health/"}}
    assert required == {"match": {"prefix": "/"}, "requires": {"provider_name": "ragmesh"}}


def test_a_rejected_token_reaches_grpc_and_grpc_web_callers_as_unauthenticated() -> None:
    grpc_web, grpc_native, *_ = _manager(envoy_config(StackConfig()))["local_reply_config"]["mappers"]
    headers = {h["header"]["key"]: h["header"]["value"] for h in grpc_web["headers_to_add"]}
    assert grpc_web["status_code"] == 200 and headers["grpc-status"] == "16"
    assert grpc_native["status_code"] == 401
    assert grpc_native["body_format_override"]["text_format_source"]["inline_string"].startswith("%LOCAL_REPLY_BODY%")


def test_edge_limits_against_hostile_transports() -> None:
    config = StackConfig(
        edge_max_concurrent_streams=7,
        edge_stream_idle_timeout_s=12.5,
        edge_request_headers_timeout_s=3,
        edge_buffer_bytes=2 * 1024 * 1024,
    )
    doc = envoy_config(config)
    hcm = _manager(doc)
    assert hcm["stream_idle_timeout"] == "12.5s"
    assert hcm["request_headers_timeout"] == "3s"
    assert hcm["http2_protocol_options"] == {
        "max_concurrent_streams": 7,
        "initial_stream_window_size": 2 * 1024 * 1024,
        "initial_connection_window_size": 2 * 1024 * 1024,
    }
    (listener,) = doc["static_resources"]["listeners"]
    assert listener["per_connection_buffer_limit_bytes"] == 2 * 1024 * 1024


def test_overload_manager_caps_connections_and_heap() -> None:
    overload = envoy_config(StackConfig(edge_max_connections=50, edge_max_heap_bytes=256 * 1024 * 1024))[
        "overload_manager"
    ]
    monitors = {m["name"]: m["typed_config"] for m in overload["resource_monitors"]}
    assert (
        monitors["envoy.resource_monitors.global_downstream_max_connections"]["max_active_downstream_connections"] == 50
    )
    assert monitors["envoy.resource_monitors.fixed_heap"]["max_heap_size_bytes"] == 256 * 1024 * 1024
    actions = {a["name"]: a["triggers"][0]["threshold"]["value"] for a in overload["actions"]}
    assert actions == {
        "envoy.overload_actions.shrink_heap": 0.9,
        "envoy.overload_actions.stop_accepting_requests": 0.95,
    }


def test_answers_go_through_their_own_capped_cluster_before_the_agent_prefix() -> None:
    config = StackConfig(edge_max_answers_in_flight=5)
    bootstrap = envoy_config(config)
    routes = _routes(bootstrap)
    names = [r["name"] for r in routes]
    assert names.index("answers") < names.index("ragmesh.agent.v1.AgentService")
    answers = routes[names.index("answers")]
    assert answers["match"] == {"path": "/ragmesh.agent.v1.AgentService/StreamChat"}
    assert answers["route"]["cluster"] == "svc_agent_answers"
    assert answers["route"]["rate_limits"], "the tenant's chat limit still applies to answers"
    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    (threshold,) = clusters["svc_agent_answers"]["circuit_breakers"]["thresholds"]
    assert threshold["max_requests"] == 5
    assert (
        clusters["svc_agent_answers"]["load_assignment"]["endpoints"]
        == clusters["svc_agent"]["load_assignment"]["endpoints"]
    )
    mappers = _manager(bootstrap)["local_reply_config"]["mappers"]
    assert mappers[-1]["filter"] == {"response_flag_filter": {"flags": ["UO"]}}


def test_no_answers_cap_when_set_to_zero() -> None:
    bootstrap = envoy_config(StackConfig(edge_max_answers_in_flight=0))
    assert "answers" not in [r["name"] for r in _routes(bootstrap)]
    assert "svc_agent_answers" not in [c["name"] for c in bootstrap["static_resources"]["clusters"]]
