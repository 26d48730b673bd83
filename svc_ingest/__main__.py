"""``python -m svc_ingest``: serve document ingestion through a Ray Data pipeline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mesh import migrations
from mesh.server import ServiceBinding, serve_opened
from mesh.settings import MeshSettings
from ragmesh.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from svc_ingest import servicer
from svc_ingest.clients.index import IndexClient
from svc_ingest.clients.postgres import DocumentRepository, JobRepository, create_pool
from svc_ingest.config import Config
from svc_ingest.jobs import JobManager


def bindings(manager: JobManager) -> list[ServiceBinding]:
    """The services this process serves."""
    return [
        ServiceBinding(
            full_name=ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
            add_to_server=ingest_service_pb2_grpc.add_IngestServiceServicer_to_server,
            servicer=servicer.IngestServiceServicer(manager),
        ),
    ]


@contextlib.asynccontextmanager
async def running(config: Config, settings: MeshSettings) -> AsyncIterator[JobManager]:
    """Opens Postgres (migrated), the index channel and the job manager; closes them in reverse."""
    if config.migrate_on_start:
        await migrations.apply_dsn(settings.postgres_dsn)
    pool = await create_pool(settings.postgres_dsn, timeout_s=config.store_timeout_s)
    index = IndexClient(settings.retrieval_addr, upsert_timeout_s=config.upsert_timeout_s)
    manager = JobManager(
        config,
        inference_addr=settings.inference_addr,
        documents=DocumentRepository(pool, config.store_timeout_s),
        jobs=JobRepository(pool, config.store_timeout_s),
        index=index,
        ray_address=config.ray_address,
    )
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()
        await index.close()
        await pool.close()


def main() -> None:
    """Runs the service until SIGTERM/SIGINT."""
    config = Config.from_env()
    settings = MeshSettings.from_env()
    asyncio.run(serve_opened("svc_ingest", lambda: running(config, settings), bindings, config))


if __name__ == "__main__":
    main()
