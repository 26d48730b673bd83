"""Writing finished documents through the index in small streams, and committing their state around each write.

Each document is marked PENDING (with the version being written) before its first
chunk is sent and INDEXED after the index confirms, so a process killed at any
point leaves state that the next run completes exactly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mesh.errors import Unavailable
from svc_ingest.clients.index import is_transient
from svc_ingest.domain.assembly import DocumentFailure, DocumentResult
from svc_ingest.domain.failures import FailureCode, describe
from svc_ingest.domain.links import LinkResolver
from svc_ingest.domain.ports import DocumentWrite, PreparedWrite
from svc_ingest.jobs.dependencies import RunDependencies, Selected
from svc_ingest.jobs.live import LiveJob

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_WRITE_ATTEMPTS = 4


class Writer:
    """Buffers finished documents and writes them in batches of the configured size."""

    def __init__(
        self,
        deps: RunDependencies,
        live: LiveJob,
        selected: dict[str, Selected],
        resolver: LinkResolver,
        signature: str,
    ) -> None:
        self.deps = deps
        self.live = live
        self.selected = selected
        self.resolver = resolver
        self.signature = signature
        self.buffer: list[DocumentResult] = []
        self.buffered_chunks = 0

    async def add(self, doc: DocumentResult) -> None:
        """Buffers a document; writes the buffer once it holds a batch."""
        self.buffer.append(doc)
        self.buffered_chunks += len(doc.chunks)
        cfg = self.deps.config
        if len(self.buffer) >= cfg.write_batch_documents or self.buffered_chunks >= cfg.write_batch_chunks:
            await self.flush()

    async def failed(self, failure: DocumentFailure) -> None:
        """Counts and records a document that will not be written."""
        f = self.selected[failure.doc_id].file
        job = self.live.job
        self.live.fail_file(f.uri, f.format_name, failure.code, failure.reason)
        await self.deps.documents.mark_failed(
            job.tenant, [(failure.doc_id, f.uri, f.format_name, failure.code, failure.reason)], job.job_id
        )

    async def flush(self) -> None:
        """Writes the buffered documents and commits their state."""
        if not self.buffer:
            return
        batch, self.buffer, self.buffered_chunks = self.buffer, [], 0
        job = self.live.job
        index = self.deps.index
        documents = self.deps.documents
        # Each document is prepared first: one that cannot be turned into index writes is that
        # file's error, not the job's.
        docs: list[DocumentResult] = []
        pending = []
        prepared: list[PreparedWrite] = []
        for doc in batch:
            f, content_hash, version = self.selected[doc.doc_id]
            try:
                links = self.resolver.resolve(f.uri, doc.links)
                prepared.append(index.prepare(DocumentWrite(doc, f.uri, content_hash, version, links)))
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
        await documents.mark_pending(job.tenant, pending, job.job_id)
        written = await with_retries(lambda: index.upsert(prepared))
        await documents.mark_indexed(
            job.tenant,
            [
                (
                    doc.doc_id,
                    doc.title,
                    doc.document_type,
                    self.selected[doc.doc_id].content_hash,
                    self.selected[doc.doc_id].version,
                    len(doc.chunks),
                )
                for doc in docs
            ],
            self.signature,
        )
        counts = job.counts
        counts.documents_ingested += len(docs)
        counts.files_processed += len(docs)
        counts.points_written += written.points_written
        counts.nodes_written += written.nodes_created
        await self.live.notify()


async def with_retries(call: Callable[[], Awaitable[_T]]) -> _T:
    """Calls the index, retrying transient failures with backoff; a failure ends as UNAVAILABLE for the job."""
    delay = 1.0
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            return await call()
        except Exception as exc:
            if not is_transient(exc):
                raise Unavailable(f"the index rejected the write: {describe(exc)}", reason="INDEX_FAILED") from exc
            if attempt == _WRITE_ATTEMPTS:
                raise Unavailable(f"the index is unavailable: {describe(exc)}", reason="INDEX_UNAVAILABLE") from exc
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
