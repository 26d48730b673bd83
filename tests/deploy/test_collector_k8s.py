"""The trace gateway on Kubernetes: the local stack's sampling rules, a config the collector accepts, reachable."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import yaml

from mesh.stack.binaries import jaeger_binary, jaeger_installed
from mesh.stack.config import StackConfig
from tests.deploy.kube import KUSTOMIZE, OVERLAYS, REPO
from tests.deploy.test_kustomize import _matches, _of, _one

CHECKED_IN = KUSTOMIZE / "base" / "otel-collector" / "collector.yaml"


def test_checked_in_config_is_the_rendering() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_k8s_collector.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr


def test_the_gateway_keeps_failed_and_slow_traces_and_a_share_of_the_rest() -> None:
    processors = yaml.safe_load(CHECKED_IN.read_text())["processors"]
    policies = {p["name"]: p for p in processors["tail_sampling"]["policies"]}
    assert policies["keep-errors"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["keep-slow"]["latency"]["threshold_ms"] > 0
    assert 0 < policies["keep-share"]["probabilistic"]["sampling_percentage"] < 100
    pipeline = yaml.safe_load(CHECKED_IN.read_text())["service"]["pipelines"]["traces"]
    assert pipeline["processors"][0] == "memory_limiter" and "tail_sampling" in pipeline["processors"]


def test_the_collector_accepts_the_config() -> None:
    """`jaeger validate`: the binary of the image's release checks every component's settings."""
    go_home = StackConfig().go_home
    if not jaeger_installed(go_home):
        pytest.skip("jaeger is not built: scripts/install-go-tools.sh jaeger")
    done = subprocess.run(
        [str(jaeger_binary(go_home, "jaeger")), "validate", f"--config=file:{CHECKED_IN}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TRACE_BACKEND_ENDPOINT": "trace-store.example:4317"},
    )
    assert done.returncode == 0, done.stderr + done.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_but_the_sandbox_may_send_spans_to_the_gateway(
    rendered_objects: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered_objects[overlay]
    collector = _one(objects, "Deployment", "otel-collector")["spec"]["template"]["metadata"]["labels"]
    policies = _of(objects, "NetworkPolicy")
    if not policies:
        pytest.skip(f"{overlay} has no network policies")

    def may_export(labels: dict[str, str]) -> bool:
        for policy in policies:
            if not _matches(policy["spec"]["podSelector"], labels):
                continue
            for rule in policy["spec"].get("egress") or []:
                peers = [peer["podSelector"] for peer in rule.get("to", []) if "podSelector" in peer]
                to_collector = any(_matches(selector, collector) for selector in peers)
                if to_collector and any(p.get("port") == 4317 for p in rule.get("ports", [])):
                    return True
        return False

    stores = {"otel-collector", "svc-sandbox", "qdrant", "neo4j", "postgres", "redis"}
    for workload in _of(objects, "Deployment") + _of(objects, "StatefulSet"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        if labels.get("app.kubernetes.io/name") in stores:
            continue
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        assert may_export(labels), f"{name} in {overlay} cannot reach otel-collector:4317"
    sandbox = _one(objects, "Deployment", "svc-sandbox")["spec"]["template"]["metadata"]["labels"]
    assert not may_export(sandbox), "the sandbox must send nothing, spans included"
