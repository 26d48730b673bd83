"""e2e tests run against the stack `ragmesh up` started (addresses from RAGMESH_* settings)."""

from __future__ import annotations

import socket

import pytest

from mesh.settings import MeshSettings
from tests.support import sdk_corpus as sdk_corpus_support


@pytest.fixture(scope="session")
def settings() -> MeshSettings:
    s = MeshSettings.from_env()
    host, port = s.edge_addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.fail(f"the Envoy edge at {s.edge_addr} is not up: start the stack with `ragmesh up` (make test does)")
    return s


@pytest.fixture(scope="session")
def sample_corpus_tenant(settings: MeshSettings) -> str:
    """A tenant with the project's sample corpus ingested (the agent e2e tests' tenant: ingest is idempotent)."""
    import asyncio

    from tests.bench.bench_agent import ingest_samples

    tenant = "e2e-agent"
    asyncio.run(ingest_samples(settings, tenant))
    return tenant


@pytest.fixture(scope="session")
def sdk_corpus(settings: MeshSettings, tmp_path_factory: pytest.TempPathFactory) -> sdk_corpus_support.Corpus:
    """The SDK tests' two documents, ingested for their tenant through the SDK (once a session)."""
    import asyncio

    return asyncio.run(sdk_corpus_support.ingest(settings.edge_addr, tmp_path_factory.mktemp("sdk-corpus")))
