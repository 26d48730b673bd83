"""What the fault tests and ``ragmesh bench faults`` share: killing and healing parts of the running stack,
and counting what it stores.

Faults are injected into the stack ``ragmesh up`` started (the suite's own home
and ports): a part is killed with SIGKILL or stopped, and brought back the way
an operator would, with ``ragmesh up`` (the supervisor restarts what is down or
unhealthy and keeps the rest). Every test heals the stack before it ends, so
the tests after it find every part healthy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import redis

from mesh.settings import MeshSettings
from mesh.stack import StackConfig, Supervisor
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import index_service_pb2_grpc as ipb_grpc
from tests.bench import credentials
from tests.support.auth import stack_bearer
from tests.support.edge_limits import within_limits

#: How long ``ragmesh up`` may take to bring parts back (svc_inference loads its models: ~40 s on 2 cores).
HEAL_TIMEOUT_S = 300
ANSWER_CACHE_PREFIX = "ragmesh:agent:answer:v1"
FINISHED_JOB_STATES = (
    gpb.JOB_STATE_SUCCEEDED,
    gpb.JOB_STATE_PARTIAL_SUCCESS,
    gpb.JOB_STATE_FAILED,
    gpb.JOB_STATE_CANCELLED,
)


def ragmesh(*args: str, timeout_s: float = HEAL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """The ``ragmesh`` CLI in a fresh process, as an operator runs it (same RAGMESH_* settings)."""
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )


def status() -> dict[str, dict[str, object]]:
    """What ``ragmesh status --json`` shows, by part name (read in this process: the CLI starts slowly)."""
    return {part.name: part.as_json() for part in Supervisor(StackConfig.from_env()).status()}


def pid_of(part: str) -> int:
    pid = status()[part]["pid"]
    assert isinstance(pid, int), f"{part} is not running"
    return pid


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def kill(part: str, sig: signal.Signals = signal.SIGKILL, *, pid: int | None = None) -> int:
    """Sends ``sig`` to the part's process (SIGKILL: no goodbye); returns its pid once it is gone.

    Pass the ``pid`` (from :func:`pid_of`) when the moment matters: reading the status takes a while.
    """
    pid = pid or pid_of(part)
    os.kill(pid, sig)
    deadline = time.monotonic() + 30
    while not _gone(pid):
        assert time.monotonic() < deadline, f"{part} (pid {pid}) still runs 30 s after {sig.name}"
        time.sleep(0.05)
    return pid


def heal() -> dict[str, dict[str, object]]:
    """``ragmesh up``: what is down comes back; fails the test unless every part is healthy after it."""
    done = ragmesh("up")
    assert done.returncode == 0, f"ragmesh up failed:\n{done.stdout}\n{done.stderr}"
    after = status()
    unhealthy = {name: part["detail"] for name, part in after.items() if not part["healthy"]}
    assert not unhealthy, f"unhealthy after ragmesh up: {unhealthy}"
    return after


@contextlib.contextmanager
def healed_after() -> Iterator[None]:
    """Heals the stack when the block ends, however it ends (a failed assertion included).

    ``ragmesh up`` runs only when some part is not healthy (a test may have healed it already).
    """
    try:
        yield
    finally:
        if not all(part["healthy"] for part in status().values()):
            heal()


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A tenant with a small corpus ingested (the clean run other tenants' counts compare with)."""

    tenant: str
    channel: grpc.Channel
    folder: Path


def person(tenant: str) -> tuple[tuple[str, str], ...]:
    return stack_bearer(tenant, subject="faults")


# -- what the stack stores -------------------------------------------------------


def index_counts(settings: MeshSettings, tenant: str) -> dict[str, int]:
    """The tenant's points, document / chunk / entity nodes and relationships (IndexService, internal)."""
    with grpc.insecure_channel(settings.retrieval_addr) as channel:
        stub = ipb_grpc.IndexServiceStub(channel)  # type: ignore[no-untyped-call]
        stats = stub.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=credentials.service(tenant), timeout=30)
    return {
        "points": stats.points,
        "documents": stats.documents,
        "chunk_nodes": stats.chunk_nodes,
        "entity_nodes": stats.entity_nodes,
        "relationships": stats.relationships,
    }


def document_records(channel: grpc.Channel, tenant: str) -> list[str]:
    """The tenant's document records (ListDocuments through the edge), as source URIs."""
    stub = gpb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
    uris: list[str] = []
    token = ""
    while True:
        request = gpb.ListDocumentsRequest(page_size=100, page_token=token)
        page = within_limits(stub.ListDocuments, request, metadata=person(tenant), timeout=30)
        uris += [d.source_uri for d in page.documents]
        token = page.next_page_token
        if not token:
            return sorted(uris)


def answer_cache_keys(settings: MeshSettings, tenant: str) -> int:
    """Entries of the tenant in the agent's exact-match answer cache (Redis)."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return sum(1 for _ in client.scan_iter(f"{ANSWER_CACHE_PREFIX}:{tenant}:*", count=1000))
    finally:
        client.close()


def session_ids(channel: grpc.Channel, tenant: str) -> list[str]:
    """The test subject's chat sessions (ListSessions through the edge)."""
    stub = apb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
    page = within_limits(stub.ListSessions, apb.ListSessionsRequest(page_size=100), metadata=person(tenant), timeout=30)
    return sorted(s.session_id for s in page.sessions)


# -- ingest ----------------------------------------------------------------------


def write_corpus(folder: Path, documents: int, paragraphs: int = 3) -> Path:
    """``documents`` small Markdown files about made-up subjects (distinct text, so distinct chunks)."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(documents):
        body = "\n\n".join(
            f"The Zephyrine relay number {n} forwards batch {p} of telemetry to the harbour archive "
            f"every {n + p + 3} minutes, and its operators rotate the relay keys after {n * 7 + p} days."
            for p in range(paragraphs)
        )
        (folder / f"relay-{n:03d}.md").write_text(f"# Zephyrine relay {n}\n\n{body}\n", encoding="utf-8")
    return folder


def create_job(channel: grpc.Channel, tenant: str, folder: Path, *, skip_graph: bool = True) -> gpb.IngestJob:
    stub = gpb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
    request = gpb.CreateIngestJobRequest(sources=[str(folder)], options=gpb.IngestOptions(skip_graph=skip_graph))
    job: gpb.IngestJob = within_limits(stub.CreateIngestJob, request, metadata=person(tenant), timeout=30).job
    return job


def get_job(channel: grpc.Channel, tenant: str, job_id: str) -> gpb.IngestJob:
    stub = gpb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
    request = gpb.GetIngestJobRequest(job_id=job_id)
    job: gpb.IngestJob = within_limits(stub.GetIngestJob, request, metadata=person(tenant), timeout=30).job
    return job


def wait_job(channel: grpc.Channel, tenant: str, job_id: str, timeout_s: float = 300) -> gpb.IngestJob:
    """The job once it has ended (fails the test if it has not within ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = get_job(channel, tenant, job_id)
        if job.state in FINISHED_JOB_STATES:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {gpb.JobState.Name(job.state)} after {timeout_s} s"
        time.sleep(0.5)


def ingest(channel: grpc.Channel, tenant: str, folder: Path, *, skip_graph: bool = True) -> gpb.IngestJob:
    job = wait_job(channel, tenant, create_job(channel, tenant, folder, skip_graph=skip_graph).job_id)
    assert job.state == gpb.JOB_STATE_SUCCEEDED, f"{gpb.JobState.Name(job.state)}: {job.failure}"
    return job
