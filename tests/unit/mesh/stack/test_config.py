from __future__ import annotations

import re
from pathlib import Path

import pytest

from mesh.config import ConfigError
from mesh.stack.config import DEFAULT_NEO4J_VERSION, PART_NAMES, SERVICE_NAMES, StackConfig, default_root_dir


def test_defaults_match_the_documented_ports() -> None:
    config = StackConfig.from_env({})
    assert config.postgres_port == 55432
    assert config.redis_port == 56379
    assert (config.neo4j_bolt_port, config.neo4j_http_port) == (57687, 57474)
    assert config.ray_gcs_port == 56380
    assert [config.service_port(name) for name in SERVICE_NAMES] == [50051, 50052, 50053, 50054, 50055]
    assert [config.metrics_port(name) for name in SERVICE_NAMES] == [50061, 50062, 50063, 50064, 50065]
    assert (config.envoy_listener_port, config.envoy_admin_port) == (8080, 9901)
    assert config.parts == PART_NAMES
    assert config.home == default_root_dir() / ".ragmesh"


def test_environment_overrides_fields(tmp_path: Path) -> None:
    config = StackConfig.from_env(
        {
            "RAGMESH_HOME": str(tmp_path),
            "RAGMESH_REDIS_PORT": "16379",
            "RAGMESH_PARTS": "postgres, redis",
            "RAGMESH_NEO4J_HEAP_MB": "256",
            "RAGMESH_NEO4J_AUTO_FETCH": "false",
        }
    )
    assert config.home == tmp_path
    assert config.redis_port == 16379
    assert config.parts == ("postgres", "redis")
    assert config.neo4j_heap_mb == 256
    assert config.neo4j_auto_fetch is False


def test_env_vars_round_trip(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path, redis_port=16379, parts=("redis",))
    assert StackConfig.from_env(config.env_vars()) == config


def test_unknown_part_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown part.*qdrant"):
        StackConfig.from_env({"RAGMESH_PARTS": "redis,qdrant"})


def test_sql_identifiers_are_checked() -> None:
    with pytest.raises(ConfigError, match="RAGMESH_POSTGRES_USER"):
        StackConfig(postgres_user="rag mesh; DROP")


def test_rate_limit_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        StackConfig(edge_rate_limit_fill_interval_s=0)
    with pytest.raises(ConfigError):
        StackConfig(edge_rate_limit_max_tokens=0)


def test_rate_limit_service_defaults() -> None:
    config = StackConfig.from_env({})
    assert (config.ratelimit_http_port, config.ratelimit_grpc_port, config.ratelimit_debug_port) == (
        58080,
        58081,
        58082,
    )
    assert config.ratelimit_config_file == default_root_dir() / "envoy" / "ratelimit" / "ragmesh.yaml"
    assert config.ratelimit_config_file.is_file()
    assert config.go_home == Path.home() / ".cache" / "ragmesh" / "go"
    assert PART_NAMES.index("redis") < PART_NAMES.index("ratelimit") < PART_NAMES.index("envoy")
    with pytest.raises(ConfigError, match="RAGMESH_EDGE_GLOBAL_RATE_LIMIT_TIMEOUT_S"):
        StackConfig(edge_global_rate_limit_timeout_s=0)


def test_go_tools_script_builds_into_the_configured_go_home() -> None:
    script = (default_root_dir() / "scripts" / "install-go-tools.sh").read_text()
    assert 'go_home="${RAGMESH_GO_HOME:-$HOME/.cache/ragmesh/go}"' in script
    assert "github.com/envoyproxy/ratelimit/src/service_cmd" in script
    assert "install_tool ratelimit " in script


def test_service_port_only_for_services() -> None:
    with pytest.raises(KeyError):
        StackConfig().service_port("redis")


def test_neo4j_lib_dir_is_versioned(tmp_path: Path) -> None:
    config = StackConfig(tools_dir=tmp_path, neo4j_version="5.26.1")
    assert config.neo4j_lib_dir == tmp_path / "neo4j" / "5.26.1" / "lib"


def test_fetch_script_pins_the_same_neo4j_version() -> None:
    script = (default_root_dir() / "scripts" / "fetch-neo4j.sh").read_text()
    match = re.search(r"NEO4J_VERSION:-([0-9.]+)\}", script)
    assert match is not None
    assert match.group(1) == DEFAULT_NEO4J_VERSION


def test_every_field_has_a_docstring() -> None:
    import ast
    import inspect

    from mesh.stack import config as config_module

    tree = ast.parse(inspect.getsource(config_module))
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "StackConfig"]
    body = cls.body
    checked = 0
    for index, node in enumerate(body):
        if not isinstance(node, ast.AnnAssign) or "ClassVar" in ast.unparse(node.annotation):
            continue
        name = ast.unparse(node.target)
        following = body[index + 1] if index + 1 < len(body) else None
        assert isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant), f"{name}: no docstring"
        checked += 1
    assert checked > 30
