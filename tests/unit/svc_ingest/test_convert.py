"""Proto mappings: job and document messages."""

from __future__ import annotations

from datetime import UTC, datetime

from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from svc_ingest import convert
from svc_ingest.domain.model import DocStatus, DocumentRecord, FileError, Job, JobOptions, JobState


def test_job_and_document_messages() -> None:
    job = Job(
        job_id="j",
        tenant="t",
        state=JobState.PARTIAL_SUCCESS,
        sources=("/a",),
        options=JobOptions(240, 32, skip_graph=True),
        errors=[FileError("/a/x.pdf", "encrypted", "ENCRYPTED_PDF")],
        create_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    job.counts.format("pdf").files = 1
    message = convert.job_to_proto(job)
    assert message.state == pb.JOB_STATE_PARTIAL_SUCCESS
    assert message.options.skip_graph and message.options.chunk_size_tokens == 240
    assert message.errors[0].code == "ENCRYPTED_PDF"
    assert message.counts.formats[0].format == "pdf"
    assert message.create_time.seconds > 0
    assert convert.state_from_proto(message.state) is JobState.PARTIAL_SUCCESS
    record = DocumentRecord("t", "d", "file:///a", "A", "pdf", "h", 2, 5, DocStatus.FAILED)
    info = convert.document_to_proto(record)
    assert info.status == pb.DOCUMENT_STATUS_FAILED and info.doc_version == 2 and info.chunk_count == 5
