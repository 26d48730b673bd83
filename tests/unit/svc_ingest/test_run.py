"""A job run through its ports (fakes of the stores, index and sources; nothing reaches the Ray pipeline)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from svc_ingest.config import Config
from svc_ingest.domain.model import DocStatus, DocumentRecord, Job, JobOptions, JobState, doc_id_for
from svc_ingest.domain.ports import DocumentWrite, IndexRemoval, IndexWrite, PreparedWrite
from svc_ingest.domain.sources import Source, SourceFile, parse_source
from svc_ingest.jobs.cluster import RayCluster
from svc_ingest.jobs.dependencies import RunDependencies
from svc_ingest.jobs.live import LiveJob
from svc_ingest.jobs.run import JobRun


class FakeDocuments:
    def __init__(self) -> None:
        self.records: dict[str, DocumentRecord] = {}

    async def get_many(self, tenant: str, doc_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        return {d: self.records[d] for d in doc_ids if d in self.records}

    async def get(self, tenant: str, doc_id: str) -> DocumentRecord | None:
        return self.records.get(doc_id)

    async def mark_pending(
        self, tenant: str, entries: Iterable[tuple[str, str, str, str, str, int]], job_id: str
    ) -> None:
        raise AssertionError("nothing is written in this scenario")

    async def mark_indexed(
        self, tenant: str, entries: Iterable[tuple[str, str, str, str, int, int]], settings_signature: str
    ) -> None:
        raise AssertionError("nothing is written in this scenario")

    async def mark_failed(self, tenant: str, entries: Iterable[tuple[str, str, str, str, str]], job_id: str) -> None:
        raise AssertionError("no document fails in the pipeline in this scenario")

    async def delete(self, tenant: str, doc_ids: Sequence[str]) -> int:
        return sum(1 for d in doc_ids if self.records.pop(d, None) is not None)

    async def under_prefix(self, tenant: str, prefix: str) -> list[tuple[str, str]]:
        return [(r.doc_id, r.source_uri) for r in self.records.values() if r.source_uri.startswith(prefix)]

    async def page(
        self, tenant: str, *, source_prefix: str, after_uri: str, after_doc_id: str, limit: int
    ) -> list[DocumentRecord]:
        return []


class FakeJobs:
    def __init__(self) -> None:
        self.saved: list[JobState] = []

    async def create(self, job: Job, owner: str) -> Job:
        return job

    async def get(self, tenant: str, job_id: str) -> Job | None:
        return None

    async def save(self, job: Job, owner: str) -> None:
        self.saved.append(job.state)

    async def request_cancel(self, tenant: str, job_id: str) -> bool:
        return False

    async def cancel_requested(self, job_id: str) -> bool:
        return False

    async def fail_abandoned(self, stale_before: datetime, failure: str, exclude: Sequence[str] = ()) -> list[str]:
        return []

    async def fail_owned(self, owner: str, failure: str) -> list[str]:
        return []


class FakeIndex:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def prepare(self, write: DocumentWrite) -> PreparedWrite:
        return PreparedWrite(write.document.doc_id, ())

    async def upsert(self, prepared: Sequence[PreparedWrite]) -> IndexWrite:
        raise AssertionError("nothing is written in this scenario")

    async def delete(self, doc_ids: Sequence[str]) -> IndexRemoval:
        self.deleted.extend(doc_ids)
        return IndexRemoval(points_deleted=len(doc_ids), nodes_deleted=0)


class FakeSources:
    def __init__(self, files: list[SourceFile]) -> None:
        self.files = files

    async def list(self, source: Source) -> list[SourceFile]:
        return list(self.files)

    async def stage(self, file: SourceFile, staging: Path) -> tuple[Path, str]:
        assert file.local_path is not None
        return file.local_path, "hash-of-" + file.name


def test_unchanged_unsupported_and_vanished_documents_without_the_pipeline(tmp_path: Path) -> None:
    cfg = dataclasses.replace(Config(), staging_dir=tmp_path / "staging", local_roots=(str(tmp_path),))
    source = parse_source(str(tmp_path), (tmp_path,))
    kept = SourceFile(uri=f"{source.uri}/a.md", name="a.md", size=10, local_path=tmp_path / "a.md")
    odd = SourceFile(uri=f"{source.uri}/b.xyz", name="b.xyz", size=10, local_path=tmp_path / "b.xyz")
    documents, jobs, index = FakeDocuments(), FakeJobs(), FakeIndex()
    deps = RunDependencies(
        config=cfg,
        documents=documents,
        jobs=jobs,
        index=index,
        sources=FakeSources([kept, odd]),
        cluster=RayCluster(cfg, ""),
        slots=asyncio.Semaphore(1),
        owner="test",
        inference_addr="",
    )
    job = Job(
        job_id="j1", tenant="t", state=JobState.QUEUED, sources=(source.raw,), options=JobOptions(240, 32, sync=True)
    )
    run = JobRun(deps, LiveJob(job), [source], None)
    for uri, content_hash in ((kept.uri, "hash-of-a.md"), (f"{source.uri}/gone.md", "h")):
        documents.records[doc_id_for(uri)] = DocumentRecord(
            "t",
            doc_id_for(uri),
            uri,
            "",
            "markdown",
            content_hash,
            1,
            1,
            DocStatus.INDEXED,
            settings_signature=run.signature,
        )

    asyncio.run(run.execute())

    counts = job.counts
    assert job.state is JobState.PARTIAL_SUCCESS, job.failure
    assert (counts.files_discovered, counts.files_processed) == (2, 2)
    assert (counts.documents_unchanged, counts.documents_failed, counts.documents_deleted) == (1, 1, 1)
    assert [e.code for e in job.errors] == ["UNSUPPORTED_TYPE"]
    assert index.deleted == [doc_id_for(f"{source.uri}/gone.md")]
    assert set(documents.records) == {doc_id_for(kept.uri)}
    assert jobs.saved[0] is JobState.RUNNING and jobs.saved[-1] is JobState.PARTIAL_SUCCESS
