"""The alert rules and the dashboard name only metrics the services export today."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client import REGISTRY

import mesh.metrics  # noqa: F401 - registers the RPC metrics
import svc_agent.metrics  # noqa: F401
import svc_inference.metrics  # noqa: F401
import svc_ingest.metrics  # noqa: F401
import svc_retrieval.metrics  # noqa: F401
import svc_sandbox.metrics  # noqa: F401
from tests.deploy.kube import KUSTOMIZE

_METRIC = re.compile(r"\bragmesh_[a-z0-9_]+")


def _exported() -> set[str]:
    """Series names of every registered metric, whether or not a labelled child has been created yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):  # every registered collector
        for family in collector.describe() if hasattr(collector, "describe") else collector.collect():
            names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def _expressions(rendered_objects: dict[str, list[dict[str, Any]]]) -> list[str]:
    (rule,) = [o for o in rendered_objects["prod"] if o["kind"] == "PrometheusRule"]
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    dashboard = json.loads((KUSTOMIZE / "components/observability/ragmesh-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return exprs


def test_rules_and_dashboard_use_exported_metrics(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    exported = _exported()
    used = {m for e in _expressions(rendered_objects) for m in _METRIC.findall(e)}
    assert len(used) >= 8
    # A histogram is queried through its _bucket series, a counter through its _total.
    missing = sorted(m for m in used if m not in exported)
    assert not missing, f"not exported by any service: {missing}"


@pytest.mark.parametrize("job", ["svc-inference", "svc-agent"])
def test_service_monitor_jobs_are_service_names(rendered_objects: dict[str, list[dict[str, Any]]], job: str) -> None:
    monitors = [o for o in rendered_objects["prod"] if o["kind"] == "ServiceMonitor"]
    selected = {v for m in monitors for e in m["spec"]["selector"].get("matchExpressions", []) for v in e["values"]}
    assert job in selected
