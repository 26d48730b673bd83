"""A job whose process is killed part-way, run again, ends with exactly the counts of a clean run."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.stack import StackConfig
from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from tests.support.auth import bearer
from tests.support.ingest import SAMPLES, Retrieval, ingest_subprocess, table_rows
from tests.support.stores import free_ports, started_stores
from tests.support.tenants import new_tenant

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(1800),
]
DOCS = 14
KILL_AFTER = 4


@pytest.fixture(scope="module")
def ray_head() -> Iterator[StackConfig]:
    """A Ray head started as ``ragmesh up`` starts it (token auth), shared by both service processes.

    The service is the Ray driver: killing it ends its job's tasks on the head, as a killed
    ingest pod does on a KubeRay cluster, while the head itself lives on.
    """
    gcs, client, agent = free_ports(3)
    with started_stores(
        "rmcrash", ["ray"], ray_gcs_port=gcs, ray_client_server_port=client, ray_dashboard_agent_port=agent
    ) as config:
        yield config


def _md(tenant: str) -> tuple[tuple[str, str], ...]:
    return bearer(tenant)


async def _finish(stub: pb_grpc.IngestServiceStub, tenant: str, sources: list[str]) -> pb.IngestJob:
    created = await stub.CreateIngestJob(
        pb.CreateIngestJobRequest(sources=sources, options=pb.IngestOptions(skip_graph=True)), metadata=_md(tenant)
    )
    final = None
    async for event in stub.StreamIngestJob(pb.StreamIngestJobRequest(job_id=created.job.job_id), metadata=_md(tenant)):
        final = event.job
    assert final is not None
    return final


async def test_killed_job_rerun_matches_clean_run(
    tmp_path: Path, migrated: str, retrieval: Retrieval, inference_addr: str, ray_head: StackConfig
) -> None:
    pages = sorted((SAMPLES / "k8s").rglob("*.md"))[:DOCS]
    for page in pages:
        target = tmp_path / "corpus" / page.relative_to(SAMPLES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target)
    corpus = str(tmp_path / "corpus")
    crashed, clean = new_tenant("t-crash"), new_tenant("t-clean")
    instance = "crash-test-" + uuid.uuid4().hex[:8]

    async with ingest_subprocess(tmp_path, migrated, retrieval, inference_addr, instance, ray_head) as (proc, stub):
        created = await stub.CreateIngestJob(
            pb.CreateIngestJobRequest(sources=[corpus], options=pb.IngestOptions(skip_graph=True)),
            metadata=_md(crashed),
        )
        job_id = created.job.job_id
        for _ in range(1200):
            job = (await stub.GetIngestJob(pb.GetIngestJobRequest(job_id=job_id), metadata=_md(crashed))).job
            if job.counts.documents_ingested >= KILL_AFTER:
                break
            await asyncio.sleep(0.25)
        total = job.counts.files_discovered
        assert KILL_AFTER <= job.counts.documents_ingested < total, "the job ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partial_points = (await retrieval.stats(crashed)).points
    assert partial_points > 0

    async with ingest_subprocess(tmp_path, migrated, retrieval, inference_addr, instance, ray_head) as (_, stub):
        killed = (await stub.GetIngestJob(pb.GetIngestJobRequest(job_id=job_id), metadata=_md(crashed))).job
        assert killed.state == pb.JOB_STATE_FAILED
        assert "interrupted" in killed.failure
        resumed = await _finish(stub, crashed, [corpus])
        reference = await _finish(stub, clean, [corpus])

    assert resumed.state == pb.JOB_STATE_SUCCEEDED, resumed.failure
    assert reference.state == pb.JOB_STATE_SUCCEEDED, reference.failure
    assert resumed.counts.documents_unchanged >= KILL_AFTER
    assert resumed.counts.documents_unchanged + resumed.counts.documents_ingested == total
    after_crash, after_clean = await retrieval.stats(crashed), await retrieval.stats(clean)
    for field in ("points", "documents", "chunk_nodes", "entity_nodes", "relationships"):
        assert getattr(after_crash, field) == getattr(after_clean, field), field
    crashed_rows = await table_rows(migrated, crashed)
    clean_rows = await table_rows(migrated, clean)
    assert len(crashed_rows) == len(clean_rows) == total
    assert all(r["status"] == "INDEXED" and r["doc_version"] == 1 for r in crashed_rows)
    assert sorted((r["doc_id"], r["content_hash"], r["chunk_count"]) for r in crashed_rows) == sorted(
        (r["doc_id"], r["content_hash"], r["chunk_count"]) for r in clean_rows
    )
