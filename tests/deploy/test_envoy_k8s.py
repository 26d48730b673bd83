"""Envoy's cluster config is the local stack's rendering with Service names, and Envoy accepts it."""

from __future__ import annotations

import re
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


def test_the_edge_checks_the_issuer_the_services_check() -> None:
    from scripts.render_k8s_envoy import ISSUER

    mesh_env = dict(
        line.split("=", 1)
        for line in (KUSTOMIZE / "base" / "mesh.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert mesh_env["RAGMESH_AUTH_ISSUER"] == ISSUER
    issuers = re.findall(r"issuer: (\S+)", CHECKED_IN.read_text())
    assert issuers == [ISSUER]


def test_upstreams_are_strict_dns_service_names() -> None:
    clusters = {c["name"]: c for c in yaml.safe_load(CHECKED_IN.read_text())["static_resources"]["clusters"]}
    for part in SERVICE_NAMES:
        cluster = clusters[part]
        assert cluster["type"] == "STRICT_DNS"
        (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        assert endpoint["endpoint"]["address"]["socket_address"]["address"] == part.replace("_", "-")


def _test_jwks() -> str:
    """A JWKS with a fresh RSA key, for configs that read their JWKS from the environment."""
    import base64
    import json

    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    key = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "test", "n": b64(numbers.n), "e": b64(numbers.e)}
    return json.dumps({"keys": [key]})


def test_envoy_validates_the_config() -> None:
    text = CHECKED_IN.read_text()
    # Values the config takes from Envoy's environment (in the cluster: the Deployment's env).
    env = {name: _test_jwks() for name in re.findall(r"environment_variable: (\S+)", text)}
    done = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(CHECKED_IN), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert done.returncode == 0, done.stderr + done.stdout
