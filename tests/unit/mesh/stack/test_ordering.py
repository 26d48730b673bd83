from __future__ import annotations

import pytest

from mesh.stack.config import PART_NAMES, SERVICE_NAMES, StackConfig
from mesh.stack.ordering import DependencyError, start_order, with_requirements
from mesh.stack.supervisor import Supervisor

STORES = ["postgres", "redis", "neo4j", "ray"]


def test_with_requirements_is_transitive() -> None:
    requires = {"a": ["b"], "b": ["c"], "c": [], "d": []}
    assert with_requirements(["a"], requires) == {"a", "b", "c"}
    assert with_requirements(["d"], requires) == {"d"}


def test_with_requirements_rejects_unknown() -> None:
    with pytest.raises(DependencyError, match="unknown part 'x'"):
        with_requirements(["x"], {"a": []})


def test_start_order_respects_edges_and_declared_order() -> None:
    declared = ["a", "b", "c", "d"]
    requires = {"a": ["c"], "b": [], "c": [], "d": []}
    after = {"b": ["d"]}
    assert start_order({"a", "b", "c", "d"}, requires, after, declared) == ["c", "a", "d", "b"]


def test_start_order_ignores_edges_outside_the_selection() -> None:
    assert start_order({"a"}, {"a": ["c"]}, {}, ["a", "c"]) == ["a"]


def test_start_order_detects_cycles() -> None:
    with pytest.raises(DependencyError, match="cycle"):
        start_order({"a", "b"}, {"a": ["b"], "b": ["a"]}, {}, ["a", "b"])


def test_full_stack_starts_stores_then_services_then_envoy(tmp_path: object) -> None:
    plan = Supervisor(StackConfig()).plan()
    assert plan == list(PART_NAMES)
    assert plan.index("envoy") > max(plan.index(s) for s in SERVICE_NAMES)
    for service in SERVICE_NAMES:
        assert plan.index(service) > max(plan.index(s) for s in STORES)


def test_only_a_service_pulls_in_the_stores() -> None:
    assert Supervisor(StackConfig()).plan(["svc_agent"]) == [*STORES, "svc_agent"]


def test_no_deps_starts_exactly_the_selection() -> None:
    assert Supervisor(StackConfig()).plan(["envoy", "redis"], with_deps=False) == ["redis", "envoy"]


def test_envoy_does_not_pull_in_services() -> None:
    assert Supervisor(StackConfig()).plan(["envoy"]) == ["envoy"]


def test_the_rate_limit_service_needs_redis_and_starts_before_envoy() -> None:
    assert Supervisor(StackConfig()).plan(["ratelimit"]) == ["redis", "ratelimit"]
    plan = Supervisor(StackConfig()).plan(["envoy", "ratelimit"])
    assert plan == ["redis", "ratelimit", "envoy"]
    # The edge fails open without it, so it is not pulled in by envoy (above) or the services.
    assert "ratelimit" not in Supervisor(StackConfig()).plan(["svc_agent"])


def test_configured_parts_are_the_default_selection() -> None:
    config = StackConfig(parts=("envoy", "postgres", "redis"))
    assert Supervisor(config).plan() == ["postgres", "redis", "envoy"]
