"""Fault tests: one small corpus for the tests that chat, ingested once for a tenant of this run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from mesh.settings import MeshSettings
from tests.e2e.faults import harness


@dataclass(frozen=True)
class Corpus:
    """A tenant with the relay corpus ingested, and a channel to the edge."""

    tenant: str
    channel: grpc.Channel


@pytest.fixture(scope="session")
def corpus(settings: MeshSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    tenant = harness.new_tenant("chat")
    with grpc.insecure_channel(settings.edge_addr) as channel:
        harness.ingest(channel, tenant, harness.write_corpus(tmp_path_factory.mktemp("relays"), 6))
        yield Corpus(tenant, channel)
