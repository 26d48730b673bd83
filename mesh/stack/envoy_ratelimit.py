"""The edge's per-tenant global rate limit: Envoy's pieces, and what Envoy counts about it.

Envoy's ``envoy.filters.http.ratelimit`` filter asks the rate limit service (the
stack part ``ratelimit``, github.com/envoyproxy/ratelimit, counting in the
stack's Redis) about every routed RPC, with one descriptor built from the route:
``(tenant, <x-ragmesh-tenant>), (family, chat|ingest|search|default)``. The
limits per (tenant, family) live in the service's config file
(``envoy/ratelimit/ragmesh.yaml``). An over-limit call is answered by Envoy
itself with RESOURCE_EXHAUSTED and x-ratelimit-* headers saying when the
window resets.

When the service (or its Redis) cannot answer, the filter lets the call
through (fail open) and Envoy counts it in
``cluster.<upstream>.ratelimit.failure_mode_allowed``; :func:`read_edge_limit_counters`
reads those counters back from Envoy's admin interface for ``ragmesh status``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml

from mesh.stack.config import StackConfig
from mesh.stack.ports import is_ip_literal
from mesh.stack.probes import http_get

#: The rate limit service's domain the edge asks in; the config file must declare the same.
DOMAIN = "ragmesh"

#: Name of the Envoy cluster that reaches the rate limit service (the part of the same name).
CLUSTER = "ratelimit"

#: Descriptor keys, in the order Envoy sends the entries.
TENANT_KEY = "tenant"
FAMILY_KEY = "family"

#: Family of every routed RPC that no entry below names.
DEFAULT_FAMILY = "default"

#: Services whose every RPC is in one family.
SERVICE_FAMILIES: dict[str, str] = {
    "ragmesh.ingest.v1.IngestService": "ingest",
}

#: Single RPCs with a family of their own (``<service>/<method>``); the rest of their service is in its
#: service family, else in DEFAULT_FAMILY.
METHOD_FAMILIES: dict[str, str] = {
    "ragmesh.agent.v1.AgentService/StreamChat": "chat",
    "ragmesh.retrieval.v1.RetrievalService/Search": "search",
}

#: The families the config file must give limits for (each tenant entry).
FAMILIES: tuple[str, ...] = ("chat", "ingest", "search", DEFAULT_FAMILY)

#: Envoy's counters of the filter, per upstream cluster: cluster.<upstream>.ratelimit.<counter>.
COUNTERS: tuple[str, ...] = ("ok", "over_limit", "error", "failure_mode_allowed")

_COUNTER_LINE = re.compile(r"^cluster\.([^.:]+)\.ratelimit\.([a-z_]+): (\d+)$")


def _duration(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def ratelimit_filter(config: StackConfig) -> dict[str, Any]:
    """The ``envoy.filters.http.ratelimit`` HTTP filter (after the local bucket, before the router)."""
    return {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": DOMAIN,
            # Fail open: with the service or Redis down the edge keeps serving under the local
            # bucket, and Envoy counts each call let through (ratelimit.failure_mode_allowed).
            "failure_mode_deny": False,
            "timeout": _duration(config.edge_global_rate_limit_timeout_s),
            # gRPC callers get RESOURCE_EXHAUSTED (back off) instead of UNAVAILABLE (retry at once).
            "rate_limited_as_resource_exhausted": True,
            # x-ratelimit-limit/-remaining/-reset on every limited route's reply: the retry hint.
            "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
            "rate_limit_service": {
                "grpc_service": {"envoy_grpc": {"cluster_name": CLUSTER}},
                "transport_api_version": "V3",
            },
        },
    }


def ratelimit_cluster(config: StackConfig) -> dict[str, Any]:
    """The gRPC (HTTP/2) cluster of the rate limit service."""
    endpoint = {"address": {"socket_address": {"address": config.host, "port_value": config.ratelimit_grpc_port}}}
    return {
        "name": CLUSTER,
        "type": "STATIC" if is_ip_literal(config.host) else "STRICT_DNS",
        "connect_timeout": "0.25s",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {"cluster_name": CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}]},
    }


def family_of(service: str, method: str) -> str:
    """The family of the RPC ``/<service>/<method>``."""
    return METHOD_FAMILIES.get(f"{service}/{method}") or SERVICE_FAMILIES.get(service, DEFAULT_FAMILY)


def _family_action(value: str, paths: list[str], *, expect_match: bool) -> dict[str, Any]:
    """Sets ``family`` to ``value`` when the request path is (``expect_match``) or is not one of ``paths``."""
    if len(paths) == 1:
        matcher: dict[str, Any] = {"exact": paths[0]}
    else:
        matcher = {"safe_regex": {"regex": "|".join(re.escape(path) for path in paths)}}
    return {
        "header_value_match": {
            "descriptor_key": FAMILY_KEY,
            "descriptor_value": value,
            "expect_match": expect_match,
            "headers": [{"name": ":path", "string_match": matcher}],
        }
    }


def route_rate_limits(service: str, tenant_header: str) -> list[dict[str, Any]]:
    """The ``rate_limits`` of the route for ``service``: each call sends exactly one (tenant, family) descriptor.

    A call without the tenant header sends none (Envoy skips an entry one of whose actions
    has nothing to say); the services refuse such a call as UNAUTHENTICATED anyway.
    """
    tenant = {"request_headers": {"header_name": tenant_header, "descriptor_key": TENANT_KEY}}
    service_family = SERVICE_FAMILIES.get(service, DEFAULT_FAMILY)
    own = {key.split("/", 1)[1]: family for key, family in METHOD_FAMILIES.items() if key.split("/", 1)[0] == service}
    if not own:
        return [
            {"actions": [tenant, {"generic_key": {"descriptor_key": FAMILY_KEY, "descriptor_value": service_family}}]}
        ]
    entries = [
        {"actions": [tenant, _family_action(family, [f"/{service}/{method}"], expect_match=True)]}
        for method, family in own.items()
    ]
    # Every other method of the service: the path is none of those above.
    others = _family_action(service_family, [f"/{service}/{method}" for method in own], expect_match=False)
    entries.append({"actions": [tenant, others]})
    return entries


def rate_limited_reply_mapper(tenant_header: str) -> dict[str, Any]:
    """A local_reply_config mapper for the global limit's reply, placed before the local bucket's.

    The ratelimit filter flags the stream RL (rate limited) before it builds its 429; the
    local bucket flags it only after, so this mapper sees the global limit's replies alone.
    Like the local bucket's mapper it turns the 429 into a trailers-only gRPC reply, so
    grpc-web clients get grpc-status 8 too, and names the tenant and when to retry.
    """

    def header(key: str, value: str) -> dict[str, Any]:
        return {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": key, "value": value}}

    return {
        "filter": {
            "and_filter": {
                "filters": [
                    {
                        "status_code_filter": {
                            "comparison": {
                                "op": "EQ",
                                "value": {"default_value": 429, "runtime_key": "edge_rate_limited_status"},
                            }
                        }
                    },
                    {"response_flag_filter": {"flags": ["RL"]}},
                ]
            }
        },
        "status_code": 200,
        "headers_to_add": [
            header("content-type", "application/grpc"),
            header("grpc-status", "8"),
            header(
                "grpc-message",
                f"tenant %REQ({tenant_header})% is over its rate limit; "
                "retry in %RESP(x-ratelimit-reset)% s (x-ratelimit-reset)",
            ),
        ],
        "body": {"inline_string": ""},
    }


@dataclasses.dataclass(frozen=True)
class EdgeLimitCounters:
    """Envoy's counters of the global rate limit filter, summed over the upstream clusters."""

    ok: int = 0
    """Calls the rate limit service allowed."""
    over_limit: int = 0
    """Calls refused with RESOURCE_EXHAUSTED because their tenant was over its limit."""
    error: int = 0
    """Calls the rate limit service could not decide (down, Redis down, timed out)."""
    failure_mode_allowed: int = 0
    """Calls let through without a per-tenant check because of such an error (fail open)."""

    def as_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def parse_edge_limit_counters(stats_text: str) -> EdgeLimitCounters:
    """The filter's counters from the text of Envoy's admin ``/stats``."""
    totals = dict.fromkeys(COUNTERS, 0)
    for line in stats_text.splitlines():
        match = _COUNTER_LINE.match(line.strip())
        if match and match.group(2) in totals and match.group(1) != CLUSTER:
            totals[match.group(2)] += int(match.group(3))
    return EdgeLimitCounters(**totals)


def read_edge_limit_counters(config: StackConfig, timeout_s: float = 2.0) -> EdgeLimitCounters | None:
    """The counters from the running Envoy's admin interface; None when it does not answer."""
    url = f"http://{config.host}:{config.envoy_admin_port}/stats?filter=%5Ecluster%5C..*%5C.ratelimit%5C."
    status, body = http_get(url, timeout_s)
    if status != 200:
        return None
    return parse_edge_limit_counters(body)


_UNITS = ("second", "minute", "hour", "day")


def _descriptor_problems(entries: Any, where: str) -> list[str]:
    if not isinstance(entries, list):
        return [f"{where}: descriptors must be a list"]
    problems: list[str] = []
    for index, entry in enumerate(entries):
        here = f"{where}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            problems.append(f"{here}: each descriptor needs a key")
            continue
        here = f"{here} ({entry['key']}={entry.get('value', '*')})"
        limit = entry.get("rate_limit")
        if limit is not None:
            if not isinstance(limit, dict) or limit.get("unit") not in _UNITS:
                problems.append(f"{here}: rate_limit.unit must be one of {', '.join(_UNITS)}")
            elif not isinstance(limit.get("requests_per_unit"), int) or limit["requests_per_unit"] < 0:
                problems.append(f"{here}: rate_limit.requests_per_unit must be a whole number >= 0")
        if "descriptors" in entry:
            problems.extend(_descriptor_problems(entry["descriptors"], f"{here}.descriptors"))
    return problems


def limits_problem(text: str) -> str:
    """What is wrong with a rate limit service config for the edge ('' when nothing is)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return f"not valid YAML: {exc}"
    if not isinstance(doc, dict):
        return "expected a mapping with domain and descriptors"
    if doc.get("domain") != DOMAIN:
        return f"domain must be {DOMAIN!r} (the edge asks in that domain), not {doc.get('domain')!r}"
    problems = _descriptor_problems(doc.get("descriptors"), "descriptors")
    return "; ".join(problems)


@dataclasses.dataclass(frozen=True)
class GlobalLimitReport:
    """What ``ragmesh status`` says about the edge's per-tenant limits."""

    state: str
    """``enforcing``, ``failing_open`` (the rate limit service is not answering) or ``unknown``."""
    detail: str
    counters: EdgeLimitCounters | None
    """Envoy's counters since it started; None when its admin interface did not answer."""

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "detail": self.detail,
            "counters": self.counters.as_json() if self.counters is not None else None,
        }

    def line(self) -> str:
        return f"global rate limit: {self.state.replace('_', ' ')}: {self.detail}"


def global_limit_report(counters: EdgeLimitCounters | None, service_state: str) -> GlobalLimitReport:
    """The report from Envoy's counters and the rate limit part's state (running, unhealthy, stopped)."""
    if counters is None:
        return GlobalLimitReport("unknown", "Envoy's admin interface did not answer", None)
    since = "since Envoy started"
    if service_state != "running":
        return GlobalLimitReport(
            "failing_open",
            f"the rate limit service is {service_state}, so the edge serves under its local bucket only; "
            f"{counters.failure_mode_allowed} calls let through without a per-tenant check {since}",
            counters,
        )
    detail = f"{counters.over_limit} calls refused over a tenant's limit {since}"
    if counters.failure_mode_allowed:
        detail += f"; {counters.failure_mode_allowed} let through unchecked while the service could not answer"
    return GlobalLimitReport("enforcing", detail, counters)
