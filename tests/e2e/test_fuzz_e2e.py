"""Descriptor-drawn requests to every public RPC through the edge: never INTERNAL or UNKNOWN, nothing internal leaks.

A small budget for CI; ``ragmesh bench fuzz`` runs the same fuzzer at full budget.
Requests carry a valid token of the fuzz tenant, so they reach the services; ingest
sources name a folder that does not exist, so no job reads real files.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import grpc
import pytest

from mesh.settings import MeshSettings
from tests.support import edge_fuzz
from tests.support.auth import stack_bearer

pytestmark = pytest.mark.e2e

EXAMPLES_PER_RPC = 12
# StreamChat: a valid-shaped message starts a model generation; a few calls, each cut short.
CHAT_EXAMPLES = 5
TIMEOUT_S = 5.0
CHAT_TIMEOUT_S = 2.0


def _pids() -> dict[str, int | None]:
    done = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "status", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    pids = edge_fuzz.part_pids(json.loads(done.stdout))
    assert pids, "ragmesh status --json listed no parts"
    return pids


def test_fuzzed_requests_never_internal_and_services_stay_healthy(settings: MeshSettings) -> None:
    rpcs = edge_fuzz.public_rpcs()
    assert {r.name.split("/")[0] for r in rpcs} == {
        "ragmesh.agent.v1.AgentService",
        "ragmesh.ingest.v1.IngestService",
        "ragmesh.retrieval.v1.RetrievalService",
        "ragmesh.sandbox.v1.SandboxService",
    }
    pids_before = _pids()
    metadata = stack_bearer(edge_fuzz.TENANT, subject="fuzzer", roles=edge_fuzz.ROLES)
    pacer = edge_fuzz.Pacer()
    counts: dict[str, collections.Counter[str]] = {}
    problems: list[str] = []
    with grpc.insecure_channel(settings.edge_addr) as channel:
        for rpc in rpcs:
            seen = counts.setdefault(rpc.name, collections.Counter())
            timeout_s = edge_fuzz.timeout_for(rpc, TIMEOUT_S, CHAT_TIMEOUT_S)

            def send(
                bodies: list[bytes],
                rpc: edge_fuzz.Rpc = rpc,
                seen: collections.Counter[str] = seen,
                timeout_s: float = timeout_s,
            ) -> None:
                pacer.wait(rpc.family)
                outcome = edge_fuzz.call(channel, rpc, bodies, metadata, timeout_s)
                seen[outcome.code] += 1
                if outcome.problem is not None:
                    problems.append(f"{rpc.name} {[b[:64] for b in bodies]!r}: {outcome.problem}")

            edge_fuzz.fuzz(rpc, CHAT_EXAMPLES if rpc.family == "chat" else EXAMPLES_PER_RPC, send)
        health = edge_fuzz.health(channel)
    print(json.dumps({name: dict(c) for name, c in counts.items()}, indent=1, sort_keys=True))
    assert not problems, "\n".join(problems[:20])
    # Every RPC was fuzzed, and at least some requests reached past the edge's refusals.
    assert all(sum(c.values()) > 0 for c in counts.values())
    assert sum(c["INVALID_ARGUMENT"] for c in counts.values()) > 0
    assert health == dict.fromkeys(edge_fuzz.UPSTREAMS, "SERVING")
    assert edge_fuzz.restarted(pids_before, _pids()) == []
