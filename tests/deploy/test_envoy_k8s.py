"""Envoy's cluster config is the local stack's rendering with Service names, and Envoy accepts it."""

from __future__ import annotations

import subprocess
import sys

import yaml

from mesh.stack.binaries import envoy_binary
from mesh.stack.config import SERVICE_NAMES
from tests.deploy.kube import KUSTOMIZE, REPO

CHECKED_IN = KUSTOMIZE / "base" / "envoy" / "envoy.yaml"


def test_checked_in_config_is_the_rendering() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_k8s_envoy.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr


def test_upstreams_are_strict_dns_service_names() -> None:
    clusters = {c["name"]: c for c in yaml.safe_load(CHECKED_IN.read_text())["static_resources"]["clusters"]}
    for part in SERVICE_NAMES:
        cluster = clusters[part]
        assert cluster["type"] == "STRICT_DNS"
        (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        assert endpoint["endpoint"]["address"]["socket_address"]["address"] == part.replace("_", "-")


def test_envoy_validates_the_config() -> None:
    done = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(CHECKED_IN), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
