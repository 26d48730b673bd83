"""What each part would run, and how it explains what is missing (no processes are started)."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pytest

from mesh.stack.binaries import envoy_binary
from mesh.stack.config import StackConfig
from mesh.stack.errors import MissingBinary, StackError
from mesh.stack.layout import StackLayout
from mesh.stack.parts import (
    EnvoyPart,
    Neo4jPart,
    PostgresPart,
    RayPart,
    RedisPart,
    ServicePart,
    build_parts,
)


def _say(_message: str) -> None:
    pass


@pytest.fixture
def config(tmp_path: Path) -> StackConfig:
    return StackConfig(home=tmp_path / "home", tools_dir=tmp_path / "tools")


def test_every_part_has_a_log_pid_file_and_address(config: StackConfig) -> None:
    layout = StackLayout(config.home)
    for name, part in build_parts(config, layout).items():
        assert part.name == name
        assert part.log_file == config.home / "logs" / f"{name}.log"
        assert part.pid_file == config.home / "run" / f"{name}.pid"
        assert part.address()
        assert part.ports()
        assert part.ready_timeout_s > 0


def test_missing_postgres_names_the_package(config: StackConfig, tmp_path: Path) -> None:
    part = PostgresPart(StackConfig(home=config.home, postgres_bin_dir=tmp_path / "nope"), StackLayout(config.home))
    with pytest.raises(MissingBinary) as caught:
        part.ensure_installed(_say)
    text = str(caught.value)
    assert text.startswith("postgres: needs")
    assert "install-system-deps.sh" in text and "postgresql" in text


def test_missing_redis_names_the_package(config: StackConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingBinary, match="apt-get install redis-server"):
        RedisPart(config, StackLayout(config.home)).ensure_installed(_say)


def test_missing_neo4j_jars_say_which_command_fetches_them(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path / "h", tools_dir=tmp_path / "t", neo4j_auto_fetch=False)
    with pytest.raises(StackError) as caught:
        Neo4jPart(config, StackLayout(config.home)).ensure_installed(_say)
    text = str(caught.value)
    assert "neo4j: the Neo4j" in text
    assert f"NEO4J_LIB_DIR={config.neo4j_lib_dir}" in text
    assert "scripts/fetch-neo4j.sh" in text


def test_service_without_main_module_is_explained(config: StackConfig) -> None:
    part = ServicePart("svc_does_not_exist", config, StackLayout(config.home))
    with pytest.raises(StackError, match=r"`python -m svc_does_not_exist` cannot run"):
        part.ensure_installed(_say)


def test_envoy_binary_comes_from_the_wheel() -> None:
    path = envoy_binary()
    assert path.name == "envoy" and path.parent.name == "_bin"
    assert os.access(path, os.X_OK)


def test_envoy_launch(config: StackConfig) -> None:
    launch = EnvoyPart(config, StackLayout(config.home)).launch()
    assert launch.argv[1:3] == ["-c", str(config.home / "envoy" / "envoy.yaml")]
    assert "--disable-hot-restart" in launch.argv


def test_ray_head_is_lean_and_token_protected(config: StackConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "left-by-another-ray-instance")
    launch = RayPart(config, StackLayout(config.home)).launch()
    argv = launch.argv
    assert argv[1:4] == ["start", "--head", "--block"]
    for flag in (
        "--port=56380",
        "--num-cpus=4",
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--ray-client-server-port=56381",
        "--dashboard-agent-listen-port=56382",
        f"--temp-dir={StackLayout(config.home).ray_temp_dir}",
    ):
        assert flag in argv
    assert launch.env["RAY_AUTH_MODE"] == "token"
    assert launch.env["RAY_AUTH_TOKEN_PATH"] == str(config.home / "secrets" / "ray-auth-token")
    assert "RAY_AUTH_TOKEN" not in launch.env, "the stack's token file must be the only token"
    assert "RAY_ADDRESS" not in launch.env
    assert launch.env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] == "0"


def test_postgres_runs_fast_shutdown_and_never_as_root(config: StackConfig) -> None:
    part = PostgresPart(config, StackLayout(config.home))
    assert part.stop_signal == signal.SIGINT
    argv = part.launch().argv
    if os.geteuid() == 0:
        assert argv[0].endswith("setpriv")
        assert "--reuid=postgres" in argv
    assert "listen_addresses=127.0.0.1" in argv
    assert "port=55432" in argv


def test_services_require_the_stores(config: StackConfig) -> None:
    part = ServicePart("svc_agent", config, StackLayout(config.home))
    assert set(part.requires) == {"postgres", "redis", "neo4j", "ray"}
    launch = part.launch()
    assert launch.argv[1:] == ["-m", "svc_agent"]
    assert launch.env["RAGMESH_AGENT_PORT"] == "50055"


def test_fingerprint_follows_command_and_config(config: StackConfig) -> None:
    layout = StackLayout(config.home)
    changed = dataclasses.replace(config, edge_rate_limit_max_tokens=5)
    assert EnvoyPart(config, layout).fingerprint() == EnvoyPart(config, layout).fingerprint()
    assert EnvoyPart(config, layout).fingerprint() != EnvoyPart(changed, layout).fingerprint()
    assert RedisPart(config, layout).fingerprint() == RedisPart(changed, layout).fingerprint()
    assert (
        RedisPart(config, layout).fingerprint()
        != RedisPart(dataclasses.replace(config, redis_port=1), layout).fingerprint()
    )
    heap = dataclasses.replace(config, neo4j_heap_mb=256)
    assert Neo4jPart(config, layout).fingerprint() != Neo4jPart(heap, layout).fingerprint()


def test_missing_java_names_the_package(config: StackConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingBinary, match="openjdk-17-jre-headless"):
        Neo4jPart(config, StackLayout(config.home)).ensure_installed(_say)


def test_missing_bwrap_names_the_package(config: StackConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    part = ServicePart("svc_sandbox", config, StackLayout(config.home))
    try:
        part.ensure_installed(_say)
    except MissingBinary as exc:
        assert exc.binary == "bwrap"
        assert "bubblewrap" in str(exc)
    except StackError as exc:
        pytest.skip(f"svc_sandbox cannot run yet: {exc}")
    else:
        pytest.fail("bwrap should be missing with an empty PATH")
