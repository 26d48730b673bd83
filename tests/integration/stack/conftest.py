"""Helpers for the local-stack integration tests: throwaway homes and free ports.

Every test stack runs in its own home under /tmp with ports picked at random,
so the tests never touch a developer's running stack (``.ragmesh`` on the
default ports).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.stack import StackConfig
from mesh.stack.config import SERVICE_NAMES
from tests.support.stores import free_ports, make_home

_PORT_FIELDS = (
    "postgres_port",
    "redis_port",
    "ratelimit_http_port",
    "ratelimit_grpc_port",
    "ratelimit_debug_port",
    "ratelimit_metrics_port",
    "neo4j_bolt_port",
    "neo4j_http_port",
    "ray_gcs_port",
    "ray_client_server_port",
    "ray_dashboard_agent_port",
    "envoy_listener_port",
    "envoy_admin_port",
    *(f"{name}_port" for name in SERVICE_NAMES),
    *(f"{name}_metrics_port" for name in SERVICE_NAMES),
)


def stack_config(home: Path, **overrides: Any) -> StackConfig:
    """A StackConfig for ``home`` with every port free and short timeouts for tests."""
    ports = dict(zip(_PORT_FIELDS, free_ports(len(_PORT_FIELDS)), strict=True))
    values: dict[str, Any] = {"home": home, "stop_timeout_s": 5.0, **ports}
    values.update(overrides)
    return StackConfig(**values)


@pytest.fixture(scope="session")
def make_stack_config() -> Callable[..., StackConfig]:
    """``make_stack_config(home, **overrides)``: see :func:`stack_config`."""
    return stack_config


@pytest.fixture(scope="session")
def new_home() -> Iterator[Callable[[], Path]]:
    """``new_home()`` makes a throwaway stack home; all of them are deleted after the session."""
    homes: list[Path] = []

    def make() -> Path:
        homes.append(make_home("rmit-"))
        return homes[-1]

    yield make
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def scratch_home(new_home: Callable[[], Path]) -> Path:
    return new_home()


def _require_system_parts() -> None:
    """Skip (with the fix) when the Debian packages the stack needs are not installed."""
    postgres = StackConfig().postgres_bin_dir / "postgres"
    missing = [name for name in ("redis-server", "java") if shutil.which(name) is None]
    if not postgres.exists():
        missing.append(str(postgres))
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run scripts/install-system-deps.sh")


@pytest.fixture(scope="session")
def system_parts() -> None:
    """Depend on this to skip when PostgreSQL, redis-server or Java are not installed."""
    _require_system_parts()
