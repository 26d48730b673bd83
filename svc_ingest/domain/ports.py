"""What a job run needs from the world, as protocols.

``svc_ingest.clients`` implements them over Postgres, IndexService and S3
(``svc_ingest.jobs.staging`` reads sources); unit tests may implement them with fakes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from svc_ingest.domain.assembly import DocumentResult
from svc_ingest.domain.model import DocumentRecord, Job
from svc_ingest.domain.sources import Source, SourceFile


class DocumentStore(Protocol):
    """The state of every document of a tenant: which version is indexed, pending or failed."""

    async def get_many(self, tenant: str, doc_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        """The records of ``doc_ids`` that exist, by doc id."""
        ...

    async def get(self, tenant: str, doc_id: str) -> DocumentRecord | None:
        """One record, or None."""
        ...

    async def mark_pending(
        self, tenant: str, entries: Iterable[tuple[str, str, str, str, str, int]], job_id: str
    ) -> None:
        """Records that these versions are being written: (doc_id, uri, title, type, content_hash, version)."""
        ...

    async def mark_indexed(
        self, tenant: str, entries: Iterable[tuple[str, str, str, str, int, int]], settings_signature: str
    ) -> None:
        """Records completed writes: (doc_id, title, type, content_hash, version, chunk_count)."""
        ...

    async def mark_failed(self, tenant: str, entries: Iterable[tuple[str, str, str, str, str]], job_id: str) -> None:
        """Records failed ingests: (doc_id, uri, document_type, code, reason)."""
        ...

    async def delete(self, tenant: str, doc_ids: Sequence[str]) -> int:
        """Removes records; returns how many existed."""
        ...

    async def under_prefix(self, tenant: str, prefix: str) -> list[tuple[str, str]]:
        """(doc_id, source_uri) of the tenant's documents whose URI starts with ``prefix``."""
        ...

    async def page(
        self, tenant: str, *, source_prefix: str, after_uri: str, after_doc_id: str, limit: int
    ) -> list[DocumentRecord]:
        """A page of documents ordered by (source_uri, doc_id), after the given key."""
        ...


class JobStore(Protocol):
    """Jobs as every instance sees them: state, counts, errors, owner and heartbeat."""

    async def create(self, job: Job, owner: str) -> Job:
        """Records a QUEUED job and returns it with its creation time."""
        ...

    async def get(self, tenant: str, job_id: str) -> Job | None:
        """The job, when it exists and belongs to ``tenant``."""
        ...

    async def save(self, job: Job, owner: str) -> None:
        """Writes a job's state, counts and errors, and renews its heartbeat."""
        ...

    async def request_cancel(self, tenant: str, job_id: str) -> bool:
        """Flags a job for cancellation; False when no such job of the tenant exists."""
        ...

    async def cancel_requested(self, job_id: str) -> bool:
        """Whether someone asked this job to stop."""
        ...

    async def fail_abandoned(self, stale_before: datetime, failure: str, exclude: Sequence[str] = ()) -> list[str]:
        """Marks unfinished jobs whose owner stopped heartbeating as FAILED; returns their ids."""
        ...

    async def fail_owned(self, owner: str, failure: str) -> list[str]:
        """Marks this instance's unfinished jobs FAILED; returns their ids."""
        ...


@dataclasses.dataclass(frozen=True)
class DocumentWrite:
    """One finished document and what the index records beside its chunks."""

    document: DocumentResult
    source_uri: str
    content_hash: str
    doc_version: int
    links_to: list[str]


@dataclasses.dataclass(frozen=True)
class PreparedWrite:
    """A document turned into the index's messages; what ``messages`` holds is the index writer's business."""

    doc_id: str
    messages: tuple[object, ...]


@dataclasses.dataclass(frozen=True)
class IndexWrite:
    """What one write added to the index."""

    points_written: int
    nodes_created: int


@dataclasses.dataclass(frozen=True)
class IndexRemoval:
    """What one delete took out of the index."""

    points_deleted: int
    nodes_deleted: int


class IndexWriter(Protocol):
    """Writes documents into the vector index and the graph, and removes them."""

    def prepare(self, write: DocumentWrite) -> PreparedWrite:
        """The document as index messages; raises when this one document cannot be written."""
        ...

    async def upsert(self, prepared: Sequence[PreparedWrite]) -> IndexWrite:
        """Writes prepared documents in one call; raises the mesh's domain errors."""
        ...

    async def delete(self, doc_ids: Sequence[str]) -> IndexRemoval:
        """Removes documents (any number); returns the summed totals."""
        ...


class SourceUnavailable(RuntimeError):
    """A source could not be read at all (the job fails)."""


class FileUnreadable(RuntimeError):
    """One file could not be read (that file fails, the job goes on)."""


class SourceReader(Protocol):
    """Lists the files of sources and brings each one to a local path with its content hash."""

    async def list(self, source: Source) -> list[SourceFile]:
        """Every file under ``source``; raises SourceUnavailable when it cannot be listed."""
        ...

    async def stage(self, file: SourceFile, staging: Path) -> tuple[Path, str]:
        """A local path holding the file's bytes (under ``staging`` unless already local) and their hash.

        Raises FileUnreadable when this one file cannot be read.
        """
        ...
