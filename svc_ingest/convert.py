"""Every proto <-> domain mapping of svc_ingest, and nothing else."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime

from google.protobuf import timestamp_pb2

from mesh.validation import max_items
from ragmesh.common.v1 import common_pb2
from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from ragmesh.retrieval.v1 import index_service_pb2 as index_pb
from svc_ingest.domain.assembly import ChunkResult, DocumentResult
from svc_ingest.domain.model import DocStatus, DocumentRecord, FileError, Job, JobOptions, JobState

# Chunks per UpsertChunks message (the contract allows 512).
CHUNKS_PER_MESSAGE = 128
#: Most entities, and most relations, one UpsertChunks message may carry (the proto's limit).
MAX_GRAPH_FACTS = max_items(index_pb.UpsertChunksRequest, "entities")
#: Most mentions one indexed chunk may carry.
MAX_MENTIONS = max_items(index_pb.IndexedChunk, "mentions")


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


def page_token(source_uri: str, doc_id: str) -> str:
    """An opaque token that resumes a listing after (source_uri, doc_id)."""
    return base64.urlsafe_b64encode(f"{source_uri}\x00{doc_id}".encode()).decode()


def parse_page_token(token: str) -> tuple[str, str]:
    """Inverse of ``page_token``; raises ValueError for a token it did not make."""
    raw = base64.urlsafe_b64decode(token.encode()).decode()
    uri, sep, doc_id = raw.partition("\x00")
    if not sep or "\x00" in doc_id:
        raise ValueError("not a page token")
    return uri, doc_id


def upsert_requests(
    doc: DocumentResult,
    *,
    source_uri: str,
    content_hash: str,
    doc_version: int,
    links_to: list[str],
) -> Iterator[index_pb.UpsertChunksRequest]:
    """The UpsertChunks messages of one document; the last one says the document is complete."""
    document = index_pb.IndexedDocument(
        doc_id=doc.doc_id,
        source_uri=source_uri,
        title=doc.title[:1024],
        document_type=doc.document_type[:32],
        doc_version=doc_version,
        content_hash=content_hash,
        links_to=links_to[:1000],
    )
    parts = _message_parts(doc.chunks)
    for number, part in enumerate(parts, start=1):
        entities: dict[tuple[str, str], index_pb.GraphEntity] = {}
        relations: dict[tuple[str, str, str], index_pb.GraphRelation] = {}
        chunks = []
        for chunk in part:
            for e in chunk.entities:
                entities.setdefault((e.name, e.label), index_pb.GraphEntity(name=e.name, label=e.label))
            for r in chunk.relations:
                relations.setdefault(
                    (r.source, r.target, r.type), index_pb.GraphRelation(source=r.source, target=r.target, type=r.type)
                )
            chunks.append(
                index_pb.IndexedChunk(
                    chunk_index=chunk.index,
                    text=chunk.text[:65536],
                    section=chunk.section[:2048],
                    dense=list(chunk.dense),
                    sparse=common_pb2.SparseVector(
                        indices=list(chunk.sparse_indices), values=list(chunk.sparse_values)
                    ),
                    mentions=list(dict.fromkeys(e.name for e in chunk.entities))[:MAX_MENTIONS],
                )
            )
        yield index_pb.UpsertChunksRequest(
            document=document,
            chunks=chunks,
            entities=list(entities.values())[:MAX_GRAPH_FACTS],
            relations=list(relations.values())[:MAX_GRAPH_FACTS],
            document_complete=number == len(parts),
        )


def _message_parts(chunks: list[ChunkResult]) -> list[list[ChunkResult]]:
    """The chunks of a document cut into messages of at most CHUNKS_PER_MESSAGE chunks and
    MAX_GRAPH_FACTS entities and relations (counted before de-duplication, so never over)."""
    parts: list[list[ChunkResult]] = [[]]
    entities = relations = 0
    for chunk in chunks:
        n_ent, n_rel = len(chunk.entities), len(chunk.relations)
        current = parts[-1]
        if current and (
            len(current) >= CHUNKS_PER_MESSAGE
            or entities + n_ent > MAX_GRAPH_FACTS
            or relations + n_rel > MAX_GRAPH_FACTS
        ):
            parts.append([])
            entities = relations = 0
        parts[-1].append(chunk)
        entities += n_ent
        relations += n_rel
    return parts
