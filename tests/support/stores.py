"""Throwaway stores for integration tests, started by the local stack's supervisor.

Each runs in a home of its own under /tmp on ports picked at random, so the
tests never touch a developer's running stack (``.ragmesh`` on the default ports).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from mesh.stack import StackConfig, Supervisor


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held together while picking, so they differ)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def make_home(prefix: str) -> Path:
    """A short home under /tmp that the postgres OS user can traverse (pytest's tmp dirs are 0700)."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    home.chmod(0o755)
    return home


@contextlib.contextmanager
def started_stores(prefix: str, services: Sequence[str], **ports: int) -> Iterator[StackConfig]:
    """Starts ``services`` alone on ``ports`` (StackConfig port fields) in a new home; stops and deletes them after."""
    home = make_home(prefix)
    config = StackConfig(home=home, stop_timeout_s=10.0, **ports)  # type: ignore[arg-type]
    supervisor = Supervisor(config)
    try:
        supervisor.up(list(services), with_deps=False)
        yield config
    finally:
        supervisor.down(list(services), purge=True)
        shutil.rmtree(home, ignore_errors=True)
