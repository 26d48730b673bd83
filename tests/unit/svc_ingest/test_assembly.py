"""Documents are reassembled from rows that arrive in any order."""

from __future__ import annotations

import json
from typing import Any

from svc_ingest.domain.assembly import DocumentAssembler


def _doc(doc_id: str, chunks: int) -> dict[str, Any]:
    info = {"title": "T", "document_type": "markdown", "links": ["/x/"], "ocr_pages": 0}
    return {"kind": "doc", "doc_id": doc_id, "chunk_count": chunks, "info": json.dumps(info)}


def _chunk(doc_id: str, index: int, graph: str = "") -> dict[str, Any]:
    return {
        "kind": "chunk",
        "doc_id": doc_id,
        "chunk_index": index,
        "chunk_count": 2,
        "text": f"text {index}",
        "section": "S",
        "dense": [0.1, 0.2],
        "sparse_indices": [1],
        "sparse_values": [0.5],
        "graph": graph,
    }


def test_a_document_completes_when_all_rows_arrived_in_any_order() -> None:
    assembler = DocumentAssembler()
    facts = json.dumps({"entities": [{"name": "Pod", "label": "Resource"}], "relations": []})
    done, failed = assembler.add([_chunk("a", 1, facts), _chunk("b", 0)])
    assert done == [] and failed == []
    done, _ = assembler.add([_doc("a", 2)])
    assert done == []
    done, _ = assembler.add([_chunk("a", 0)])
    assert [d.doc_id for d in done] == ["a"]
    assert [c.index for c in done[0].chunks] == [0, 1]
    assert done[0].chunks[1].entities[0].name == "Pod"
    assert done[0].links == ["/x/"]
    assert assembler.unfinished() == ["b"]


def test_an_error_row_fails_the_document() -> None:
    assembler = DocumentAssembler()
    error = {"kind": "error", "doc_id": "c", "info": json.dumps({"code": "ENCRYPTED_PDF", "reason": "locked"})}
    done, failed = assembler.add([error])
    assert done == []
    assert [(f.doc_id, f.code, f.reason) for f in failed] == [("c", "ENCRYPTED_PDF", "locked")]
    assert assembler.in_flight == 0


def test_failed_graph_extraction_is_marked() -> None:
    assembler = DocumentAssembler()
    done, _ = assembler.add([_doc("d", 1), {**_chunk("d", 0, json.dumps({"failed": True})), "chunk_count": 1}])
    assert done[0].chunks[0].graph_failed
