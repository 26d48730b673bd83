"""svc_sandbox's Config and the SandboxSettings it nests: environment parsing, defaults and contradictory settings."""

from __future__ import annotations

import dataclasses

import pytest

from mesh.config import ConfigError
from svc_sandbox.config import Config
from svc_sandbox.domain.settings import SandboxSettings


def test_defaults_are_consistent() -> None:
    config = SandboxSettings()
    assert config.default_wall_timeout_ms <= config.max_wall_timeout_ms
    assert config.min_memory_bytes <= config.default_memory_bytes <= config.max_memory_bytes
    assert config.max_code_bytes == 64 * 1024
    assert not config.allow_insecure_no_isolation


def test_reads_the_sandbox_prefix_from_the_environment() -> None:
    config = Config.from_env(
        {
            "RAGMESH_SANDBOX_MAX_WALL_TIMEOUT_MS": "9000",
            "RAGMESH_SANDBOX_ALLOW_INSECURE_NO_ISOLATION": "true",
            "RAGMESH_SANDBOX_BWRAP_PATH": "/opt/bwrap",
            "RAGMESH_SANDBOX_PORT": "1234",  # the server's field, not ours
        }
    ).settings
    assert config.max_wall_timeout_ms == 9000
    assert config.allow_insecure_no_isolation
    assert config.bwrap_path == "/opt/bwrap"


def test_server_and_sandbox_configs_do_not_share_field_names() -> None:
    server = {f.name for f in dataclasses.fields(Config)} - {"settings"}
    sandbox = {f.name for f in dataclasses.fields(SandboxSettings)}
    assert not server & sandbox


@pytest.mark.parametrize(
    "changes",
    [
        {"default_wall_timeout_ms": 10, "max_wall_timeout_ms": 5},
        {"min_memory_bytes": 10 * 1024**3},
        {"default_output_bytes": 0},
        {"max_processes": 0},
        {"max_queued_executions": -1},
    ],
)
def test_contradictory_settings_fail_at_startup(changes: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        Config(settings=SandboxSettings(**changes))  # type: ignore[arg-type]


def test_concurrency_defaults_to_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert SandboxSettings().effective_concurrency == 6
    assert SandboxSettings(max_concurrent_executions=3).effective_concurrency == 3
