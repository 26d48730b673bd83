"""One execution of an ingest job, start to end, through the dependencies it is given.

1. discover the files of its sources (local folders, S3 prefixes, uploads);
2. hash each file (S3 objects are streamed to disk first) and compare with the
   document state: unchanged documents are skipped before any parsing or embedding;
3. run the Ray Data pipeline over the rest (``feed``), writing documents as they
   finish (``writer``);
4. with ``sync``, remove documents that vanished from the sources.

Progress lives in memory for watchers and is saved to the job store every
``heartbeat_s``, so other instances can tell a live owner from a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from mesh import context, telemetry
from mesh.errors import Unavailable
from svc_ingest import metrics
from svc_ingest.domain.failures import FailureCode
from svc_ingest.domain.formats import SUPPORTED_SUFFIXES
from svc_ingest.domain.guards import shown_name, shown_uri, unsafe_name_problem
from svc_ingest.domain.links import LinkResolver
from svc_ingest.domain.model import JobState, doc_id_for
from svc_ingest.domain.ports import FileUnreadable, SourceUnavailable
from svc_ingest.domain.sources import Source, SourceFile
from svc_ingest.jobs.dependencies import RunDependencies, Selected
from svc_ingest.jobs.feed import feed
from svc_ingest.jobs.live import LiveJob
from svc_ingest.jobs.settings import pipeline_settings, settings_signature
from svc_ingest.jobs.writer import Writer, with_retries
from svc_ingest.pipeline import WorkItem

log = logging.getLogger(__name__)

_HASH_BATCH = 256
INTERRUPTED = (
    "interrupted: the ingest service stopped while the job ran; run the job again to resume "
    "(documents already written are skipped as unchanged)"
)
"""The failure of a job whose process stopped under it."""


@dataclasses.dataclass(frozen=True)
class Uploads:
    """Files of an upload, already written to ``staged`` (removed when the job ends)."""

    files: list[SourceFile]
    staged: Path


class JobRun:
    """One execution of a job."""

    def __init__(self, deps: RunDependencies, live: LiveJob, sources: list[Source], uploads: Uploads | None) -> None:
        self.deps = deps
        self.live = live
        self.job = live.job
        self.sources = sources
        self.uploads = uploads
        self.cfg = deps.config
        self.staging = self.cfg.staging_dir.resolve() / self.job.job_id
        self.settings = pipeline_settings(self.cfg, deps.inference_addr, self.job.tenant, self.job.options)
        self.signature = settings_signature(self.settings)
        self.selected: dict[str, Selected] = {}

    # ---------------------------------------------------------------- top level

    async def execute(self) -> None:
        """Runs the job to its final state, which is saved whatever happens."""
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
                async with metrics.job_slot(self.deps.slots):
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
                job.failure = INTERRUPTED
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
                metrics.observe_end(job)
        log.info(
            "ingest job ended",
            extra={"fields": {"job_id": job.job_id, "state": job.state.value, "counts": job.counts.to_json()}},
        )

    def _cleanup(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.uploads is not None:
            shutil.rmtree(self.uploads.staged, ignore_errors=True)

    async def _save(self) -> None:
        jobs = self.deps.jobs
        await jobs.save(self.job, self.deps.owner)
        if not self.live.cancel.is_set() and await jobs.cancel_requested(self.job.job_id):
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

    # ---------------------------------------------------------------- stages

    async def _run(self) -> None:
        files = await self._discover()
        resolver = LinkResolver((f.uri, doc_id_for(f.uri)) for f in files)
        items = await self._select(files)
        if items and not self.live.cancel.is_set():
            writer = Writer(self.deps, self.live, self.selected, resolver, self.signature)
            await feed(self.deps, self.live, self.settings, items, self.selected, writer)
        if self.job.options.sync and self.sources and not self.live.cancel.is_set():
            await self._sync({f.uri for f in files})

    async def _discover(self) -> list[SourceFile]:
        found: dict[str, SourceFile] = {}
        if self.uploads is not None:
            for f in self.uploads.files:
                found[f.uri] = f
        for source in self.sources:
            for f in await self.deps.sources.list(source):
                found.setdefault(f.uri, f)
        files = sorted(found.values(), key=lambda f: f.uri)
        counts = self.job.counts
        counts.files_discovered = len(files)
        for f in files:
            counts.format(f.format_name).files += 1
        await self.live.notify()
        return files

    async def _select(self, files: list[SourceFile]) -> list[WorkItem]:
        """Hashes files, skips unchanged documents, reports files that cannot be parsed at all."""
        items: list[WorkItem] = []
        counts = self.job.counts
        fail_file = self.live.fail_file
        for start in range(0, len(files), _HASH_BATCH):
            if self.live.cancel.is_set():
                break
            batch = files[start : start + _HASH_BATCH]
            records = await self.deps.documents.get_many(self.job.tenant, [doc_id_for(f.uri) for f in batch])
            for f in batch:
                doc_id = doc_id_for(f.uri)
                unsafe = unsafe_name_problem(f.name)
                if unsafe:
                    # Checked before the name reaches a path (staging), a parser or a document record.
                    reason = f"the file name {shown_name(f.name)} {unsafe}"
                    fail_file(shown_uri(f.uri), f.format_name, FailureCode.UNSAFE_FILENAME.value, reason)
                    continue
                if f.suffix not in SUPPORTED_SUFFIXES:
                    shown = f.suffix or "(no extension)"
                    reason = f"unsupported file type {shown}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
                    fail_file(f.uri, f.format_name, FailureCode.UNSUPPORTED_TYPE.value, reason)
                    continue
                if f.size > self.cfg.max_file_bytes:
                    reason = f"the file has {f.size:,} bytes; the limit is {self.cfg.max_file_bytes:,}"
                    fail_file(f.uri, f.format_name, FailureCode.FILE_TOO_LARGE.value, reason)
                    continue
                try:
                    local, content_hash = await self.deps.sources.stage(f, self.staging)
                except FileUnreadable as exc:
                    fail_file(f.uri, f.format_name, FailureCode.READ_ERROR.value, f"cannot read the file: {exc}")
                    continue
                record = records.get(doc_id)
                if record is not None and record.is_current(content_hash, self.signature):
                    counts.documents_unchanged += 1
                    counts.files_processed += 1
                    continue
                version = record.next_version(content_hash) if record is not None else 1
                self.selected[doc_id] = Selected(f, content_hash, version)
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
            await self.live.notify()
        return items

    async def _sync(self, present: set[str]) -> None:
        stale: list[str] = []
        documents = self.deps.documents
        for source in self.sources:
            prefix = source.uri if source.kind == "s3" else source.uri.rstrip("/")
            for doc_id, uri in await documents.under_prefix(self.job.tenant, prefix):
                if source.contains(uri) and uri not in present:
                    stale.append(doc_id)
        stale = sorted(set(stale))
        if not stale:
            return
        index = self.deps.index
        await with_retries(lambda: index.delete(stale))
        await documents.delete(self.job.tenant, stale)
        self.job.counts.documents_deleted += len(stale)
        await self.live.notify()
