"""Re-ingesting: unchanged documents cost nothing, a changed one is replaced, sync removes the vanished."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from tests.support.ingest import SAMPLES, Ingest, table_rows

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

PAGES = [
    "k8s/concepts/workloads/pods/pod-qos.md",
    "k8s/concepts/architecture/garbage-collection.md",
    "k8s/concepts/overview/working-with-objects/namespaces.md",
    "k8s/concepts/policy/limit-range.md",
    "k8s/concepts/workloads/pods/_index.md",
]


def _copy(target: Path) -> Path:
    for page in PAGES:
        dest = target / page
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES / page, dest)
    return target


async def test_reingest_skips_edits_replace_and_sync_deletes(ingest: Ingest, tmp_path: Path) -> None:
    corpus = _copy(tmp_path / "corpus")

    first = await ingest.run([str(corpus)], skip_graph=True)
    assert first.state == pb.JOB_STATE_SUCCEEDED, first.failure
    assert first.counts.files_discovered == len(PAGES)
    assert first.counts.documents_ingested == len(PAGES)
    assert first.counts.documents_failed == 0
    assert [(f.format, f.files, f.failed) for f in first.counts.formats] == [("md", len(PAGES), 0)]
    docs = {d.source_uri: d for d in await ingest.documents()}
    assert len(docs) == len(PAGES)
    assert all(d.status == pb.DOCUMENT_STATUS_INDEXED and d.doc_version == 1 for d in docs.values())
    total_chunks = sum(d.chunk_count for d in docs.values())
    assert first.counts.chunks_embedded == total_chunks
    assert first.counts.points_written == total_chunks
    stats = await ingest.retrieval.stats(ingest.tenant)
    assert stats.points == total_chunks
    assert stats.documents == len(PAGES)
    version_after_first = stats.corpus_version

    again = await ingest.run([str(corpus)], skip_graph=True)
    assert again.state == pb.JOB_STATE_SUCCEEDED
    assert again.counts.documents_unchanged == len(PAGES)
    assert again.counts.documents_ingested == 0
    assert again.counts.chunks_embedded == 0
    assert again.counts.points_written == 0
    assert again.counts.nodes_written == 0
    assert (await ingest.retrieval.stats(ingest.tenant)).points == total_chunks

    edited = corpus / PAGES[0]
    edited.write_text(edited.read_text() + "\n\n## Added section\n\nThe QoS class of a Pod never changes.\n")
    changed = await ingest.run([str(corpus)], skip_graph=True)
    assert changed.state == pb.JOB_STATE_SUCCEEDED
    assert changed.counts.documents_ingested == 1
    assert changed.counts.documents_unchanged == len(PAGES) - 1
    after_edit = {d.source_uri: d for d in await ingest.documents()}
    edited_doc = next(d for uri, d in after_edit.items() if uri.endswith("pod-qos.md"))
    assert edited_doc.doc_version == 2
    for uri, doc in after_edit.items():
        if doc.doc_id != edited_doc.doc_id:
            assert doc.doc_version == 1 and doc.content_hash == docs[uri].content_hash
    stats = await ingest.retrieval.stats(ingest.tenant)
    assert stats.points == sum(d.chunk_count for d in after_edit.values())
    assert stats.corpus_version > version_after_first

    (corpus / PAGES[1]).unlink()
    synced = await ingest.run([str(corpus)], skip_graph=True, sync=True)
    assert synced.state == pb.JOB_STATE_SUCCEEDED
    assert synced.counts.documents_deleted == 1
    remaining = await ingest.documents()
    assert len(remaining) == len(PAGES) - 1
    assert not any(d.source_uri.endswith("garbage-collection.md") for d in remaining)
    stats = await ingest.retrieval.stats(ingest.tenant)
    assert stats.points == sum(d.chunk_count for d in remaining)
    assert stats.documents == len(PAGES) - 1
    rows = await table_rows(ingest.dsn, ingest.tenant)
    assert len(rows) == len(PAGES) - 1
