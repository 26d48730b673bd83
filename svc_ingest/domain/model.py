"""Domain values of ingestion: jobs, their counts and errors, and document state."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

MAX_JOB_ERRORS = 1000
"""A job keeps the first this many file errors (the contract's limit)."""


class JobState(enum.StrEnum):
    """Life cycle of a job (names match the contract's JobState without the prefix)."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        """True once the job will not change again."""
        return self not in (JobState.QUEUED, JobState.RUNNING)


class DocStatus(enum.StrEnum):
    """Where a document stands (names match the contract's DocumentStatus without the prefix)."""

    PENDING = "PENDING"
    INDEXED = "INDEXED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class JobOptions:
    """A job's options: as stored and run, with defaults filled in; as requested, zero sizes mean the defaults."""

    chunk_size_tokens: int
    chunk_overlap_tokens: int
    skip_graph: bool = False
    sync: bool = False


@dataclass
class FormatCount:
    """Files of one format a job saw, and how many of them failed."""

    files: int = 0
    failed: int = 0


@dataclass
class NodeWork:
    """What one Ray node did for one pipeline stage of a job: files parsed, or chunks embedded or extracted."""

    stage: str
    node_id: str
    node_name: str = ""
    node_group: str = ""
    items: int = 0


@dataclass
class JobCounts:
    """Running totals of a job."""

    files_discovered: int = 0
    files_processed: int = 0
    documents_ingested: int = 0
    documents_unchanged: int = 0
    documents_failed: int = 0
    documents_deleted: int = 0
    chunks_embedded: int = 0
    points_written: int = 0
    nodes_written: int = 0
    formats: dict[str, FormatCount] = field(default_factory=dict)
    placement: list[NodeWork] = field(default_factory=list)
    """Which Ray node did which stage's work, in the order first seen."""

    def format(self, name: str) -> FormatCount:
        """The counter of one format, created on first use."""
        return self.formats.setdefault(name, FormatCount())

    def add_node_work(self, stage: str, node_id: str, items: int) -> NodeWork:
        """Counts ``items`` done by ``node_id`` for ``stage``; returns the entry (new ones have no name yet)."""
        for work in self.placement:
            if work.stage == stage and work.node_id == node_id:
                work.items += items
                return work
        work = NodeWork(stage=stage, node_id=node_id, items=items)
        self.placement.append(work)
        return work

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (what the jobs table stores)."""
        data: dict[str, object] = {k: v for k, v in vars(self).items() if k not in ("formats", "placement")}
        data["formats"] = {k: {"files": v.files, "failed": v.failed} for k, v in sorted(self.formats.items())}
        data["placement"] = [vars(w).copy() for w in self.placement]
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> JobCounts:
        """Inverse of ``to_json``; unknown keys are ignored."""
        counts = cls()
        for key, value in data.items():
            if key == "formats" and isinstance(value, dict):
                counts.formats = {
                    str(k): FormatCount(int(v.get("files", 0)), int(v.get("failed", 0)))
                    for k, v in value.items()
                    if isinstance(v, dict)
                }
            elif key == "placement" and isinstance(value, list):
                counts.placement = [
                    NodeWork(
                        stage=str(w.get("stage", "")),
                        node_id=str(w.get("node_id", "")),
                        node_name=str(w.get("node_name", "")),
                        node_group=str(w.get("node_group", "")),
                        items=int(w.get("items", 0)),
                    )
                    for w in value
                    if isinstance(w, dict)
                ]
            elif hasattr(counts, key) and isinstance(value, int):
                setattr(counts, key, value)
        return counts


@dataclass(frozen=True)
class FileError:
    """A file a job could not ingest."""

    path: str
    reason: str
    code: str


@dataclass
class Job:
    """An ingest job."""

    job_id: str
    tenant: str
    state: JobState
    sources: tuple[str, ...]
    options: JobOptions
    counts: JobCounts = field(default_factory=JobCounts)
    errors: list[FileError] = field(default_factory=list)
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    failure: str = ""

    def add_error(self, error: FileError) -> None:
        """Records a file error (only the first MAX_JOB_ERRORS are kept; counts keep the rest)."""
        if len(self.errors) < MAX_JOB_ERRORS:
            self.errors.append(error)


@dataclass(frozen=True)
class DocumentRecord:
    """What Postgres knows about one document of a tenant."""

    tenant: str
    doc_id: str
    source_uri: str
    title: str
    document_type: str
    content_hash: str
    doc_version: int
    chunk_count: int
    status: DocStatus
    pending_hash: str | None = None
    pending_version: int | None = None
    settings_signature: str = ""
    error_code: str = ""
    error_reason: str = ""
    updated_at: datetime | None = None

    def is_current(self, content_hash: str, settings_signature: str) -> bool:
        """True when the index already holds exactly this content, made with these settings."""
        return (
            self.status is DocStatus.INDEXED
            and self.content_hash == content_hash
            and self.settings_signature == settings_signature
        )

    def next_version(self, content_hash: str) -> int:
        """The version to write ``content_hash`` as.

        A write that was interrupted (PENDING with the same content) keeps its version, so a
        re-run rewrites the same points instead of making a third version; different content
        goes above any interrupted version, whose stray points the index then removes.
        """
        if self.status is DocStatus.PENDING and self.pending_hash == content_hash and self.pending_version:
            return self.pending_version
        return max(self.doc_version, self.pending_version or 0) + 1


def doc_id_for(source_uri: str) -> str:
    """The stable document id of a source URI (32 hex characters of its SHA-256)."""
    return hashlib.sha256(source_uri.encode("utf-8")).hexdigest()[:32]
