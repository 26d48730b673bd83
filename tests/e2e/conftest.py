"""e2e tests run against the stack `ragmesh up` started (addresses from RAGMESH_* settings)."""

from __future__ import annotations

import socket

import pytest

from mesh.settings import MeshSettings


@pytest.fixture(scope="session")
def settings() -> MeshSettings:
    s = MeshSettings.from_env()
    host, port = s.edge_addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.fail(f"the Envoy edge at {s.edge_addr} is not up: start the stack with `ragmesh up` (make test does)")
    return s
