"""Fault tests: one small corpus, ingested once for a tenant of this run; its counts are a clean run's."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from mesh.settings import MeshSettings
from tests.support import faults
from tests.support.faults import Corpus
from tests.support.tenants import new_tenant


@pytest.fixture(scope="session")
def corpus(settings: MeshSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    tenant = new_tenant("faults-chat")
    folder = faults.write_corpus(tmp_path_factory.mktemp("relays"), 6)
    with grpc.insecure_channel(settings.edge_addr) as channel:
        faults.ingest(channel, tenant, folder)
        yield Corpus(tenant, channel, folder)
