"""The checked-in Envoy edge config is the default rendering, Envoy accepts it, and it routes the contracts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from mesh import auth
from mesh.auth import SigningKey
from mesh.stack import StackConfig, render_envoy_config
from mesh.stack.binaries import envoy_binary
from mesh.stack.config import default_root_dir
from mesh.stack.envoy_auth import JWKS_ENV
from mesh.stack.envoy_config import ROUTED_SERVICES
from ragmesh.agent.v1 import agent_service_pb2  # noqa: F401 - registers descriptors
from ragmesh.inference.v1 import inference_service_pb2  # noqa: F401
from ragmesh.ingest.v1 import ingest_service_pb2  # noqa: F401
from ragmesh.retrieval.v1 import index_service_pb2, retrieval_service_pb2  # noqa: F401
from ragmesh.sandbox.v1 import sandbox_service_pb2  # noqa: F401

CHECKED_IN = default_root_dir() / "envoy" / "envoy.yaml"
INTERNAL_SERVICES = set(auth.INTERNAL_SERVICES)
SERVICE_FILES = (
    "ragmesh/inference/v1/inference_service.proto",
    "ragmesh/retrieval/v1/retrieval_service.proto",
    "ragmesh/retrieval/v1/index_service.proto",
    "ragmesh/ingest/v1/ingest_service.proto",
    "ragmesh/sandbox/v1/sandbox_service.proto",
    "ragmesh/agent/v1/agent_service.proto",
)


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    # The edge reads its JWKS from the environment (the stack sets it); any valid key will do here.
    jwks = json.dumps(SigningKey.generate().jwks())
    return subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        env={**os.environ, JWKS_ENV: jwks},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_checked_in_config_is_the_default_rendering() -> None:
    assert CHECKED_IN.read_text() == render_envoy_config(StackConfig()), (
        "envoy/envoy.yaml is stale: ragmesh envoy-config --defaults --output envoy/envoy.yaml"
    )


def test_envoy_validates_the_checked_in_config() -> None:
    done = _validate(CHECKED_IN)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "config",
    [
        StackConfig(host="localhost", edge_grpc_timeout_max_s=30, edge_rate_limit_fill_interval_s=0.25),
        StackConfig(envoy_listener_port=18080, envoy_admin_port=19901, svc_agent_port=60055, edge_retries=0),
    ],
    ids=["dns-hosts-capped-timeout", "other-ports"],
)
def test_envoy_validates_other_renderings(tmp_path: Path, config: StackConfig) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(render_envoy_config(config))
    done = _validate(path)
    assert done.returncode == 0, done.stdout + done.stderr


def _services_in_contracts() -> set[str]:
    pool = descriptor_pool.Default()
    names: set[str] = set()
    for file_name in SERVICE_FILES:
        names.update(service.full_name for service in pool.FindFileByName(file_name).services_by_name.values())
    return names


def test_every_public_service_is_routed_and_internal_ones_are_not() -> None:
    services = _services_in_contracts()
    assert set(ROUTED_SERVICES) == services - INTERNAL_SERVICES
    assert not INTERNAL_SERVICES & set(ROUTED_SERVICES)


def test_every_rpc_has_an_access_rule() -> None:
    """A new RPC is closed until someone decides which role may call it (mesh.auth.policy)."""
    pool = descriptor_pool.Default()
    for name in SERVICE_FILES:
        for service in pool.FindFileByName(name).services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                assert auth.required_role(path) is not None, f"{path} has no rule in mesh.auth.policy"
