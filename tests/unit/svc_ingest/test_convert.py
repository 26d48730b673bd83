"""Proto mappings: upsert batching, page tokens, job and document messages."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from svc_ingest import convert
from svc_ingest.domain.assembly import ChunkResult, DocumentResult
from svc_ingest.domain.graph import Entity, Relation
from svc_ingest.domain.model import DocStatus, DocumentRecord, FileError, Job, JobOptions, JobState


def _doc(chunks: int) -> DocumentResult:
    return DocumentResult(
        doc_id="d1",
        title="Pods",
        document_type="markdown",
        links=[],
        ocr_pages=0,
        chunks=[
            ChunkResult(
                index=i,
                text=f"chunk {i}",
                section="S",
                dense=(0.5, 0.5),
                sparse_indices=(1, 2),
                sparse_values=(0.1, 0.2),
                entities=(Entity("Pod", "Resource"), Entity("kubelet", "Component")),
                relations=(Relation("kubelet", "Pod", "MANAGES"),),
            )
            for i in range(chunks)
        ],
    )


def test_a_document_streams_in_batches_and_only_the_last_completes_it() -> None:
    requests = list(
        convert.upsert_requests(_doc(300), source_uri="file:///p.md", content_hash="h", doc_version=2, links_to=["x"])
    )
    assert [len(r.chunks) for r in requests] == [128, 128, 44]
    assert [r.document_complete for r in requests] == [False, False, True]
    first = requests[0]
    assert first.document.doc_version == 2 and first.document.links_to == ["x"]
    assert {(e.name, e.label) for e in first.entities} == {("Pod", "Resource"), ("kubelet", "Component")}
    assert [(r.source, r.type, r.target) for r in first.relations] == [("kubelet", "MANAGES", "Pod")]
    assert list(first.chunks[0].mentions) == ["Pod", "kubelet"]


def test_messages_are_cut_before_graph_facts_pass_the_proto_limit() -> None:
    doc = _doc(100)
    many = tuple(Relation(f"e{i}", f"f{i}", "RELATED_TO") for i in range(96))
    doc.chunks[:] = [replace(c, relations=many) for c in doc.chunks]
    requests = list(
        convert.upsert_requests(doc, source_uri="file:///p.md", content_hash="h", doc_version=1, links_to=[])
    )
    assert [len(r.chunks) for r in requests] == [42, 42, 16]
    assert all(len(r.relations) <= convert.MAX_GRAPH_FACTS for r in requests)
    assert [r.document_complete for r in requests] == [False, False, True]
    assert sum(len(r.chunks) for r in requests) == 100


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    token = convert.page_token("file:///a b.md", "d1")
    assert convert.parse_page_token(token) == ("file:///a b.md", "d1")
    two_nuls = base64.urlsafe_b64encode(b"file:///a.md\x00d\x001").decode()  # text columns cannot hold NUL
    for garbage in ("bogus!", "YWJj", "_w==", two_nuls):
        with pytest.raises(ValueError):
            convert.parse_page_token(garbage)


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
