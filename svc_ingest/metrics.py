"""Prometheus metrics of svc_ingest, beside the RPC metrics of mesh.metrics.

Files and chunks are counted when a job ends (its final counts), so their rate is
per job, not per file as it happens; the queue gauges move as jobs wait and run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from prometheus_client import Counter, Gauge

from svc_ingest.domain.model import Job

JOBS = Counter("ragmesh_ingest_jobs_total", "Ingest jobs ended, by final state.", ("state",))
FILES = Counter(
    "ragmesh_ingest_files_total",
    "Files of ended jobs, by outcome: ingested, unchanged (skipped) or failed.",
    ("outcome",),
)
CHUNKS = Counter("ragmesh_ingest_chunks_embedded_total", "Chunks embedded and written by ended jobs.")
JOBS_WAITING = Gauge("ragmesh_ingest_jobs_waiting", "Jobs waiting for a free job slot (the ingest queue depth).")
JOBS_RUNNING = Gauge("ragmesh_ingest_jobs_running", "Jobs holding a job slot now.")


@contextlib.asynccontextmanager
async def job_slot(slots: asyncio.Semaphore) -> AsyncIterator[None]:
    """Holds one of ``slots`` for a job, counted as waiting until it has it and as running while it holds it."""
    JOBS_WAITING.inc()
    try:
        await slots.acquire()
    finally:
        JOBS_WAITING.dec()
    JOBS_RUNNING.inc()
    try:
        yield
    finally:
        JOBS_RUNNING.dec()
        slots.release()


def observe_end(job: Job) -> None:
    """Counts what one ended job did."""
    counts = job.counts
    JOBS.labels(job.state.value).inc()
    FILES.labels("ingested").inc(counts.documents_ingested)
    FILES.labels("unchanged").inc(counts.documents_unchanged)
    FILES.labels("failed").inc(counts.documents_failed)
    CHUNKS.inc(counts.chunks_embedded)
