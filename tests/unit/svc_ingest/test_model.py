"""Document state decisions: what is current, which version to write."""

from __future__ import annotations

from svc_ingest.domain.model import DocStatus, DocumentRecord, JobCounts, doc_id_for


def _record(**kw: object) -> DocumentRecord:
    values: dict[str, object] = {
        "tenant": "t",
        "doc_id": "d",
        "source_uri": "file:///a.md",
        "title": "A",
        "document_type": "markdown",
        "content_hash": "h1",
        "doc_version": 3,
        "chunk_count": 4,
        "status": DocStatus.INDEXED,
        "settings_signature": "s",
    }
    values.update(kw)
    return DocumentRecord(**values)  # type: ignore[arg-type]


def test_current_only_when_indexed_with_same_content_and_settings() -> None:
    assert _record().is_current("h1", "s")
    assert not _record().is_current("h2", "s")
    assert not _record().is_current("h1", "other-settings")
    assert not _record(status=DocStatus.PENDING).is_current("h1", "s")
    assert not _record(status=DocStatus.FAILED).is_current("h1", "s")


def test_versions_grow_and_an_interrupted_write_keeps_its_version() -> None:
    assert _record().next_version("h2") == 4
    pending = _record(status=DocStatus.PENDING, pending_hash="h2", pending_version=4)
    assert pending.next_version("h2") == 4
    assert pending.next_version("h3") == 5


def test_doc_ids_are_stable_per_uri() -> None:
    assert doc_id_for("file:///a.md") == doc_id_for("file:///a.md")
    assert doc_id_for("file:///a.md") != doc_id_for("file:///b.md")
    assert len(doc_id_for("s3://bucket/key")) == 32


def test_counts_round_trip_through_json() -> None:
    counts = JobCounts(files_discovered=3, documents_failed=1)
    counts.format("pdf").files = 2
    counts.format("pdf").failed = 1
    again = JobCounts.from_json(counts.to_json())
    assert again == counts
