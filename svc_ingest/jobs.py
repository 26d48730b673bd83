"""Jobs: creating, running, watching and cancelling ingest jobs; deleting and listing documents.

A job runs in this process as an asyncio task with the tenant bound as its
request context (so every downstream call carries it):

1. discover the files of its sources (local folders, S3 prefixes, uploads);
2. hash each file (S3 objects are streamed to disk first) and compare with the
   document state in Postgres: unchanged documents are skipped before any
   parsing or embedding;
3. run the Ray Data pipeline over the rest (``svc_ingest.pipeline``) in a
   thread, reassembling documents from its rows;
4. write documents through IndexService in streams of a few documents: each
   document is marked PENDING (with the version being written) before its
   first chunk is sent and INDEXED after the index confirms, so a process
   killed at any point leaves state that the next run completes exactly;
5. with ``sync``, remove documents that vanished from the sources.

Progress lives in memory for watchers and is saved to Postgres every
``heartbeat_s``; a job whose owner stops saving is marked FAILED ("run it
again to resume") by whichever instance notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from mesh import auth, context, telemetry
from mesh.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PermissionDenied, Unavailable
from ragmesh.retrieval.v1 import index_service_pb2
from svc_ingest import convert, metrics
from svc_ingest.clients.index import IndexClient, is_transient
from svc_ingest.clients.postgres import DocumentRepository, JobRepository
from svc_ingest.clients.s3 import S3Error, S3Reader
from svc_ingest.config import Config
from svc_ingest.domain.assembly import DocumentAssembler, DocumentFailure, DocumentResult
from svc_ingest.domain.chunk import ChunkingOptions
from svc_ingest.domain.failures import FailureCode
from svc_ingest.domain.formats import SUPPORTED_SUFFIXES
from svc_ingest.domain.graph import GraphSchema
from svc_ingest.domain.guards import ExpansionLimits, shown_name, shown_uri, unsafe_name_problem
from svc_ingest.domain.links import LinkResolver
from svc_ingest.domain.model import (
    DocStatus,
    DocumentRecord,
    FileError,
    Job,
    JobOptions,
    JobState,
    doc_id_for,
)
from svc_ingest.domain.parse import ParseOptions
from svc_ingest.domain.sources import Source, SourceError, SourceFile, hash_file, parse_source, walk_local
from svc_ingest.pipeline import (
    KIND_CHUNK,
    KIND_DOC,
    KIND_ERROR,
    NODE_COLUMNS,
    STAGE_EMBED,
    STAGE_GRAPH,
    STAGE_PARSE,
    PipelineSettings,
    WorkItem,
    cluster_resources,
    ensure_ray,
    iterate,
    missing_groups,
    node_directory,
    place,
    placed_groups,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

UPLOAD_SCHEME = "upload://"
_HASH_BATCH = 256
_WRITE_ATTEMPTS = 4
# Version of the parsers' behaviour: part of every document's settings signature, so a parser
# improvement re-ingests documents on the next run.
PARSER_VERSION = "parse-v1"


class SourceUnavailable(RuntimeError):
    """A source could not be read at all (the job fails)."""


@dataclass(frozen=True)
class ProgressEvent:
    """One StreamIngestJob event: kind is "progress", "file_failed" or "finished"."""

    kind: str
    job: Job
    error: FileError | None = None
    files_per_second: float = 0.0
    chunks_per_second: float = 0.0
    eta_seconds: float = -1.0


class _LiveJob:
    """A job running in this process: its state plus what watchers and cancellation need."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.cancel = threading.Event()
        self.changed = asyncio.Condition()
        self.started = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def rates(self) -> tuple[float, float, float]:
        elapsed = max(1e-3, time.monotonic() - self.started)
        counts = self.job.counts
        fps = counts.files_processed / elapsed
        cps = counts.chunks_embedded / elapsed
        remaining = counts.files_discovered - counts.files_processed
        eta = remaining / fps if fps > 0 and remaining >= 0 else -1.0
        return fps, cps, eta


class JobManager:
    """Everything IngestService does, behind its RPCs."""

    def __init__(
        self,
        config: Config,
        *,
        inference_addr: str,
        documents: DocumentRepository,
        jobs: JobRepository,
        index: IndexClient,
        s3: Callable[[], S3Reader] | None = None,
        ray_address: str = "",
    ) -> None:
        self._config = config
        self._inference_addr = inference_addr
        self._documents = documents
        self._jobs = jobs
        self._index = index
        self._s3_factory = s3 or (lambda: S3Reader(endpoint_url=config.s3_endpoint_url, region=config.s3_region))
        self._ray_address = ray_address or config.ray_address
        self._owner = config.instance_id or f"{socket.gethostname()}:{config.port}"
        self._live: dict[str, _LiveJob] = {}
        self._slots = asyncio.Semaphore(max(1, config.max_concurrent_jobs))
        self._roots = tuple(Path(r).resolve() for r in config.local_roots)
        self._sweeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Fails the jobs a previous run of this instance left unfinished and starts the sweeper."""
        interrupted = await self._jobs.fail_owned(self._owner, _INTERRUPTED)
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
                ids = await self._jobs.fail_abandoned(stale, _INTERRUPTED, exclude=list(self._live))
                if ids:
                    log.warning("marked abandoned jobs failed", extra={"fields": {"jobs": ids}})
            except Exception:
                log.warning("job sweep failed", exc_info=True)

    # ------------------------------------------------------------------ jobs

    def resolve_options(self, chunk_size: int, overlap: int, skip_graph: bool, sync: bool) -> JobOptions:
        """Fills defaults and checks the limits the proto cannot express (they depend on the embedder)."""
        cfg = self._config
        size = chunk_size or cfg.chunk_size_tokens
        over = overlap or min(cfg.chunk_overlap_tokens, size // 4)
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
        return JobOptions(chunk_size_tokens=size, chunk_overlap_tokens=over, skip_graph=skip_graph, sync=sync)

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

    async def create(self, tenant: str, raw_sources: Sequence[str], options: JobOptions) -> Job:
        """Validates the sources, records a QUEUED job and starts it."""
        sources = self._parse_sources(raw_sources)
        return await self._launch(tenant, tuple(raw_sources), options, sources=sources, uploads=None)

    async def create_from_uploads(self, tenant: str, files: list[SourceFile], staged: Path, options: JobOptions) -> Job:
        """Starts a job over uploaded files already written to ``staged``."""
        return await self._launch(
            tenant, tuple(shown_uri(f.uri) for f in files), options, sources=[], uploads=(files, staged)
        )

    async def _launch(
        self,
        tenant: str,
        raw_sources: tuple[str, ...],
        options: JobOptions,
        *,
        sources: list[Source],
        uploads: tuple[list[SourceFile], Path] | None,
    ) -> Job:
        job = Job(job_id=uuid.uuid4().hex, tenant=tenant, state=JobState.QUEUED, sources=raw_sources, options=options)
        job = await self._jobs.create(job, self._owner)
        live = _LiveJob(job)
        self._live[job.job_id] = live
        run = _JobRun(self, live, sources, uploads)
        live.task = asyncio.create_task(run.execute(), name=f"ingest-job-{job.job_id}")
        return dataclasses.replace(job)

    async def get(self, tenant: str, job_id: str) -> Job:
        """The job, from memory while it runs here, else from Postgres."""
        live = self._live.get(job_id)
        if live is not None and live.job.tenant == tenant:
            return live.job
        job = await self._jobs.get(tenant, job_id)
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
        await self._jobs.request_cancel(tenant, job_id)
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
        record = await self._documents.get(tenant, doc_id)
        if record is None:
            raise NotFound(f"no document {doc_id!r}", reason="DOCUMENT_NOT_FOUND", metadata={"doc_id": doc_id})
        response = await self._index.delete([doc_id])
        await self._documents.delete(tenant, [doc_id])
        return int(response.points_deleted), int(response.nodes_deleted)

    async def list_documents(
        self, tenant: str, *, page_size: int, page_token: str, source_prefix: str
    ) -> tuple[list[DocumentRecord], str]:
        """A page of the tenant's documents ordered by source URI, and the next page's token."""
        size = page_size or 100
        after_uri, after_id = "", ""
        if page_token:
            try:
                after_uri, after_id = convert.parse_page_token(page_token)
            except ValueError as exc:
                raise InvalidArgument(
                    "page_token is not one this service issued",
                    reason="INVALID_PAGE_TOKEN",
                    violations=[FieldViolation("page_token", "not a token from a previous ListDocuments response")],
                ) from exc
        records = await self._documents.page(
            tenant, source_prefix=source_prefix, after_uri=after_uri, after_doc_id=after_id, limit=size + 1
        )
        next_token = ""
        if len(records) > size:
            records = records[:size]
            next_token = convert.page_token(records[-1].source_uri, records[-1].doc_id)
        return records, next_token

    # ------------------------------------------------------------------ internals used by _JobRun

    @property
    def config(self) -> Config:
        """The service config."""
        return self._config

    def pipeline_settings(self, tenant: str, options: JobOptions) -> PipelineSettings:
        """The pipeline's settings for one job."""
        cfg = self._config
        graph = None
        rules = False
        if cfg.graph_enabled and not options.skip_graph:
            if cfg.graph_extractor == "llm":
                graph = GraphSchema(labels=cfg.graph_labels, relations=cfg.graph_relations)
            else:
                rules = True
        return PipelineSettings(
            inference_addr=self._inference_addr,
            tenant=tenant,
            service_token=auth.service_token() or "",
            parse=ParseOptions(
                pdf_strategy=cfg.pdf_strategy,
                ocr=cfg.ocr_enabled,
                ocr_languages=cfg.ocr_languages,
                ocr_dpi=cfg.ocr_dpi,
                max_ocr_pages=cfg.max_ocr_pages,
                max_file_bytes=cfg.max_file_bytes,
                timeout_s=cfg.parse_timeout_s,
                limits=ExpansionLimits(
                    max_decompressed_bytes=cfg.max_decompressed_bytes,
                    max_total_decompressed_bytes=cfg.max_total_decompressed_bytes,
                    max_xml_part_bytes=cfg.max_xml_part_bytes,
                    max_archive_members=cfg.max_archive_members,
                    max_html_depth=cfg.max_html_depth,
                    max_html_elements=cfg.max_html_elements,
                ),
            ),
            chunking=ChunkingOptions(
                max_tokens=options.chunk_size_tokens,
                overlap_tokens=options.chunk_overlap_tokens,
                combine_under_tokens=options.chunk_size_tokens // 2,
            ),
            graph=graph,
            graph_rules=rules,
            parse_concurrency=cfg.parse_concurrency,
            embed_batch_size=cfg.embed_batch_size,
            embed_concurrency=cfg.embed_concurrency,
            embed_timeout_s=cfg.embed_timeout_s,
            graph_batch_size=cfg.graph_batch_size,
            graph_concurrency=cfg.graph_concurrency,
            graph_timeout_s=cfg.generate_timeout_s,
            graph_max_tokens=cfg.graph_max_tokens,
            torch_threads=cfg.torch_threads,
        )

    def settings_signature(self, settings: PipelineSettings) -> str:
        """What makes an indexed document current besides its content: chunking, sparse and graph settings."""
        from mesh.entities import EXTRACTOR_VERSION
        from mesh.sparse import ENCODER_VERSION

        graph = "graph-off"
        if settings.graph is not None:
            graph = "graph:" + ",".join(settings.graph.labels)
        elif settings.graph_rules:
            graph = "graph-rules:" + EXTRACTOR_VERSION
        return "|".join((PARSER_VERSION, settings.chunking.signature, ENCODER_VERSION, graph))

    def ensure_ray(self) -> None:
        """Connects to (or starts) Ray; blocking."""
        ensure_ray(self._ray_address, num_cpus=self._config.ray_num_cpus or None)

    def forget(self, job_id: str) -> None:
        """Drops a finished job from memory (Postgres keeps it)."""
        self._live.pop(job_id, None)


_INTERRUPTED = (
    "interrupted: the ingest service stopped while the job ran; run the job again to resume "
    "(documents already written are skipped as unchanged)"
)


class _JobRun:
    """One execution of a job."""

    def __init__(
        self,
        manager: JobManager,
        live: _LiveJob,
        sources: list[Source],
        uploads: tuple[list[SourceFile], Path] | None,
    ) -> None:
        self.m = manager
        self.live = live
        self.job = live.job
        self.sources = sources
        self.uploads = uploads
        self.cfg = manager.config
        self.staging = self.cfg.staging_dir.resolve() / self.job.job_id
        self.settings = manager.pipeline_settings(self.job.tenant, self.job.options)
        self.signature = manager.settings_signature(self.settings)
        self.versions: dict[str, tuple[SourceFile, str, int]] = {}

    # ---------------------------------------------------------------- top level

    async def execute(self) -> None:
        job = self.job
        identity = context.Identity(tenant=job.tenant, subject="svc_ingest")
        request = context.RequestContext(
            method="/ragmesh.ingest.v1.IngestService/job",
            request_id=job.job_id,
            identity=identity,
            deadline_monotonic=None,
        )
        # The job's span (under the CreateIngestJob call that started it) is the parent of every
        # stage's span in the Ray workers and of the IndexService writes.
        with context.bind(request), telemetry.span("ingest job", {"ragmesh.job_id": job.job_id}):
            self.settings = dataclasses.replace(self.settings, trace_context=telemetry.carrier())
            try:
                async with metrics.job_slot(self.m._slots):
                    job.state = JobState.RUNNING
                    job.start_time = datetime.now(UTC)
                    self.live.started = time.monotonic()
                    await self._save()
                    heartbeat = asyncio.create_task(self._heartbeat(), name=f"ingest-heartbeat-{job.job_id}")
                    try:
                        await self._run()
                    finally:
                        heartbeat.cancel()
                    if self.live.cancel.is_set():
                        job.state = JobState.CANCELLED
                    elif job.counts.documents_failed:
                        job.state = JobState.PARTIAL_SUCCESS
                    else:
                        job.state = JobState.SUCCEEDED
            except asyncio.CancelledError:
                job.state = JobState.FAILED
                job.failure = _INTERRUPTED
            except SourceUnavailable as exc:
                job.state = JobState.FAILED
                job.failure = str(exc)
            except Unavailable as exc:
                job.state = JobState.FAILED
                job.failure = exc.message
            except Exception as exc:
                log.exception("ingest job %s failed", job.job_id)
                job.state = JobState.FAILED
                job.failure = f"internal error: {type(exc).__name__}: {exc}"[:2000]
            finally:
                job.end_time = datetime.now(UTC)
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._save())
                await self.live.notify()
                self._cleanup()
                self.m.forget(job.job_id)
                metrics.observe_end(job)
        log.info(
            "ingest job ended",
            extra={"fields": {"job_id": job.job_id, "state": job.state.value, "counts": job.counts.to_json()}},
        )

    def _cleanup(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.uploads is not None:
            shutil.rmtree(self.uploads[1], ignore_errors=True)

    async def _save(self) -> None:
        await self.m._jobs.save(self.job, self.m._owner)
        if not self.live.cancel.is_set() and await self.m._jobs.cancel_requested(self.job.job_id):
            self.live.cancel.set()
            await self.live.notify()

    async def _heartbeat(self) -> None:
        # Saves progress on a clock, not on events: a long step (starting Ray, one huge file)
        # must not look like a dead owner to the other instances' sweepers.
        while True:
            await asyncio.sleep(self.cfg.heartbeat_s)
            try:
                await self._save()
            except Exception:  # a missed heartbeat is retried on the next tick
                log.warning("could not save the progress of job %s", self.job.job_id, exc_info=True)

    async def _progress(self) -> None:
        await self.live.notify()

    def _fail_file(self, uri: str, fmt: str, code: str, reason: str) -> None:
        counts = self.job.counts
        counts.documents_failed += 1
        counts.files_processed += 1
        counts.format(fmt).failed += 1
        self.job.add_error(FileError(path=uri, reason=reason, code=code))

    # ---------------------------------------------------------------- stages

    async def _run(self) -> None:
        files = await self._discover()
        resolver = LinkResolver((f.uri, doc_id_for(f.uri)) for f in files)
        items = await self._select(files)
        if items and not self.live.cancel.is_set():
            await self._pipeline(items, resolver)
        if self.job.options.sync and self.sources and not self.live.cancel.is_set():
            await self._sync({f.uri for f in files})

    async def _discover(self) -> list[SourceFile]:
        found: dict[str, SourceFile] = {}
        if self.uploads is not None:
            for f in self.uploads[0]:
                found[f.uri] = f
        for source in self.sources:
            listed: list[SourceFile]
            if source.kind == "s3":
                reader = self.m._s3_factory()
                try:
                    listed = await asyncio.to_thread(_listing, reader, source)
                except S3Error as exc:
                    raise SourceUnavailable(str(exc)) from exc
            else:
                listed = await asyncio.to_thread(_walking, source)
            for f in listed:
                found.setdefault(f.uri, f)
        files = sorted(found.values(), key=lambda f: f.uri)
        counts = self.job.counts
        counts.files_discovered = len(files)
        for f in files:
            counts.format(f.format_name).files += 1
        await self._progress()
        return files

    async def _select(self, files: list[SourceFile]) -> list[WorkItem]:
        """Hashes files, skips unchanged documents, reports files that cannot be parsed at all."""
        items: list[WorkItem] = []
        counts = self.job.counts
        for start in range(0, len(files), _HASH_BATCH):
            if self.live.cancel.is_set():
                break
            batch = files[start : start + _HASH_BATCH]
            records = await self.m._documents.get_many(self.job.tenant, [doc_id_for(f.uri) for f in batch])
            for f in batch:
                doc_id = doc_id_for(f.uri)
                unsafe = unsafe_name_problem(f.name)
                if unsafe:
                    # Checked before the name reaches a path (staging), a parser or a document record.
                    reason = f"the file name {shown_name(f.name)} {unsafe}"
                    self._fail_file(shown_uri(f.uri), f.format_name, FailureCode.UNSAFE_FILENAME.value, reason)
                    continue
                if f.suffix not in SUPPORTED_SUFFIXES:
                    shown = f.suffix or "(no extension)"
                    reason = f"unsupported file type {shown}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
                    self._fail_file(f.uri, f.format_name, FailureCode.UNSUPPORTED_TYPE.value, reason)
                    continue
                if f.size > self.cfg.max_file_bytes:
                    reason = f"the file has {f.size:,} bytes; the limit is {self.cfg.max_file_bytes:,}"
                    self._fail_file(f.uri, f.format_name, FailureCode.FILE_TOO_LARGE.value, reason)
                    continue
                try:
                    local, content_hash = await self._stage(f)
                except (OSError, S3Error) as exc:
                    self._fail_file(f.uri, f.format_name, FailureCode.READ_ERROR.value, f"cannot read the file: {exc}")
                    continue
                record = records.get(doc_id)
                if record is not None and record.is_current(content_hash, self.signature):
                    counts.documents_unchanged += 1
                    counts.files_processed += 1
                    continue
                version = record.next_version(content_hash) if record is not None else 1
                self.versions[doc_id] = (f, content_hash, version)
                items.append(
                    WorkItem(
                        doc_id=doc_id,
                        uri=f.uri,
                        name=f.name,
                        local_path=str(local),
                        content_hash=content_hash,
                        doc_version=version,
                        format_name=f.format_name,
                    )
                )
            await self._progress()
        return items

    async def _stage(self, f: SourceFile) -> tuple[Path, str]:
        if f.local_path is not None:
            digest = await asyncio.to_thread(hash_file, f.local_path)
            return f.local_path, digest
        target = self.staging / doc_id_for(f.uri) / f.name
        reader = self.m._s3_factory()
        digest = await asyncio.to_thread(reader.download, f, target)
        return target, digest

    async def _pipeline(self, items: list[WorkItem], resolver: LinkResolver) -> None:
        loop = asyncio.get_running_loop()
        try:
            settings = await asyncio.to_thread(self._placed_settings)
        except Exception as exc:
            raise Unavailable(f"the pipeline failed: {_describe(exc)}", reason="PIPELINE_FAILED") from exc
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=4)
        done = object()
        stop = threading.Event()
        cancel = self.live.cancel

        def stopped() -> bool:
            return stop.is_set() or cancel.is_set()

        def put(item: object) -> None:
            # Once the consumer has stopped reading (a job given up on), items are dropped, so the
            # producer never blocks on a queue nobody drains.
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while True:
                try:
                    future.result(timeout=0.5)
                    return
                except TimeoutError:
                    if stop.is_set() and abandoned.is_set():
                        future.cancel()
                        return

        def produce() -> None:
            try:
                for batch in iterate(items, settings, stopped):
                    put(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                put(exc)
            finally:
                put(done)

        abandoned = threading.Event()
        watch = _GroupWatch(placed_groups(settings), self.cfg.ray_group_lost_timeout_s)
        producer = threading.Thread(target=produce, name=f"ingest-pipeline-{self.job.job_id}", daemon=True)
        producer.start()
        assembler = DocumentAssembler()
        writer = _Writer(self, resolver)
        tally = _NodeTally(self.job)
        failure: BaseException | None = None
        finished = False
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=watch.interval_s)
                except TimeoutError:
                    await watch.check()
                    continue
                if item is done:
                    finished = True
                    break
                if isinstance(item, BaseException):
                    failure = item
                    continue
                rows = item.to_dict("records")  # type: ignore[attr-defined]
                self.job.counts.chunks_embedded += sum(1 for r in rows if r["kind"] == KIND_CHUNK)
                await tally.add(rows)
                ready, failed = assembler.add(rows)
                for failure_row in failed:
                    await writer.failed(failure_row)
                for doc in ready:
                    await writer.add(doc)
                await self._progress()
            await writer.flush()
        except _GroupLost:
            # Ray Data waits for ever for a resource no node offers: give the run up and leave the
            # producer to end by itself once the group is back (its output is dropped).
            abandoned.set()
            raise
        finally:
            # On an early exit the producer may be blocked on a full queue: tell it to stop and
            # keep draining until it says it is done.
            stop.set()
            if not abandoned.is_set():
                while not finished:
                    item = await queue.get()
                    finished = item is done
                await asyncio.to_thread(producer.join, 60)
        if failure is not None:
            raise Unavailable(f"the pipeline failed: {_describe(failure)}", reason="PIPELINE_FAILED") from failure
        lost = assembler.unfinished()
        if lost and not self.live.cancel.is_set():
            for doc_id in lost:
                f, _, _ = self.versions[doc_id]
                self._fail_file(f.uri, f.format_name, FailureCode.PARSER_ERROR.value, "the pipeline lost part of it")

    def _placed_settings(self) -> PipelineSettings:
        """Connects to Ray, then sends the stages to their worker groups as configured (blocking)."""
        self.m.ensure_ray()
        cfg = self.cfg
        resources = cluster_resources() if cfg.ray_group_placement == "auto" else {}
        settings = place(self.settings, cfg.ray_group_placement, cfg.ray_parse_group, cfg.ray_embed_group, resources)
        if placed_groups(settings):
            log.info(
                "pipeline stages placed on worker groups",
                extra={
                    "fields": {
                        "job_id": self.job.job_id,
                        "parse": settings.parse_resource,
                        "embed": settings.embed_resource,
                    }
                },
            )
        return settings

    async def _sync(self, present: set[str]) -> None:
        stale: list[str] = []
        for source in self.sources:
            prefix = source.uri if source.kind == "s3" else source.uri.rstrip("/")
            for doc_id, uri in await self.m._documents.under_prefix(self.job.tenant, prefix):
                if source.contains(uri) and uri not in present:
                    stale.append(doc_id)
        stale = sorted(set(stale))
        if not stale:
            return
        await _with_retries(lambda: self.m._index.delete(stale))
        await self.m._documents.delete(self.job.tenant, stale)
        self.job.counts.documents_deleted += len(stale)
        await self._progress()


class _GroupLost(Unavailable):
    """Every node of a worker group the pipeline needs left the cluster and none came back in time."""


class _GroupWatch:
    """Notices, while a job waits for the pipeline, that a worker group it was placed on has no node left."""

    def __init__(self, groups: tuple[str, ...], timeout_s: float) -> None:
        self.groups = groups
        self.timeout_s = timeout_s
        self.interval_s = min(5.0, max(0.5, timeout_s / 4)) if groups else 3600.0
        self.seen: set[str] = set()
        self.missing_since: dict[str, float] = {}

    async def check(self) -> None:
        if not self.groups:
            return
        missing = set(await asyncio.to_thread(missing_groups, self.groups))
        now = time.monotonic()
        self.seen.update(g for g in self.groups if g not in missing)
        for group in self.groups:
            # Only a group that had nodes in this job is lost: "always" placement may start with
            # none while an autoscaler brings them.
            if group in missing and group in self.seen:
                since = self.missing_since.setdefault(group, now)
                if now - since >= self.timeout_s:
                    raise _GroupLost(
                        f"every Ray node of worker group {group!r} left the cluster and none came back in "
                        f"{self.timeout_s:.0f}s; run the job again to resume (documents already written "
                        "are skipped as unchanged)",
                        reason="RAY_NODES_LOST",
                    )
            else:
                self.missing_since.pop(group, None)


class _NodeTally:
    """Counts, per pipeline stage, the work each Ray node did (JobCounts.placement), with the nodes' names."""

    def __init__(self, job: Job) -> None:
        self.counts = job.counts
        self.named: set[str] = {w.node_id for w in job.counts.placement if w.node_name}

    async def add(self, rows: list[dict[str, object]]) -> None:
        work: dict[tuple[str, str], int] = {}
        for row in rows:
            kind = row["kind"]
            if kind in (KIND_DOC, KIND_ERROR):
                self._count(work, STAGE_PARSE, row)
            elif kind == KIND_CHUNK:
                self._count(work, STAGE_EMBED, row)
                self._count(work, STAGE_GRAPH, row)
        entries = [self.counts.add_node_work(stage, node, n) for (stage, node), n in work.items()]
        unnamed = [e for e in entries if e.node_id not in self.named]
        if unnamed:
            try:
                nodes = await asyncio.to_thread(node_directory)
            except Exception:  # names are a report's nicety; the counts stand without them
                log.warning("could not read the Ray node names", exc_info=True)
                return
            for entry in unnamed:
                name, group = nodes.get(entry.node_id, ("", ""))
                entry.node_name, entry.node_group = name, group
                if name:
                    self.named.add(entry.node_id)
            for entry in self.counts.placement:
                if entry.node_id in nodes and not entry.node_name:
                    entry.node_name, entry.node_group = nodes[entry.node_id]

    @staticmethod
    def _count(work: dict[tuple[str, str], int], stage: str, row: dict[str, object]) -> None:
        node = row.get(NODE_COLUMNS[stage])
        if isinstance(node, str) and node:
            work[(stage, node)] = work.get((stage, node), 0) + 1


class _Writer:
    """Writes finished documents through IndexService in small streams and commits their state."""

    def __init__(self, run: _JobRun, resolver: LinkResolver) -> None:
        self.run = run
        self.resolver = resolver
        self.buffer: list[DocumentResult] = []
        self.buffered_chunks = 0

    async def add(self, doc: DocumentResult) -> None:
        self.buffer.append(doc)
        self.buffered_chunks += len(doc.chunks)
        cfg = self.run.cfg
        if len(self.buffer) >= cfg.write_batch_documents or self.buffered_chunks >= cfg.write_batch_chunks:
            await self.flush()

    async def failed(self, failure: DocumentFailure) -> None:
        run = self.run
        f, _, _ = run.versions[failure.doc_id]
        run._fail_file(f.uri, f.format_name, failure.code, failure.reason)
        await run.m._documents.mark_failed(
            run.job.tenant, [(failure.doc_id, f.uri, f.format_name, failure.code, failure.reason)], run.job.job_id
        )

    async def flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer, self.buffered_chunks = self.buffer, [], 0
        run = self.run
        tenant = run.job.tenant
        # Each document's requests are built first: one that cannot be turned into index writes
        # is that file's error, not the job's.
        docs: list[DocumentResult] = []
        pending = []
        requests: list[index_service_pb2.UpsertChunksRequest] = []
        for doc in batch:
            f, content_hash, version = run.versions[doc.doc_id]
            try:
                links = self.resolver.resolve(f.uri, doc.links)
                requests.extend(
                    convert.upsert_requests(
                        doc, source_uri=f.uri, content_hash=content_hash, doc_version=version, links_to=links
                    )
                )
            except Exception as exc:
                log.exception("could not prepare %s for the index", f.uri)
                reason = f"{type(exc).__name__}: {exc}"
                await self.failed(DocumentFailure(doc.doc_id, FailureCode.PREPARE_FAILED.value, reason))
                continue
            docs.append(doc)
            pending.append((doc.doc_id, f.uri, doc.title, doc.document_type, content_hash, version))
        if not docs:
            return
        # Recorded before the first chunk is sent: a crash from here on leaves PENDING rows that
        # the next run rewrites with the same version (same point ids, nothing twice).
        await run.m._documents.mark_pending(tenant, pending, run.job.job_id)
        response = await _with_retries(lambda: run.m._index.upsert(requests))
        await run.m._documents.mark_indexed(
            tenant,
            [
                (
                    doc.doc_id,
                    doc.title,
                    doc.document_type,
                    run.versions[doc.doc_id][1],
                    run.versions[doc.doc_id][2],
                    len(doc.chunks),
                )
                for doc in docs
            ],
            run.signature,
        )
        counts = run.job.counts
        counts.documents_ingested += len(docs)
        counts.files_processed += len(docs)
        counts.points_written += int(response.points_written)
        counts.nodes_written += int(response.nodes_created)
        await run._progress()


def _listing(reader: S3Reader, source: Source) -> list[SourceFile]:
    return list(reader.list(source))


def _walking(source: Source) -> list[SourceFile]:
    return list(walk_local(source))


async def _with_retries(call: Callable[[], Awaitable[_T]]) -> _T:
    delay = 1.0
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            return await call()
        except Exception as exc:
            if not is_transient(exc):
                raise Unavailable(f"the index rejected the write: {_describe(exc)}", reason="INDEX_FAILED") from exc
            if attempt == _WRITE_ATTEMPTS:
                raise Unavailable(f"the index is unavailable: {_describe(exc)}", reason="INDEX_UNAVAILABLE") from exc
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _root_cause(exc: BaseException) -> BaseException:
    """The exception underneath Ray's wrappers (RayTaskError, UserCodeException keep it as ``cause``)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _describe(exc: BaseException) -> str:
    """What went wrong, in one line a caller may read: no traceback, no file path of this host."""
    exc = _root_cause(exc)
    details = getattr(exc, "details", None)
    code = getattr(exc, "code", None)
    if callable(details) and callable(code):
        return f"{code().name}: {details()}"[:500]
    lines = str(exc).strip().splitlines()
    # Ray's wrappers print a traceback into their message; its last line names the error.
    message = lines[-1].strip() if lines and "Traceback" in str(exc) else (lines[0].strip() if lines else "")
    return f"{type(exc).__name__}: {message}"[:500]


__all__ = ["UPLOAD_SCHEME", "DocStatus", "JobManager", "ProgressEvent"]
