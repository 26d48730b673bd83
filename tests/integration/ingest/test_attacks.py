"""Documents that attack the pipeline, mixed with good ones in one job, through a served svc_ingest.

A zip-bomb DOCX, a PDF decompression bomb, 50 MB of nested HTML tags and files
whose names carry control characters or bytes that are not UTF-8: each is
reported in the job's errors with its own code, the good files of the same job
are indexed, and no process of the pipeline (the Ray workers are children of
this test process) grows past a memory bound while the job runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import psutil
import pytest
import pytest_asyncio

from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from tests.fixtures.hostile.attacks import deep_html, pdf_bomb, zip_bomb_docx
from tests.support.ingest import SAMPLES, Ingest, Retrieval, ingest_config, serve_ingest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

MiB = 1024 * 1024
# Largest resident size any process of the pipeline may reach during the job. A Ray worker that
# parses with unstructured sits near 1 GiB; the bombs unguarded need their 1 GiB and 4 GiB in memory.
PROCESS_RSS_BOUND = 2 * 1024 * MiB

_GOOD = {
    "pod-qos.md": SAMPLES / "k8s/concepts/workloads/pods/pod-qos.md",
    "memo.pdf": SAMPLES / "noise/unstructured-fake-memo.pdf",
    "word-sample.docx": SAMPLES / "noise/docling-word_sample.docx",
    "page.html": SAMPLES / "noise/unstructured-fake-html-cp1252.html",
}


class _PeakRss:
    """Samples the resident size of this process's descendants (Ray's raylet and workers) until stopped."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_name = ""
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        me = psutil.Process(os.getpid())
        while True:
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss = child.memory_info().rss
                    if rss > self.peak:
                        self.peak, self.peak_name = rss, child.name()
            await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[_PeakRss]:
        self._task = asyncio.create_task(self._sample())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@pytest_asyncio.fixture(loop_scope="session")
async def ingest_big_files(
    tmp_path: Path, migrated: str, retrieval: Retrieval, inference_addr: str
) -> AsyncIterator[Ingest]:
    """svc_ingest that accepts files up to 64 MiB, so the 50 MB HTML page reaches its parser."""
    config = ingest_config(tmp_path / "svc", max_file_bytes=64 * MiB)
    async with serve_ingest(config, migrated, retrieval, inference_addr) as served:
        yield served


async def _ray_started(ingest: Ingest) -> None:
    """Starts the test's Ray before the job: on a loaded machine its raylet can miss Ray's own
    30 s registration window, which would fail the job for a reason this test is not about."""
    for attempt in range(3):
        try:
            await asyncio.to_thread(ingest.manager.ensure_ray)
            return
        except Exception:
            if attempt == 2:
                raise


def _write_attacks(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True)
    expected: dict[str, str] = {}
    zip_bomb_docx(folder / "bomb.docx")
    expected["bomb.docx"] = "FILE_TOO_LARGE_DECOMPRESSED"
    pdf_bomb(folder / "bomb.pdf")
    expected["bomb.pdf"] = "FILE_TOO_LARGE_DECOMPRESSED"
    deep_html(folder / "deep.html")
    expected["deep.html"] = "DOCUMENT_TOO_DEEP"
    for name in ("esc\x1b[31mred.md", "new\nline.txt"):
        (folder / name).write_text("# A good body\n\nBehind a name that must not reach a log line or a report.\n")
        expected[name] = "UNSAFE_FILENAME"
    with open(os.fsencode(folder) + b"/latin1-\xe9t\xe9.md", "wb") as out:
        out.write(b"# Summer\n\nA file whose name is Latin-1 bytes, not UTF-8.\n")
    expected["latin1-\udce9t\udce9.md"] = "UNSAFE_FILENAME"
    for name, source in _GOOD.items():
        shutil.copyfile(source, folder / name)
        expected[name] = ""
    return expected


async def test_attacking_documents_are_reported_and_the_rest_of_the_job_indexed(
    ingest_big_files: Ingest, tmp_path: Path
) -> None:
    ingest = ingest_big_files
    expected = _write_attacks(tmp_path / "attacks")
    bad = {name: code for name, code in expected.items() if code}
    good = {name for name, code in expected.items() if not code}

    await _ray_started(ingest)
    async with _PeakRss().running() as rss:
        job = await ingest.run([str(tmp_path / "attacks")], skip_graph=True)

    assert job.state == pb.JOB_STATE_PARTIAL_SUCCESS, (job.failure, list(job.errors))
    reported = {_name_of(e.path): e for e in job.errors}
    assert set(reported) == {_name_of(_uri_shown(tmp_path / "attacks", n)) for n in bad}, list(job.errors)
    for name, code in bad.items():
        error = reported[_name_of(_uri_shown(tmp_path / "attacks", name))]
        assert error.code == code, (name, error)
        assert error.reason and error.reason.isprintable(), (name, error.reason)
        assert error.path.isprintable(), error.path
    assert job.counts.files_discovered == len(expected)
    assert job.counts.documents_failed == len(bad)
    assert job.counts.documents_ingested == len(good)

    docs = {Path(d.source_uri).name: d for d in await ingest.documents()}
    assert {n for n, d in docs.items() if d.status == pb.DOCUMENT_STATUS_INDEXED} == good
    for name in good:
        assert docs[name].chunk_count > 0, name
    stats = await ingest.retrieval.stats(ingest.tenant)
    assert stats.points == sum(d.chunk_count for d in docs.values() if d.status == pb.DOCUMENT_STATUS_INDEXED)
    # Names that were refused are never documents.
    assert not any(not n.isprintable() or "%" in n for n in docs)

    assert rss.peak > 0, "no pipeline process was seen"
    assert rss.peak < PROCESS_RSS_BOUND, (rss.peak_name, rss.peak)


async def test_uploads_with_unsafe_names_and_a_bomb_are_reported_per_file(ingest: Ingest, tmp_path: Path) -> None:
    zip_bomb_docx(tmp_path / "bomb.docx")
    files = {
        "bell\x07.md": b"# Bell\n\nA good body behind a name with a control character.\n",
        "..": b"# Dots\n\nA body sent under the name of a parent directory.\n",
        "bomb.docx": (tmp_path / "bomb.docx").read_bytes(),
        "limit-range.md": (SAMPLES / "k8s/concepts/policy/limit-range.md").read_bytes(),
    }
    messages = []
    for name, data in files.items():
        for start in range(0, len(data), MiB):
            messages.append(pb.UploadDocumentsRequest(filename=name, data=data[start : start + MiB]))
    messages[0].options.CopyFrom(pb.IngestOptions(skip_graph=True))

    response = await ingest.stub.UploadDocuments(iter(messages), metadata=ingest.md)
    assert all(source.isprintable() for source in response.job.sources), list(response.job.sources)
    job = await ingest.follow(response.job.job_id)

    assert job.state == pb.JOB_STATE_PARTIAL_SUCCESS, (job.failure, list(job.errors))
    codes = {e.path: e.code for e in job.errors}
    assert codes == {
        "upload://bell%07.md": "UNSAFE_FILENAME",
        "upload://..": "UNSAFE_FILENAME",
        "upload://bomb.docx": "FILE_TOO_LARGE_DECOMPRESSED",
    }
    assert job.counts.documents_ingested == 1
    assert [d.source_uri for d in await ingest.documents() if d.status == pb.DOCUMENT_STATUS_INDEXED] == [
        "upload://limit-range.md"
    ]
    # Nothing was written under the unsafe names, inside or next to the upload folder.
    uploads = ingest.manager.config.upload_dir.resolve()
    assert not [p for p in uploads.parent.rglob("*") if "\x07" in p.name]


async def test_upload_name_with_a_path_is_refused_by_the_contract(ingest: Ingest) -> None:
    messages = [
        pb.UploadDocumentsRequest(filename="good.md", data=b"# Good\n\nA body.\n"),
        pb.UploadDocumentsRequest(filename="../escape.md", data=b"# Escape\n\nA body.\n"),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest.stub.UploadDocuments(iter(messages), metadata=ingest.md)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    uploads = ingest.manager.config.upload_dir.resolve()
    assert not list(uploads.parent.rglob("escape.md"))


def _uri_shown(folder: Path, name: str) -> str:
    from svc_ingest.domain.guards import shown_uri
    from svc_ingest.domain.sources import file_uri

    return shown_uri(file_uri(folder / name))


def _name_of(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]
