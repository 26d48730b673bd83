"""The rate limit service on Kubernetes is the local stack's part: same limits, settings and commit.

Envoy's `ratelimit` cluster (kustomize/base/envoy/envoy.yaml) must reach a Service of that
name on the port it dials, the network policies must let exactly that through, and the pod
must load the limits envoy/ratelimit/ragmesh.yaml gives the local stack.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.stack import envoy_ratelimit
from mesh.stack.config import StackConfig
from mesh.stack.layout import StackLayout
from mesh.stack.parts import RateLimitPart
from tests.deploy.kube import KUSTOMIZE, OVERLAYS, REPO

BASE = KUSTOMIZE / "base" / "ratelimit"


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _container() -> dict[str, Any]:
    (deployment,) = _load(BASE / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env() -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container()["env"]}


def _grpc_port() -> int:
    (service,) = _load(BASE / "service.yaml")
    (port,) = [p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"]
    return int(port)


def test_checked_in_limits_are_the_stacks() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_k8s_ratelimit.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    copy = (BASE / f"{envoy_ratelimit.DOMAIN}.yaml").read_text()
    assert envoy_ratelimit.limits_problem(copy) == ""
    assert yaml.safe_load(copy) == yaml.safe_load((REPO / "envoy" / "ratelimit" / "ragmesh.yaml").read_text())


def test_the_service_is_where_envoy_dials() -> None:
    envoy = yaml.safe_load((KUSTOMIZE / "base" / "envoy" / "envoy.yaml").read_text())
    (cluster,) = [c for c in envoy["static_resources"]["clusters"] if c["name"] == envoy_ratelimit.CLUSTER]
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    address = endpoint["endpoint"]["address"]["socket_address"]
    (service,) = _load(BASE / "service.yaml")
    assert address["address"] == service["metadata"]["name"] == "ratelimit"
    assert address["port_value"] == _grpc_port()
    assert _env()["GRPC_PORT"]["value"] == str(_grpc_port())


def test_network_policies_let_the_edge_in_on_that_port() -> None:
    policies = KUSTOMIZE / "components" / "network-policies"
    (edge,) = _load(policies / "envoy.yaml")
    egress = [
        rule
        for rule in edge["spec"]["egress"]
        if any(
            t.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "ratelimit"
            for t in rule["to"]
        )
    ]
    assert [p["port"] for rule in egress for p in rule["ports"]] == [_grpc_port()]
    (own,) = _load(policies / "ratelimit.yaml")
    from_edge = [
        rule
        for rule in own["spec"]["ingress"]
        if any(
            f.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "envoy"
            for f in rule["from"]
        )
    ]
    assert [p["port"] for rule in from_edge for p in rule["ports"]] == [_grpc_port()]
    # Redis lets it in (dev's pod; prod's ElastiCache is outside the cluster).
    (redis,) = [p for p in _load(policies / "stores.yaml") if p["metadata"]["name"] == "redis"]
    callers = {
        f["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for r in redis["spec"]["ingress"] for f in r["from"]
    }
    assert "ratelimit" in callers


def test_the_pod_sets_what_the_stack_part_sets(tmp_path: Path) -> None:
    go_home = tmp_path / "go"
    (go_home / "bin").mkdir(parents=True)
    (go_home / "bin" / "ratelimit").write_text("#!/bin/sh\nexit 1\n")
    (go_home / "bin" / "ratelimit").chmod(0o755)
    config = StackConfig(home=tmp_path / "h", go_home=go_home)
    stack_env = RateLimitPart(config, StackLayout(config.home)).launch().env
    ours = {k for k, v in stack_env.items() if os.environ.get(k) != v}
    pod = _env()
    assert ours <= set(pod), f"the pod does not set {sorted(ours - set(pod))}"
    for name in ("REDIS_URL", "REDIS_AUTH", "REDIS_TLS"):
        # Address, token and TLS come from a Secret (the token never in a ConfigMap or the manifest).
        assert pod[name]["valueFrom"]["secretKeyRef"]["name"] == "ragmesh-ratelimit-redis"
    for name in ("REDIS_SOCKET_TYPE", "CACHE_KEY_PREFIX", "HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED", "USE_STATSD"):
        assert pod[name]["value"] == stack_env[name]
    # The limits ConfigMap lands in <RUNTIME_ROOT>/config, as the stack's file does.
    (mount,) = [m for m in _container()["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == f"{pod['RUNTIME_ROOT']['value']}/config"
    # Its metrics port is the Service's metrics port, which the ServiceMonitor scrapes.
    metrics_port = int(pod["PROMETHEUS_ADDR"]["value"].rsplit(":", 1)[1])
    assert {p["name"]: p["containerPort"] for p in _container()["ports"]}["metrics"] == metrics_port


def test_the_image_is_the_commit_the_stack_builds() -> None:
    script = (REPO / "scripts" / "install-go-tools.sh").read_text()
    (version,) = re.findall(r'^ratelimit_version="([^"]+)"', script, re.M)
    commit = version.rsplit("-", 1)[1]
    base = yaml.safe_load((KUSTOMIZE / "base" / "kustomization.yaml").read_text())
    (image,) = [i for i in base["images"] if i["name"] == "envoyproxy/ratelimit"]
    assert len(image["newTag"]) == 8 and commit.startswith(image["newTag"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_runs_it_guarded(rendered_objects: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    objects = rendered_objects[overlay]

    def named(kind: str) -> list[dict[str, Any]]:
        return [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == "ratelimit"]

    (deployment,) = named("Deployment")
    assert named("Service") and named("PodDisruptionBudget") and named("ServiceAccount") and named("NetworkPolicy")
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    (config_map,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == volume["configMap"]["name"]
    ]
    assert envoy_ratelimit.limits_problem(config_map["data"][f"{envoy_ratelimit.DOMAIN}.yaml"]) == ""
    (container,) = pod["containers"]
    assert {"readinessProbe", "livenessProbe"} <= set(container)
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthcheck"
    if overlay == "prod":
        # Scraped (job = the Service's name, as the edge dashboard's ratelimit_service_* panels need)
        # and fed by External Secrets.
        (monitor,) = named("ServiceMonitor")
        assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "ratelimit"}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics"
        assert endpoint["relabelings"][0]["targetLabel"] == "job"
        secrets = [o for o in objects if o["kind"] == "ExternalSecret"]
        assert any(s["spec"]["target"]["name"] == "ragmesh-ratelimit-redis" for s in secrets)
