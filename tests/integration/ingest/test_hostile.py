"""Bad input: every hostile file is reported with its reason, the rest is ingested, the service stays up."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from tests.fixtures.hostile import make_hostile_files
from tests.support.ingest import SAMPLES, Ingest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_hostile_files_are_reported_and_the_rest_ingested(ingest: Ingest, tmp_path: Path) -> None:
    expected = make_hostile_files(tmp_path / "hostile")
    job = await ingest.run([str(tmp_path / "hostile")], skip_graph=True)

    assert job.state == pb.JOB_STATE_PARTIAL_SUCCESS, job.failure
    bad = {name: code for name, code in expected.items() if code}
    good = {name for name, code in expected.items() if not code}
    reported = {Path(e.path).name: e for e in job.errors}
    assert set(reported) == set(bad)
    for name, code in bad.items():
        assert reported[name].code == code, (name, reported[name])
        assert reported[name].reason, name
    assert job.counts.files_discovered == len(expected)
    assert job.counts.documents_failed == len(bad)
    assert job.counts.documents_ingested == len(good)
    assert job.counts.files_processed == len(expected)
    formats = {f.format: (f.files, f.failed) for f in job.counts.formats}
    assert formats["pdf"] == (4, 3)
    assert formats["other"] == (2, 2)

    docs = {Path(d.source_uri).name: d for d in await ingest.documents()}
    assert {n for n, d in docs.items() if d.status == pb.DOCUMENT_STATUS_INDEXED} == good
    # Files the parsers rejected are documents whose last ingest failed; files never handed to a
    # parser (unsupported type, over the size limit) are only job errors.
    assert {n for n, d in docs.items() if d.status == pb.DOCUMENT_STATUS_FAILED} == set(bad) - {
        "program.exe",
        "notes.odt",
        "huge.txt",
    }
    stats = await ingest.retrieval.stats(ingest.tenant)
    assert stats.points == sum(d.chunk_count for d in docs.values() if d.status == pb.DOCUMENT_STATUS_INDEXED)


async def test_service_stays_healthy_after_hostile_input(ingest: Ingest, tmp_path: Path) -> None:
    make_hostile_files(tmp_path / "hostile")
    await ingest.run([str(tmp_path / "hostile")], skip_graph=True)

    health = health_pb2_grpc.HealthStub(ingest.channel)
    status = await health.Check(health_pb2.HealthCheckRequest(service="ragmesh.ingest.v1.IngestService"))
    assert status.status == health_pb2.HealthCheckResponse.SERVING

    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copyfile(SAMPLES / "k8s/concepts/policy/limit-range.md", clean / "limit-range.md")
    job = await ingest.run([str(clean)], skip_graph=True)
    assert job.state == pb.JOB_STATE_SUCCEEDED
    assert job.counts.documents_ingested == 1


async def test_bad_requests_get_clear_status_codes(ingest: Ingest, tmp_path: Path) -> None:
    cases = [
        (pb.CreateIngestJobRequest(sources=["relative/path"]), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.CreateIngestJobRequest(sources=[str(tmp_path / "missing")]), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.CreateIngestJobRequest(sources=["ftp://example/x"]), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.CreateIngestJobRequest(sources=[]), grpc.StatusCode.INVALID_ARGUMENT),
        (
            pb.CreateIngestJobRequest(sources=[str(tmp_path)], options=pb.IngestOptions(chunk_size_tokens=1024)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.CreateIngestJobRequest(
                sources=[str(tmp_path)], options=pb.IngestOptions(chunk_size_tokens=128, chunk_overlap_tokens=200)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for request, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ingest.stub.CreateIngestJob(request, metadata=ingest.md)
        assert caught.value.code() == code, request

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest.stub.CreateIngestJob(pb.CreateIngestJobRequest(sources=[str(tmp_path)]))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    for call, request in (
        (ingest.stub.GetIngestJob, pb.GetIngestJobRequest(job_id="no-such-job")),
        (ingest.stub.CancelIngestJob, pb.CancelIngestJobRequest(job_id="no-such-job")),
        (ingest.stub.DeleteDocument, pb.DeleteDocumentRequest(doc_id="no-such-doc")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=ingest.md)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest.stub.ListDocuments(pb.ListDocumentsRequest(page_token="bogus"), metadata=ingest.md)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
