"""Throwaway stores for integration tests, started by the local stack's supervisor.

Each runs in a home of its own under /tmp on ports picked at random, so the
tests never touch a developer's running stack (``.ragmesh`` on the default ports).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from mesh.stack import StackConfig, Supervisor

# Ports the tests pick come from below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by
# default): a port taken from that range can be handed to some outgoing connection (Ray opens many) in the
# moment a part is restarted, and the restart then finds its own port in use.
_TEST_PORT_RANGE = (20000, 30000)


def free_ports(count: int) -> list[int]:
    """Free ports outside the ephemeral range (held together while picking, so they differ)."""
    rng = random.SystemRandom()
    with contextlib.ExitStack() as stack:
        picked: list[int] = []
        while len(picked) < count:
            port = rng.randrange(*_TEST_PORT_RANGE)
            if port in picked:
                continue
            sock = stack.enter_context(socket.socket())
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            picked.append(port)
        return picked


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
