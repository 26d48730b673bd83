from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from mesh.stack.config import SERVICE_NAMES, StackConfig
from mesh.stack.layout import StackLayout
from mesh.stack.service_env import service_env


def test_service_gets_its_port_and_every_address(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path, svc_retrieval_port=60052, redis_port=16379)
    env = service_env(config, StackLayout(tmp_path), "svc_retrieval")
    assert env["RAGMESH_RETRIEVAL_PORT"] == "60052"
    assert env["RAGMESH_RETRIEVAL_HOST"] == "127.0.0.1"
    assert env["RAGMESH_RETRIEVAL_METRICS_PORT"] == "50062"
    assert env["RAGMESH_AGENT_ADDR"] == "127.0.0.1:50055"
    assert env["RAGMESH_RETRIEVAL_ADDR"] == "127.0.0.1:60052"
    assert env["RAGMESH_REDIS_URL"] == "redis://127.0.0.1:16379/0"
    assert env["RAGMESH_POSTGRES_DSN"] == "postgresql://ragmesh:ragmesh@127.0.0.1:55432/ragmesh"
    assert env["RAGMESH_NEO4J_URI"] == "bolt://127.0.0.1:57687"
    assert env["RAGMESH_NEO4J_PASSWORD"] == "ragmesh-dev"
    assert "RAGMESH_AGENT_PORT" not in env


def test_service_joins_ray_with_the_stack_token(tmp_path: Path) -> None:
    env = service_env(StackConfig(home=tmp_path, ray_gcs_port=16380), StackLayout(tmp_path), "svc_ingest")
    assert env["RAY_ADDRESS"] == "127.0.0.1:16380"
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / "secrets" / "ray-auth-token")


def test_the_store_addresses_are_what_mesh_settings_reads(tmp_path: Path) -> None:
    from mesh.settings import MeshSettings

    config = StackConfig(home=tmp_path, postgres_port=15432, neo4j_bolt_port=17687, svc_sandbox_port=60054)
    settings = MeshSettings.from_env(service_env(config, StackLayout(tmp_path), "svc_agent"))
    assert settings.home == tmp_path
    assert settings.postgres_dsn == "postgresql://ragmesh:ragmesh@127.0.0.1:15432/ragmesh"
    assert settings.neo4j_uri == "bolt://127.0.0.1:17687"
    assert settings.sandbox_addr == "127.0.0.1:60054"
    assert settings.ray_address == "127.0.0.1:56380"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_config_listens_where_the_stack_says(tmp_path: Path, service: str) -> None:
    try:
        module = importlib.import_module(f"{service}.config")
    except ModuleNotFoundError:
        pytest.skip(f"{service}.config does not exist yet")
    overrides: dict[str, Any] = {
        f"{service}_port": 61000 + SERVICE_NAMES.index(service),
        f"{service}_metrics_port": 61100 + SERVICE_NAMES.index(service),
    }
    stack = StackConfig(home=tmp_path, **overrides)
    config = module.Config.from_env(service_env(stack, StackLayout(tmp_path), service))
    assert (config.host, config.port) == ("127.0.0.1", stack.service_port(service))
    assert config.metrics_port == stack.metrics_port(service)
