"""Helpers of the ingest integration tests: svc_ingest served in-process or as its own process, and its stores' rows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.server import ServerConfig, start_server
from mesh.stack import StackConfig
from mesh.stack.layout import StackLayout
from mesh.stack.service_env import ray_client_env
from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import index_service_pb2_grpc as ipb_grpc
from svc_ingest.__main__ import bindings as ingest_bindings
from svc_ingest.clients.index import IndexClient
from svc_ingest.clients.postgres import DocumentRepository, JobRepository, create_pool
from svc_ingest.config import Config
from svc_ingest.jobs import JobManager
from tests.support import auth as test_auth
from tests.support.auth import as_service, auth_settings, bearer
from tests.support.stores import free_ports
from tests.support.tenants import new_tenant

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


@dataclass(frozen=True)
class Stores:
    """Addresses of the session's PostgreSQL and Neo4j."""

    postgres_dsn: str
    neo4j_uri: str
    neo4j_password: str


@dataclass
class Retrieval:
    """svc_retrieval served in-process: its address and an IndexService stub."""

    addr: str
    index: ipb_grpc.IndexServiceStub

    async def stats(self, tenant: str) -> ipb.GetIndexStatsResponse:
        """GetIndexStats for a tenant."""
        response: ipb.GetIndexStatsResponse = await self.index.GetIndexStats(
            ipb.GetIndexStatsRequest(), metadata=as_service(tenant), timeout=30
        )
        return response


def ingest_config(tmp: Path, **overrides: Any) -> Config:
    """svc_ingest config for tests: local Ray, small batches, graph off unless asked."""
    values: dict[str, Any] = {
        "port": 0,
        "ray_address": "local",
        "ray_num_cpus": 2,
        "parse_concurrency": 2,
        "embed_concurrency": 1,
        "embed_batch_size": 32,
        "graph_enabled": False,
        "heartbeat_s": 0.5,
        "progress_interval_s": 0.2,
        "staging_dir": tmp / "staging",
        "upload_dir": tmp / "uploads",
        "write_batch_documents": 4,
        "parse_timeout_s": 120.0,
    }
    values.update(overrides)
    return Config(**values)


@dataclass
class Ingest:
    """svc_ingest served in-process, with a stub that calls as ``tenant``."""

    manager: JobManager
    addr: str
    channel: grpc.aio.Channel
    stub: pb_grpc.IngestServiceStub
    tenant: str
    retrieval: Retrieval
    dsn: str

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the test's tenant."""
        return bearer(self.tenant)

    async def run(self, sources: list[str], **options: Any) -> pb.IngestJob:
        """Creates a job, follows its stream to the end and returns the final job."""
        created = await self.stub.CreateIngestJob(
            pb.CreateIngestJobRequest(sources=sources, options=pb.IngestOptions(**options)), metadata=self.md
        )
        return await self.follow(created.job.job_id)

    async def follow(self, job_id: str) -> pb.IngestJob:
        """Reads StreamIngestJob to its FINISHED event."""
        final = None
        async for event in self.stub.StreamIngestJob(pb.StreamIngestJobRequest(job_id=job_id), metadata=self.md):
            if event.type == pb.INGEST_EVENT_TYPE_FINISHED:
                final = event.job
        assert final is not None, "the stream ended without a FINISHED event"
        return final

    async def documents(self) -> list[pb.DocumentInfo]:
        """Every document of the tenant."""
        out: list[pb.DocumentInfo] = []
        token = ""
        while True:
            page = await self.stub.ListDocuments(
                pb.ListDocumentsRequest(page_size=500, page_token=token), metadata=self.md
            )
            out.extend(page.documents)
            token = page.next_page_token
            if not token:
                return out


@contextlib.asynccontextmanager
async def serve_ingest(config: Config, dsn: str, retrieval: Retrieval, inference_addr: str) -> AsyncIterator[Ingest]:
    """svc_ingest in-process on a free port over the given stores and services."""
    pool = await create_pool(dsn)
    index = IndexClient(retrieval.addr)
    manager = JobManager(
        config,
        inference_addr=inference_addr,
        documents=DocumentRepository(pool),
        jobs=JobRepository(pool),
        index=index,
        ray_address=config.ray_address,
    )
    await manager.start()
    server = await start_server(ingest_bindings(manager), ServerConfig(port=0), auth=auth_settings())
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Ingest(
            manager=manager,
            addr=f"127.0.0.1:{server.port}",
            channel=channel,
            stub=pb_grpc.IngestServiceStub(channel),  # type: ignore[no-untyped-call]
            tenant=new_tenant(),
            retrieval=retrieval,
            dsn=dsn,
        )
    finally:
        await channel.close(None)
        await server.stop(None)
        await manager.stop()
        await index.close()
        await pool.close()


async def table_rows(dsn: str, tenant: str) -> list[asyncpg.Record]:
    """The tenant's rows of ingest_documents."""
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch("SELECT * FROM ingest_documents WHERE tenant = $1 ORDER BY doc_id", tenant))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def ingest_subprocess(
    tmp: Path,
    dsn: str,
    retrieval: Retrieval,
    inference_addr: str,
    instance: str,
    ray: StackConfig,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[subprocess.Popen[bytes], pb_grpc.IngestServiceStub]]:
    """``python -m svc_ingest`` in its own process group, joined to ``ray``, ready to serve."""
    (port,) = free_ports(1)
    # The head's token file, not a token another Ray instance of this test session left in the environment.
    inherited = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN"}
    env = {
        **inherited,
        **ray_client_env(ray, StackLayout(ray.home)),
        "RAGMESH_INGEST_PORT": str(port),
        "RAGMESH_INGEST_RAY_ADDRESS": f"{ray.host}:{ray.ray_gcs_port}",
        "RAGMESH_INGEST_GRAPH_ENABLED": "false",
        "RAGMESH_INGEST_WRITE_BATCH_DOCUMENTS": "2",
        "RAGMESH_INGEST_HEARTBEAT_S": "0.5",
        "RAGMESH_INGEST_INSTANCE_ID": instance,
        "RAGMESH_INGEST_STAGING_DIR": str(tmp / "staging"),
        "RAGMESH_INGEST_UPLOAD_DIR": str(tmp / "uploads"),
        "RAGMESH_POSTGRES_DSN": dsn,
        "RAGMESH_RETRIEVAL_ADDR": retrieval.addr,
        "RAGMESH_INFERENCE_ADDR": inference_addr,
        # The test's own key, not the test stack's (scripts/test.sh exports that one for the e2e suites).
        "RAGMESH_AUTH_JWKS_FILE": str(test_auth.auth_settings().jwks_file),
        "RAGMESH_AUTH_ISSUER": test_auth.ISSUER,
        "RAGMESH_AUTH_AUDIENCE": test_auth.AUDIENCE,
        "RAGMESH_AUTH_INTERNAL_AUDIENCE": test_auth.INTERNAL_AUDIENCE,
        "RAGMESH_AUTH_SERVICE_TOKEN_FILE": str(test_auth.use_service_token()),
        **(extra_env or {}),
    }
    log = (tmp / f"svc_ingest-{uuid.uuid4().hex[:6]}.log").open("wb")
    proc = _spawn(env, log)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(240):
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.aio.AioRpcError:
                pass
            assert proc.poll() is None, (tmp / log.name).read_text()[-3000:]
            await asyncio.sleep(0.5)
        yield proc, pb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
    finally:
        await channel.close(None)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _spawn(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    """``python -m svc_ingest`` with ``env``, its output to ``log``."""
    # Its own session, so killing the group takes every process of the service down with it.
    return subprocess.Popen(
        [sys.executable, "-m", "svc_ingest"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
