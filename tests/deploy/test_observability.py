"""The alert rules and the dashboards name only metrics the services export today, and are complete.

The dashboards are scripts/render_dashboards.py's rendering (checked here like the Envoy config),
one per service and one for the edge besides the overview, each in a ConfigMap the Grafana
sidecar picks up; every alert says how long, how bad, what and where to look first.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

import mesh.metrics  # noqa: F401 - registers the RPC metrics
import svc_agent.metrics  # noqa: F401
import svc_inference.metrics  # noqa: F401
import svc_ingest.metrics  # noqa: F401
import svc_retrieval.metrics  # noqa: F401
import svc_sandbox.metrics  # noqa: F401
from mesh.stack.config import SERVICE_NAMES
from tests.deploy.kube import KUSTOMIZE, REPO

OBSERVABILITY = KUSTOMIZE / "components" / "observability"
DASHBOARDS = sorted(OBSERVABILITY.glob("*.json"))
RUNBOOK = REPO / "docs" / "OBSERVABILITY.md"

_METRIC = re.compile(r"\bragmesh_[a-z0-9_]+")


def _exported() -> set[str]:
    """Series names of every registered metric, whether or not a labelled child has been created yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):  # every registered collector
        for family in collector.describe() if hasattr(collector, "describe") else collector.collect():
            names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def _dashboard(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _panels(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a dashboard, those nested in collapsed rows included."""
    found = []
    for panel in node.get("panels", []):
        found += [panel, *_panels(panel)]
    return found


def _rules(rendered_objects: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    (rule,) = [o for o in rendered_objects["prod"] if o["kind"] == "PrometheusRule"]
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def _expressions(rendered_objects: dict[str, list[dict[str, Any]]]) -> list[str]:
    exprs = [r["expr"] for r in _rules(rendered_objects)]
    for path in DASHBOARDS:
        exprs += [t["expr"] for p in _panels(_dashboard(path)) for t in p.get("targets", [])]
    return exprs


def test_rules_and_dashboards_use_exported_metrics(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    exported = _exported()
    used = {m for e in _expressions(rendered_objects) for m in _METRIC.findall(e)}
    assert len(used) >= 8
    # A histogram is queried through its _bucket series, a counter through its _total.
    missing = sorted(m for m in used if m not in exported)
    assert not missing, f"not exported by any service: {missing}"


def test_every_domain_metric_is_on_its_service_dashboard() -> None:
    """What a service exports beyond RED is on its own dashboard (a histogram through its buckets or count)."""
    for part in SERVICE_NAMES:
        domain = part.removeprefix("svc_")
        path = OBSERVABILITY / f"ragmesh-{part.replace('_', '-')}.json"
        queried = " ".join(t["expr"] for p in _panels(_dashboard(path)) for t in p.get("targets", []))
        families = {m for m in _exported() if m.startswith(f"ragmesh_{domain}_")}
        bases = {re.sub(r"_(bucket|sum|count)$", "", m) for m in families}
        unshown = sorted(b for b in bases if not re.search(rf"\b{b}(_bucket|_count|_sum|\b)", queried))
        assert not unshown, f"{path.name} shows none of {unshown}"


def test_checked_in_dashboards_are_the_rendering() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr


def test_an_overview_and_a_dashboard_per_service_and_the_edge_linked_from_it() -> None:
    uids = {_dashboard(path)["uid"]: path for path in DASHBOARDS}
    wanted = {"ragmesh-overview", "ragmesh-envoy", *(f"ragmesh-{p.replace('_', '-')}" for p in SERVICE_NAMES)}
    assert set(uids) == wanted
    assert all(path.name == f"{uid}.json" for uid, path in uids.items())
    overview = _dashboard(uids["ragmesh-overview"])
    linked = {link["url"].split("?")[0] for p in _panels(overview) for link in p.get("links", [])}
    assert linked == {f"/d/{uid}" for uid in wanted - {"ragmesh-overview"}}
    # And back: every dashboard has the menu of all ragmesh dashboards.
    for path in DASHBOARDS:
        (menu,) = _dashboard(path)["links"]
        assert menu["type"] == "dashboards" and menu["tags"] == ["ragmesh"] and menu["keepTime"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_variables_units_and_layout(path: Path) -> None:
    dashboard = _dashboard(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "job", "instance"} <= set(variables)
    panels = [p for p in _panels(dashboard) if p["type"] != "row"]
    assert panels
    taken: set[tuple[int, int]] = set()
    for panel in _panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(grid["y"] + dy, grid["x"] + dx) for dy in range(grid["h"]) for dx in range(grid["w"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
    for panel in panels:
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert target["expr"] and target["legendFormat"], panel["title"]
            # Every series is narrowed by the dashboard's variables.
            assert 'namespace=~"$namespace"' in target["expr"], (panel["title"], target["expr"])


def test_service_dashboards_show_red_per_rpc() -> None:
    for part in SERVICE_NAMES:
        dashboard = _dashboard(OBSERVABILITY / f"ragmesh-{part.replace('_', '-')}.json")
        assert "method" in {v["name"] for v in dashboard["templating"]["list"]}
        (per_rpc,) = [p for p in dashboard["panels"] if p["type"] == "row" and p.get("repeat") == "method"]
        assert per_rpc["title"] == "RPC $method"
        exprs = " ".join(t["expr"] for p in _panels(dashboard) for t in p.get("targets", []))
        assert 'method="$method"' in exprs
        assert "ragmesh_rpc_server_requests_total" in exprs and 'code!="OK"' in exprs
        for q in ("0.5", "0.95", "0.99"):
            assert f"histogram_quantile({q}, sum by (le) (rate(ragmesh_rpc_server_duration_seconds_bucket" in exprs


def test_every_dashboard_is_in_a_grafana_configmap(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    maps = [
        o
        for o in rendered_objects["prod"]
        if o["kind"] == "ConfigMap" and o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    shipped = {name: text for m in maps for name, text in m["data"].items()}
    assert shipped == {path.name: path.read_text() for path in DASHBOARDS}
    # One dashboard a ConfigMap, each well below the 256 KiB client-side apply keeps in an annotation.
    assert all(len(m["data"]) == 1 and len(json.dumps(m["data"])) < 200_000 for m in maps)


def test_every_alert_says_how_long_how_bad_what_and_where_to_look(
    rendered_objects: dict[str, list[dict[str, Any]]],
) -> None:
    anchors = {
        re.sub(r"[^a-z0-9-]", "", line.lstrip("#").strip().lower().replace(" ", "-"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    rules = _rules(rendered_objects)
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[mh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/OBSERVABILITY.md" and anchor in anchors, f"{name}: no section {anchor} in {page}"
    # What the on-call person needs (issue 15): error ratio, p99 latency, TTFT, degraded legs,
    # ingest stalled, idle GPUs.
    names = {r["alert"] for r in rules}
    assert {
        "RagmeshServerErrors",
        "RagmeshSlowUnaryRPCs",
        "RagmeshInferenceSlowFirstToken",
        "RagmeshAgentSlowFirstToken",
        "RagmeshRetrievalDegraded",
        "RagmeshIngestStalled",
        "RagmeshModelGPUIdle",
    } <= names


@pytest.mark.parametrize("job", ["svc-inference", "svc-agent"])
def test_service_monitor_jobs_are_service_names(rendered_objects: dict[str, list[dict[str, Any]]], job: str) -> None:
    monitors = [o for o in rendered_objects["prod"] if o["kind"] == "ServiceMonitor"]
    selected = {v for m in monitors for e in m["spec"]["selector"].get("matchExpressions", []) for v in e["values"]}
    assert job in selected
