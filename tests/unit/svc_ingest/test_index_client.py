"""IndexService messages of a document: upsert batching."""

from __future__ import annotations

from svc_ingest.clients.index import upsert_requests
from svc_ingest.domain.assembly import ChunkResult, DocumentResult
from svc_ingest.domain.graph import Entity, Relation


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
        upsert_requests(_doc(300), source_uri="file:///p.md", content_hash="h", doc_version=2, links_to=["x"])
    )
    assert [len(r.chunks) for r in requests] == [128, 128, 44]
    assert [r.document_complete for r in requests] == [False, False, True]
    first = requests[0]
    assert first.document.doc_version == 2 and first.document.links_to == ["x"]
    assert {(e.name, e.label) for e in first.entities} == {("Pod", "Resource"), ("kubelet", "Component")}
    assert [(r.source, r.type, r.target) for r in first.relations] == [("kubelet", "MANAGES", "Pod")]
    assert list(first.chunks[0].mentions) == ["Pod", "kubelet"]


def test_messages_are_cut_before_graph_facts_pass_the_proto_limit() -> None:
    from dataclasses import replace

    from svc_ingest.clients.index import MAX_GRAPH_FACTS

    doc = _doc(100)
    many = tuple(Relation(f"e{i}", f"f{i}", "RELATED_TO") for i in range(96))
    doc.chunks[:] = [replace(c, relations=many) for c in doc.chunks]
    requests = list(upsert_requests(doc, source_uri="file:///p.md", content_hash="h", doc_version=1, links_to=[]))
    assert [len(r.chunks) for r in requests] == [42, 42, 16]
    assert all(len(r.relations) <= MAX_GRAPH_FACTS for r in requests)
    assert [r.document_complete for r in requests] == [False, False, True]
    assert sum(len(r.chunks) for r in requests) == 100
