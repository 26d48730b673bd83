"""Sources other than local folders: an S3 prefix (a real S3-compatible server), uploads; and cancelling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import grpc
import pytest
import pytest_asyncio
from moto.server import ThreadedMotoServer

from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from tests.support import auth as test_auth
from tests.support.ingest import (
    SAMPLES,
    Ingest,
    Retrieval,
    free_ports,
    ingest_config,
    serve_ingest,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

S3_PAGES = [
    "k8s/concepts/workloads/pods/pod-qos.md",
    "k8s/concepts/policy/limit-range.md",
    "noise/unstructured-fake-html-cp1252.html",
]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server (installed from PyPI), on a free loopback port."""
    (port,) = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and region for the local server (boto3 requires some)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest_asyncio.fixture(loop_scope="session")
async def s3_ingest(
    tmp_path: Path, migrated: str, retrieval: Retrieval, inference_addr: str, s3_endpoint: str, aws_env: None
) -> AsyncIterator[Ingest]:
    """svc_ingest configured with the local S3 endpoint."""
    config = ingest_config(tmp_path, s3_endpoint_url=s3_endpoint, s3_region="us-east-1")
    async with serve_ingest(config, migrated, retrieval, inference_addr) as served:
        yield served


async def test_s3_prefix_is_ingested_and_synced(s3_ingest: Ingest, s3_endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = "docs-" + s3_ingest.tenant
    client.create_bucket(Bucket=bucket)
    for page in S3_PAGES:
        client.upload_file(str(SAMPLES / page), bucket, f"corpus/{page}")
    client.put_object(Bucket=bucket, Key="corpus-other/unrelated.md", Body=b"# Not under the prefix\n\nIgnored.\n")

    source = f"s3://{bucket}/corpus/"
    job = await s3_ingest.run([source], skip_graph=True)
    assert job.state == pb.JOB_STATE_SUCCEEDED, (job.failure, list(job.errors))
    assert job.counts.files_discovered == len(S3_PAGES)
    assert job.counts.documents_ingested == len(S3_PAGES)
    docs = await s3_ingest.documents()
    assert sorted(d.source_uri for d in docs) == sorted(f"s3://{bucket}/corpus/{p}" for p in S3_PAGES)
    assert (await s3_ingest.retrieval.stats(s3_ingest.tenant)).points == sum(d.chunk_count for d in docs)

    again = await s3_ingest.run([source], skip_graph=True)
    assert again.counts.documents_unchanged == len(S3_PAGES)
    assert again.counts.points_written == 0

    client.delete_object(Bucket=bucket, Key=f"corpus/{S3_PAGES[0]}")
    synced = await s3_ingest.run([source], skip_graph=True, sync=True)
    assert synced.counts.documents_deleted == 1
    remaining = await s3_ingest.documents()
    assert len(remaining) == len(S3_PAGES) - 1
    assert (await s3_ingest.retrieval.stats(s3_ingest.tenant)).points == sum(d.chunk_count for d in remaining)


async def test_unreachable_bucket_fails_the_job(s3_ingest: Ingest) -> None:
    job = await s3_ingest.run(["s3://no-such-bucket-anywhere/prefix/"], skip_graph=True)
    assert job.state == pb.JOB_STATE_FAILED
    assert "no-such-bucket-anywhere" in job.failure


def _upload_messages(files: dict[str, bytes], piece: int = 1000) -> list[pb.UploadDocumentsRequest]:
    messages = []
    first = True
    for name, data in files.items():
        for start in range(0, max(len(data), 1), piece):
            message = pb.UploadDocumentsRequest(filename=name, data=data[start : start + piece])
            if first:
                message.options.CopyFrom(pb.IngestOptions(skip_graph=True))
                first = False
            messages.append(message)
    return messages


async def test_upload_documents_starts_a_job(ingest: Ingest) -> None:
    files = {
        "limit-range.md": (SAMPLES / "k8s/concepts/policy/limit-range.md").read_bytes(),
        "memo.pdf": (SAMPLES / "noise/unstructured-fake-memo.pdf").read_bytes(),
    }
    response = await ingest.stub.UploadDocuments(iter(_upload_messages(files)), metadata=ingest.md)
    assert list(response.job.sources) == ["upload://limit-range.md", "upload://memo.pdf"]
    job = await ingest.follow(response.job.job_id)
    assert job.state == pb.JOB_STATE_SUCCEEDED, (job.failure, list(job.errors))
    assert job.counts.documents_ingested == 2
    uris = sorted(d.source_uri for d in await ingest.documents())
    assert uris == ["upload://limit-range.md", "upload://memo.pdf"]

    # The same name again is the same document: unchanged content costs nothing.
    again = await ingest.stub.UploadDocuments(iter(_upload_messages(files)), metadata=ingest.md)
    job = await ingest.follow(again.job.job_id)
    assert job.counts.documents_unchanged == 2


async def test_upload_limits_and_bad_names(ingest: Ingest) -> None:
    cfg = ingest.manager.config
    too_big = {"big.txt": b"x" * (cfg.max_upload_file_bytes + 1)}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest.stub.UploadDocuments(iter(_upload_messages(too_big, piece=1024 * 1024)), metadata=ingest.md)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # A name with a directory in it (or a NUL) breaks the contract: the whole call is refused.
    # Names the contract allows but no file may have ("..", control characters) are reported per
    # file as UNSAFE_FILENAME instead (tests/integration/ingest/test_attacks.py).
    for name in ("a/b.txt", "a\\b.txt", "a\x00b.txt"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ingest.stub.UploadDocuments(
                iter([pb.UploadDocumentsRequest(filename=name, data=b"x")]), metadata=ingest.md
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest.stub.UploadDocuments(iter([]), metadata=ingest.md)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_stops_a_running_job(ingest: Ingest) -> None:
    created = await ingest.stub.CreateIngestJob(
        pb.CreateIngestJobRequest(sources=[str(SAMPLES / "k8s")], options=pb.IngestOptions(skip_graph=True)),
        metadata=ingest.md,
    )
    job_id = created.job.job_id
    await asyncio.sleep(0.5)
    cancelled = await ingest.stub.CancelIngestJob(pb.CancelIngestJobRequest(job_id=job_id), metadata=ingest.md)
    assert cancelled.job.job_id == job_id
    final = await ingest.follow(job_id)
    assert final.state == pb.JOB_STATE_CANCELLED
    assert final.counts.documents_ingested < final.counts.files_discovered
    # Work already written stays, and its state matches the index.
    docs = [d for d in await ingest.documents() if d.status == pb.DOCUMENT_STATUS_INDEXED]
    assert (await ingest.retrieval.stats(ingest.tenant)).points == sum(d.chunk_count for d in docs)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest.stub.CancelIngestJob(pb.CancelIngestJobRequest(job_id=job_id), metadata=ingest.md)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_delete_document_removes_it_everywhere(ingest: Ingest, tmp_path: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "qos.md").write_bytes((SAMPLES / "k8s/concepts/workloads/pods/pod-qos.md").read_bytes())
    (folder / "ns.md").write_bytes((SAMPLES / "k8s/concepts/overview/working-with-objects/namespaces.md").read_bytes())
    await ingest.run([str(folder)], skip_graph=True)
    docs = {Path(d.source_uri).name: d for d in await ingest.documents()}
    before = await ingest.retrieval.stats(ingest.tenant)
    deleted = await ingest.stub.DeleteDocument(
        pb.DeleteDocumentRequest(doc_id=docs["qos.md"].doc_id), metadata=ingest.md
    )
    assert deleted.points_deleted == docs["qos.md"].chunk_count
    after = await ingest.retrieval.stats(ingest.tenant)
    assert after.points == before.points - docs["qos.md"].chunk_count
    assert after.documents == before.documents - 1
    assert after.corpus_version > before.corpus_version
    assert [Path(d.source_uri).name for d in await ingest.documents()] == ["ns.md"]
    other = await ingest.stub.ListDocuments(pb.ListDocumentsRequest(), metadata=test_auth.bearer("someone-else"))
    assert list(other.documents) == []
