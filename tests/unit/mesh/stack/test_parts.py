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
    RateLimitPart,
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
    assert launch.env["RAGMESH_AGENT_METRICS_PORT"] == "50065"
    assert [spec.port for spec in part.ports()] == [50055, 50065]
    assert part.metrics_url() == "http://127.0.0.1:50065/metrics"


def test_a_service_is_restarted_when_its_metrics_port_moves(config: StackConfig) -> None:
    layout = StackLayout(config.home)
    moved = dataclasses.replace(config, svc_agent_metrics_port=60065)
    assert (
        ServicePart("svc_agent", config, layout).fingerprint() != ServicePart("svc_agent", moved, layout).fingerprint()
    )
    assert (
        ServicePart("svc_ingest", config, layout).fingerprint()
        == ServicePart("svc_ingest", moved, layout).fingerprint()
    )


def test_every_fixed_port_of_the_stack_is_distinct(config: StackConfig) -> None:
    # The port-conflict check looks at one part at a time: two parts given the same default
    # would only clash at run time.
    ports = [spec.port for part in build_parts(config, StackLayout(config.home)).values() for spec in part.ports()]
    assert len(ports) == len(set(ports))


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


def test_missing_rate_limit_service_names_the_script(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path / "h", go_home=tmp_path / "no-go")
    with pytest.raises(MissingBinary) as caught:
        RateLimitPart(config, StackLayout(config.home)).ensure_installed(_say)
    text = str(caught.value)
    assert text.startswith(f"ratelimit: needs '{tmp_path / 'no-go' / 'bin' / 'ratelimit'}'")
    assert "scripts/install-go-tools.sh" in text


def _fake_go_home(tmp_path: Path) -> Path:
    """A go home whose bin/ratelimit is a fake (an executable that is never run)."""
    binary = tmp_path / "go" / "bin" / "ratelimit"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    return tmp_path / "go"


def test_rate_limit_service_is_configured_by_environment(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path / "h", go_home=_fake_go_home(tmp_path), redis_port=16379)
    part = RateLimitPart(config, StackLayout(config.home))
    assert part.requires == ("redis",)
    launch = part.launch()
    assert launch.argv == [str(tmp_path / "go" / "bin" / "ratelimit")]
    env = launch.env
    assert env["REDIS_SOCKET_TYPE"] == "tcp" and env["REDIS_URL"] == "127.0.0.1:16379"
    assert env["USE_STATSD"] == "false"
    assert (env["RUNTIME_ROOT"], env["RUNTIME_SUBDIRECTORY"], env["RUNTIME_WATCH_ROOT"]) == (
        str(config.home / "ratelimit" / "runtime"),
        ".",
        "false",
    )
    assert (env["PORT"], env["GRPC_PORT"], env["DEBUG_PORT"]) == ("58080", "58081", "58082")
    assert env["HOST"] == env["GRPC_HOST"] == env["DEBUG_HOST"] == "127.0.0.1"
    assert (env["USE_PROMETHEUS"], env["PROMETHEUS_ADDR"]) == ("true", "127.0.0.1:58083")
    assert [spec.port for spec in part.ports()] == [58080, 58081, 58082, 58083]
    assert part.address() == "127.0.0.1:58081"
    assert part.metrics_url() == "http://127.0.0.1:58083/metrics"


def test_rate_limit_service_gets_the_configured_limits_file(tmp_path: Path) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text(
        "domain: ragmesh\ndescriptors:\n  - key: tenant\n    rate_limit: {unit: hour, requests_per_unit: 3}\n"
    )
    config = StackConfig(home=tmp_path / "h", ratelimit_config_file=limits)
    layout = StackLayout(config.home)
    part = RateLimitPart(config, layout)
    stale = config.home / "ratelimit" / "runtime" / "config" / "old.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("domain: other\n")
    part.prepare(_say)
    assert sorted(p.name for p in stale.parent.iterdir()) == ["ragmesh.yaml"]
    assert (stale.parent / "ragmesh.yaml").read_text() == limits.read_text()


def test_rate_limit_service_refuses_a_file_for_another_domain(tmp_path: Path) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text("domain: envoy\ndescriptors: []\n")
    config = StackConfig(home=tmp_path / "h", ratelimit_config_file=limits)
    with pytest.raises(StackError, match="domain must be 'ragmesh'"):
        RateLimitPart(config, StackLayout(config.home)).prepare(_say)
    missing = StackConfig(home=tmp_path / "h", ratelimit_config_file=tmp_path / "nope.yaml")
    with pytest.raises(StackError, match="RAGMESH_RATELIMIT_CONFIG_FILE"):
        RateLimitPart(missing, StackLayout(missing.home)).prepare(_say)


def test_rate_limit_fingerprint_follows_the_limits_file(tmp_path: Path) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text("domain: ragmesh\ndescriptors: []\n")
    config = StackConfig(home=tmp_path / "h", go_home=_fake_go_home(tmp_path), ratelimit_config_file=limits)
    part = RateLimitPart(config, StackLayout(config.home))
    before = part.fingerprint()
    assert part.fingerprint() == before
    limits.write_text("domain: ragmesh\ndescriptors: []\n# changed\n")
    assert part.fingerprint() != before
