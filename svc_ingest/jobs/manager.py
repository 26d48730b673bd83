"""JobManager: creating, watching and cancelling ingest jobs; deleting and listing documents.

A job runs in this process as an asyncio task (``JobRun``) with the tenant bound as
its request context, so every downstream call carries it. A job whose owner stops
saving its heartbeat is marked FAILED ("run it again to resume") by whichever
instance notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mesh.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PermissionDenied
from svc_ingest.clients.s3 import S3Reader
from svc_ingest.config import Config
from svc_ingest.domain.guards import shown_uri
from svc_ingest.domain.model import DocumentRecord, Job, JobOptions, JobState
from svc_ingest.domain.ports import DocumentStore, IndexWriter, JobStore
from svc_ingest.domain.sources import Source, SourceError, parse_source
from svc_ingest.jobs import paging
from svc_ingest.jobs.cluster import RayCluster
from svc_ingest.jobs.dependencies import RunDependencies
from svc_ingest.jobs.live import LiveJob, ProgressEvent
from svc_ingest.jobs.run import INTERRUPTED, JobRun, Uploads
from svc_ingest.jobs.staging import SourceFiles
from svc_ingest.jobs.uploads import UploadPiece, receive

log = logging.getLogger(__name__)


class JobManager:
    """Everything IngestService does, behind its RPCs."""

    def __init__(
        self,
        config: Config,
        *,
        inference_addr: str,
        documents: DocumentStore,
        jobs: JobStore,
        index: IndexWriter,
        s3: Callable[[], S3Reader] | None = None,
        ray_address: str = "",
    ) -> None:
        s3_reader = s3 or (lambda: S3Reader(endpoint_url=config.s3_endpoint_url, region=config.s3_region))
        self._config = config
        self._cluster = RayCluster(config, ray_address or config.ray_address)
        self._deps = RunDependencies(
            config=config,
            documents=documents,
            jobs=jobs,
            index=index,
            sources=SourceFiles(s3_reader),
            cluster=self._cluster,
            slots=asyncio.Semaphore(max(1, config.max_concurrent_jobs)),
            owner=config.instance_id or f"{socket.gethostname()}:{config.port}",
            inference_addr=inference_addr,
        )
        self._live: dict[str, LiveJob] = {}
        self._roots = tuple(Path(r).resolve() for r in config.local_roots)
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def config(self) -> Config:
        """The service config."""
        return self._config

    def ensure_ray(self) -> None:
        """Connects to (or starts) Ray; blocking."""
        self._cluster.connect()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Fails the jobs a previous run of this instance left unfinished and starts the sweeper."""
        interrupted = await self._deps.jobs.fail_owned(self._deps.owner, INTERRUPTED)
        if interrupted:
            log.warning("marked %d interrupted jobs failed", len(interrupted), extra={"fields": {"jobs": interrupted}})
        self._sweeper = asyncio.create_task(self._sweep(), name="ingest-sweeper")

    async def stop(self) -> None:
        """Stops running jobs (they end FAILED and resume when run again) and the sweeper."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for live in list(self._live.values()):
            live.cancel.set()
            if live.task is not None:
                live.task.cancel()
        for live in list(self._live.values()):
            if live.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await live.task

    async def _sweep(self) -> None:
        # Another instance's job whose heartbeat stopped died with its process.
        while True:
            await asyncio.sleep(self._config.heartbeat_s * 6)
            try:
                stale = datetime.now(UTC) - timedelta(seconds=self._config.heartbeat_s * 6)
                ids = await self._deps.jobs.fail_abandoned(stale, INTERRUPTED, exclude=list(self._live))
                if ids:
                    log.warning("marked abandoned jobs failed", extra={"fields": {"jobs": ids}})
            except Exception:
                log.warning("job sweep failed", exc_info=True)

    # ------------------------------------------------------------------ jobs

    def resolve_options(self, requested: JobOptions) -> JobOptions:
        """Fills defaults (zero sizes) and checks the limits the proto cannot express (they depend on the embedder)."""
        cfg = self._config
        size = requested.chunk_size_tokens or cfg.chunk_size_tokens
        over = requested.chunk_overlap_tokens or min(cfg.chunk_overlap_tokens, size // 4)
        violations = []
        if not cfg.min_chunk_tokens <= size <= cfg.max_chunk_tokens:
            violations.append(
                FieldViolation(
                    "options.chunk_size_tokens",
                    f"must be {cfg.min_chunk_tokens} to {cfg.max_chunk_tokens} for the configured embedder "
                    f"(its input limit), got {size}",
                )
            )
        if over >= size:
            violations.append(FieldViolation("options.chunk_overlap_tokens", f"must be below the chunk size ({size})"))
        if violations:
            raise InvalidArgument("invalid ingest options", reason="INVALID_OPTIONS", violations=violations)
        return dataclasses.replace(requested, chunk_size_tokens=size, chunk_overlap_tokens=over)

    def _parse_sources(self, raw_sources: Sequence[str]) -> list[Source]:
        sources: list[Source] = []
        violations: list[FieldViolation] = []
        denied: list[str] = []
        for i, raw in enumerate(raw_sources):
            try:
                sources.append(parse_source(raw, self._roots))
            except SourceError as exc:
                if exc.permission:
                    denied.append(str(exc))
                violations.append(FieldViolation(f"sources[{i}]", str(exc)))
        if denied:
            raise PermissionDenied("; ".join(denied), reason="SOURCE_NOT_ALLOWED")
        if violations:
            raise InvalidArgument("invalid sources", reason="INVALID_SOURCE", violations=violations)
        return sources

    async def create(self, tenant: str, raw_sources: Sequence[str], requested: JobOptions) -> Job:
        """Checks the options and the sources, records a QUEUED job and starts it."""
        options = self.resolve_options(requested)
        sources = self._parse_sources(raw_sources)
        return await self._launch(tenant, tuple(raw_sources), options, sources=sources, uploads=None)

    async def upload(self, tenant: str, pieces: AsyncIterator[UploadPiece]) -> Job:
        """Receives uploaded files into a staging folder of their own and starts a job over them."""
        staged = self._config.upload_dir.resolve() / tenant / uuid.uuid4().hex
        staged.mkdir(parents=True, exist_ok=True)
        try:
            files, requested = await receive(pieces, staged, self._config)
            options = self.resolve_options(requested)
            shown = tuple(shown_uri(f.uri) for f in files)
            return await self._launch(tenant, shown, options, sources=[], uploads=Uploads(files, staged))
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise

    async def _launch(
        self,
        tenant: str,
        raw_sources: tuple[str, ...],
        options: JobOptions,
        *,
        sources: list[Source],
        uploads: Uploads | None,
    ) -> Job:
        job = Job(job_id=uuid.uuid4().hex, tenant=tenant, state=JobState.QUEUED, sources=raw_sources, options=options)
        job = await self._deps.jobs.create(job, self._deps.owner)
        live = LiveJob(job)
        self._live[job.job_id] = live
        run = JobRun(self._deps, live, sources, uploads)
        live.task = asyncio.create_task(self._execute(run), name=f"ingest-job-{job.job_id}")
        return dataclasses.replace(job)

    async def _execute(self, run: JobRun) -> None:
        try:
            await run.execute()
        finally:
            # Postgres keeps the finished job; readers find it there from now on.
            self._live.pop(run.job.job_id, None)

    async def get(self, tenant: str, job_id: str) -> Job:
        """The job, from memory while it runs here, else from the job store."""
        live = self._live.get(job_id)
        if live is not None and live.job.tenant == tenant:
            return live.job
        job = await self._deps.jobs.get(tenant, job_id)
        if job is None:
            raise NotFound(f"no ingest job {job_id!r}", reason="JOB_NOT_FOUND", metadata={"job_id": job_id})
        return job

    async def cancel(self, tenant: str, job_id: str) -> Job:
        """Asks a job to stop at the next batch; work already written stays."""
        job = await self.get(tenant, job_id)
        if job.state.final:
            raise FailedPrecondition(
                f"job {job_id} already ended ({job.state.value})", reason="JOB_FINISHED", metadata={"job_id": job_id}
            )
        await self._deps.jobs.request_cancel(tenant, job_id)
        live = self._live.get(job_id)
        if live is not None:
            live.cancel.set()
            await live.notify()
        return job

    async def watch(self, tenant: str, job_id: str) -> AsyncIterator[ProgressEvent]:
        """Progress events until the job ends; a finished job yields one final snapshot."""
        live = self._live.get(job_id)
        if live is None or live.job.tenant != tenant:
            async for event in self._watch_stored(tenant, job_id):
                yield event
            return
        sent_errors = 0
        while True:
            job = live.job
            for error in job.errors[sent_errors:]:
                yield ProgressEvent("file_failed", job, error=error)
            sent_errors = len(job.errors)
            fps, cps, eta = live.rates()
            if job.state.final:
                yield ProgressEvent("finished", job, files_per_second=fps, chunks_per_second=cps, eta_seconds=0.0)
                return
            yield ProgressEvent("progress", job, files_per_second=fps, chunks_per_second=cps, eta_seconds=eta)
            async with live.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(live.changed.wait(), timeout=self._config.progress_interval_s)

    async def _watch_stored(self, tenant: str, job_id: str) -> AsyncIterator[ProgressEvent]:
        # The job runs on another instance (or ended): follow what it saves.
        sent_errors = 0
        while True:
            job = await self.get(tenant, job_id)
            for error in job.errors[sent_errors:]:
                yield ProgressEvent("file_failed", job, error=error)
            sent_errors = len(job.errors)
            if job.state.final:
                yield ProgressEvent("finished", job, eta_seconds=0.0)
                return
            yield ProgressEvent("progress", job)
            await asyncio.sleep(max(self._config.progress_interval_s, 1.0))

    # ------------------------------------------------------------------ documents

    async def delete_document(self, tenant: str, doc_id: str) -> tuple[int, int]:
        """Removes a document from the index, the graph and the state; returns (points, nodes) removed."""
        record = await self._deps.documents.get(tenant, doc_id)
        if record is None:
            raise NotFound(f"no document {doc_id!r}", reason="DOCUMENT_NOT_FOUND", metadata={"doc_id": doc_id})
        removed = await self._deps.index.delete([doc_id])
        await self._deps.documents.delete(tenant, [doc_id])
        return removed.points_deleted, removed.nodes_deleted

    async def list_documents(
        self, tenant: str, *, page_size: int, page_token: str, source_prefix: str
    ) -> tuple[list[DocumentRecord], str]:
        """A page of the tenant's documents ordered by source URI, and the next page's token."""
        size = page_size or 100
        after_uri, after_id = paging.resume_after(page_token)
        records = await self._deps.documents.page(
            tenant, source_prefix=source_prefix, after_uri=after_uri, after_doc_id=after_id, limit=size + 1
        )
        next_token = ""
        if len(records) > size:
            records = records[:size]
            next_token = paging.page_token(records[-1].source_uri, records[-1].doc_id)
        return records, next_token
