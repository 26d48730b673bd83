"""The ingest pipeline over a multi-node Ray cluster: a head and two worker nodes on this machine.

The nodes are the stack's own parts (``ragmesh up --ray-workers 2``): ``ray_worker_1`` in group
``parse``, ``ray_worker_2`` in group ``embed``, each offering its group's custom resource and no
plain CPUs. svc_ingest runs as its own process joined to the head, as in the stack. A job's parse
tasks and embedding actors land on the two nodes and its report says so; killing the embed node
mid-job leaves a job that a rerun (with the node back, as KubeRay replaces a pod) completes with
exactly the index of a clean run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.stack import StackConfig, Supervisor
from mesh.stack.process import running_record
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
    # Setup included: on a shared 2-core runner at load 30 the session fixtures alone took 8 minutes.
    pytest.mark.timeout(3600),
]
DOCS = 8
KILL_AFTER = 2
NODES = ["ray", "ray_worker_1", "ray_worker_2"]
# The job gives up on a group whose nodes are all gone after this long (the default waits minutes
# for an autoscaler that this machine does not have).
LOST_TIMEOUT_S = 5


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[StackConfig]:
    """A Ray head and worker nodes ray_worker_1 (parse) and ray_worker_2 (embed), started by the supervisor.

    Session-scoped so that it starts before the other session fixtures (Neo4j, the models) load the machine.
    """
    gcs, client, agent, workers = free_ports(4)
    with started_stores(
        "rmnodes",
        NODES,
        ray_gcs_port=gcs,
        ray_client_server_port=client,
        ray_dashboard_agent_port=agent,
        ray_worker_port_base=workers,
        ray_workers=2,
        ray_num_cpus=2,
        ray_object_store_mb=200,
        # A shared 2-core runner at load 20-30 took more than the default 90 s to start a head.
        ray_ready_timeout_s=300,
        ray_worker_ready_timeout_s=300,
    ) as config:
        yield config


def _md(tenant: str) -> tuple[tuple[str, str], ...]:
    return bearer(tenant)


def _corpus(tmp: Path) -> str:
    for page in sorted((SAMPLES / "k8s").rglob("*.md"))[:DOCS]:
        target = tmp / "corpus" / page.relative_to(SAMPLES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target)
    return str(tmp / "corpus")


async def _create(stub: pb_grpc.IngestServiceStub, tenant: str, corpus: str) -> str:
    created = await stub.CreateIngestJob(
        pb.CreateIngestJobRequest(sources=[corpus], options=pb.IngestOptions(skip_graph=True)), metadata=_md(tenant)
    )
    return str(created.job.job_id)


async def _wait(stub: pb_grpc.IngestServiceStub, tenant: str, job_id: str) -> pb.IngestJob:
    final = None
    async for event in stub.StreamIngestJob(pb.StreamIngestJobRequest(job_id=job_id), metadata=_md(tenant)):
        final = event.job
    assert final is not None
    return final


def _by_stage(job: pb.IngestJob) -> dict[str, list[pb.NodeWork]]:
    stages: dict[str, list[pb.NodeWork]] = {}
    for work in job.counts.placement:
        stages.setdefault(work.stage, []).append(work)
    return stages


def _check_placement(job: pb.IngestJob) -> None:
    """Parse work on ray_worker_1 (group parse) only, embed work on ray_worker_2 (group embed) only."""
    stages = _by_stage(job)
    assert set(stages) == {"parse", "embed"}, job.counts.placement
    parse, embed = stages["parse"], stages["embed"]
    assert {(w.node_name, w.node_group) for w in parse} == {("ray_worker_1", "parse")}, parse
    assert {(w.node_name, w.node_group) for w in embed} == {("ray_worker_2", "embed")}, embed
    assert {w.node_id for w in parse}.isdisjoint({w.node_id for w in embed})
    assert sum(w.items for w in parse) == job.counts.documents_ingested + job.counts.documents_failed
    assert sum(w.items for w in embed) == job.counts.chunks_embedded


def _kill_node(config: StackConfig, part: str) -> None:
    """SIGKILL to the node's whole process group (ray start, raylet, object store, workers): a lost machine."""
    record = running_record(Supervisor(config).parts[part].pid_file)
    assert record is not None, f"{part} is not running"
    os.killpg(record.pid, signal.SIGKILL)


async def test_stages_on_worker_groups_and_killed_node_rerun_matches_clean_run(
    ray_cluster: StackConfig, tmp_path: Path, migrated: str, retrieval: Retrieval, inference_addr: str
) -> None:
    corpus = _corpus(tmp_path)
    clean, killed = new_tenant("t-clean"), new_tenant("t-killed")
    env = {
        "RAGMESH_INGEST_RAY_GROUP_LOST_TIMEOUT_S": str(LOST_TIMEOUT_S),
        "RAGMESH_INGEST_EMBED_BATCH_SIZE": "16",
        "RAGMESH_INGEST_WRITE_BATCH_DOCUMENTS": "1",
    }
    instance = "nodes-test-" + uuid.uuid4().hex[:8]
    async with ingest_subprocess(
        tmp_path, migrated, retrieval, inference_addr, instance, ray_cluster, extra_env=env
    ) as (_, stub):
        reference = await _wait(stub, clean, await _create(stub, clean, corpus))
        assert reference.state == pb.JOB_STATE_SUCCEEDED, reference.failure
        assert reference.counts.documents_ingested == DOCS
        _check_placement(reference)
        stored = (await stub.GetIngestJob(pb.GetIngestJobRequest(job_id=reference.job_id), metadata=_md(clean))).job
        assert list(stored.counts.placement) == list(reference.counts.placement)

        job_id = await _create(stub, killed, corpus)
        for _ in range(2400):
            job = (await stub.GetIngestJob(pb.GetIngestJobRequest(job_id=job_id), metadata=_md(killed))).job
            if job.counts.documents_ingested >= KILL_AFTER or job.state != pb.JOB_STATE_RUNNING:
                break
            await asyncio.sleep(0.1)
        assert job.state == pb.JOB_STATE_RUNNING, "the job ended before the node could be killed"
        assert KILL_AFTER <= job.counts.documents_ingested < DOCS
        _kill_node(ray_cluster, "ray_worker_2")
        interrupted = await _wait(stub, killed, job_id)
        # Either the job gives the lost group up (the usual case) or Ray had already moved
        # everything past the embed stage; both leave state that a rerun completes.
        if interrupted.state == pb.JOB_STATE_FAILED:
            assert "worker group 'embed'" in interrupted.failure or "pipeline failed" in interrupted.failure
        else:
            assert interrupted.state == pb.JOB_STATE_SUCCEEDED, interrupted.failure
        assert interrupted.counts.documents_ingested < DOCS or interrupted.state == pb.JOB_STATE_SUCCEEDED

        # The node comes back (KubeRay would start a new pod): a new Ray node under the same name.
        Supervisor(ray_cluster).up(["ray_worker_2"], with_deps=False)
        rerun = await _wait(stub, killed, await _create(stub, killed, corpus))

    assert rerun.state == pb.JOB_STATE_SUCCEEDED, rerun.failure
    assert rerun.counts.documents_unchanged + rerun.counts.documents_ingested == DOCS
    assert rerun.counts.documents_unchanged >= KILL_AFTER
    if rerun.counts.documents_ingested:
        _check_placement(rerun)
    after_kill, after_clean = await retrieval.stats(killed), await retrieval.stats(clean)
    for field in ("points", "documents", "chunk_nodes", "entity_nodes", "relationships"):
        assert getattr(after_kill, field) == getattr(after_clean, field), field
    killed_rows, clean_rows = await table_rows(migrated, killed), await table_rows(migrated, clean)
    assert len(killed_rows) == len(clean_rows) == DOCS
    assert all(r["status"] == "INDEXED" for r in killed_rows)
    assert sorted((r["doc_id"], r["content_hash"], r["chunk_count"]) for r in killed_rows) == sorted(
        (r["doc_id"], r["content_hash"], r["chunk_count"]) for r in clean_rows
    )
