"""Every proto <-> domain mapping of svc_ingest, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from google.protobuf import timestamp_pb2

from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from svc_ingest.domain.model import DocStatus, DocumentRecord, FileError, Job, JobOptions, JobState
from svc_ingest.jobs import ProgressEvent, UploadPiece

_EVENT_TYPES = {
    "progress": pb.INGEST_EVENT_TYPE_PROGRESS,
    "file_failed": pb.INGEST_EVENT_TYPE_FILE_FAILED,
    "finished": pb.INGEST_EVENT_TYPE_FINISHED,
}


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def options_to_proto(options: JobOptions) -> pb.IngestOptions:
    """Job options as sent back to callers (defaults filled in)."""
    return pb.IngestOptions(
        chunk_size_tokens=options.chunk_size_tokens,
        chunk_overlap_tokens=options.chunk_overlap_tokens,
        skip_graph=options.skip_graph,
        sync=options.sync,
    )


def options_from_proto(options: pb.IngestOptions) -> JobOptions:
    """Job options as a caller asked for them (zero sizes: the service's defaults)."""
    return JobOptions(
        chunk_size_tokens=options.chunk_size_tokens,
        chunk_overlap_tokens=options.chunk_overlap_tokens,
        skip_graph=options.skip_graph,
        sync=options.sync,
    )


def job_to_proto(job: Job) -> pb.IngestJob:
    """A job as the contract's IngestJob."""
    counts = job.counts
    message = pb.IngestJob(
        job_id=job.job_id,
        state=f"JOB_STATE_{job.state.value}",
        sources=list(job.sources),
        options=options_to_proto(job.options),
        counts=pb.JobCounts(
            files_discovered=counts.files_discovered,
            files_processed=counts.files_processed,
            documents_ingested=counts.documents_ingested,
            documents_unchanged=counts.documents_unchanged,
            documents_failed=counts.documents_failed,
            documents_deleted=counts.documents_deleted,
            chunks_embedded=counts.chunks_embedded,
            points_written=counts.points_written,
            nodes_written=counts.nodes_written,
            formats=[
                pb.FormatCount(format=name, files=c.files, failed=c.failed)
                for name, c in sorted(counts.formats.items())
            ],
            placement=[
                pb.NodeWork(
                    stage=w.stage, node_id=w.node_id, node_name=w.node_name, node_group=w.node_group, items=w.items
                )
                for w in counts.placement
            ],
        ),
        errors=[error_to_proto(e) for e in job.errors],
        failure=job.failure,
    )
    for field_name, value in (
        ("create_time", job.create_time),
        ("start_time", job.start_time),
        ("end_time", job.end_time),
    ):
        ts = _timestamp(value)
        if ts is not None:
            getattr(message, field_name).CopyFrom(ts)
    return message


def error_to_proto(error: FileError) -> pb.FileError:
    """A file error as the contract's FileError."""
    return pb.FileError(path=error.path, reason=error.reason, code=error.code)


def state_from_proto(value: int) -> JobState:
    """The domain state of a contract JobState value."""
    return JobState(pb.JobState.Name(value).removeprefix("JOB_STATE_"))


def document_to_proto(record: DocumentRecord) -> pb.DocumentInfo:
    """A document record as the contract's DocumentInfo."""
    status = {
        DocStatus.INDEXED: pb.DOCUMENT_STATUS_INDEXED,
        DocStatus.PENDING: pb.DOCUMENT_STATUS_PENDING,
        DocStatus.FAILED: pb.DOCUMENT_STATUS_FAILED,
    }[record.status]
    info = pb.DocumentInfo(
        doc_id=record.doc_id,
        source_uri=record.source_uri,
        title=record.title,
        document_type=record.document_type,
        content_hash=record.content_hash,
        doc_version=record.doc_version,
        chunk_count=record.chunk_count,
        status=status,
    )
    ts = _timestamp(record.updated_at)
    if ts is not None:
        info.update_time.CopyFrom(ts)
    return info


def event_to_proto(event: ProgressEvent) -> pb.StreamIngestJobResponse:
    """A progress event as the contract's StreamIngestJobResponse."""
    message = pb.StreamIngestJobResponse(
        type=_EVENT_TYPES[event.kind],
        job=job_to_proto(event.job),
        files_per_second=event.files_per_second,
        chunks_per_second=event.chunks_per_second,
        eta_seconds=event.eta_seconds,
    )
    if event.error is not None:
        message.error.CopyFrom(error_to_proto(event.error))
    return message


async def upload_pieces(requests: AsyncIterator[pb.UploadDocumentsRequest]) -> AsyncIterator[UploadPiece]:
    """The messages of an UploadDocuments stream as upload pieces."""
    async for message in requests:
        yield UploadPiece(message.filename, message.data, options_from_proto(message.options))
