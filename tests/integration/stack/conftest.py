"""Helpers for the local-stack integration tests: throwaway homes and free ports.

Every test stack runs in its own home under /tmp with ports picked at random,
so the tests never touch a developer's running stack (``.ragmesh`` on the
default ports).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.stack import StackConfig
from mesh.stack.config import SERVICE_NAMES

_PORT_FIELDS = (
    "postgres_port",
    "redis_port",
    "neo4j_bolt_port",
    "neo4j_http_port",
    "ray_gcs_port",
    "ray_client_server_port",
    "ray_dashboard_agent_port",
    "envoy_listener_port",
    "envoy_admin_port",
    *(f"{name}_port" for name in SERVICE_NAMES),
)


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held together while picking, so they differ)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def make_home() -> Path:
    """A short home under /tmp that the postgres OS user can traverse (pytest's tmp dirs are 0700)."""
    home = Path(tempfile.mkdtemp(prefix="rmit-", dir="/tmp"))
    home.chmod(0o755)
    return home


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
        homes.append(make_home())
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
