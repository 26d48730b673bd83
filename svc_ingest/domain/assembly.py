"""Reassembling documents from pipeline rows, which arrive in any order.

A document is complete when its document row and all of its chunk rows have
arrived; a parse failure is a single error row. The assembler holds only the
documents still in flight.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from svc_ingest.domain.graph import Entity, Relation


@dataclass(frozen=True)
class ChunkResult:
    """A chunk with everything the index needs."""

    index: int
    text: str
    section: str
    dense: tuple[float, ...]
    sparse_indices: tuple[int, ...]
    sparse_values: tuple[float, ...]
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()
    graph_failed: bool = False


@dataclass
class DocumentResult:
    """A parsed, chunked and embedded document, ready to write."""

    doc_id: str
    title: str
    document_type: str
    links: list[str]
    ocr_pages: int
    chunks: list[ChunkResult]


@dataclass(frozen=True)
class DocumentFailure:
    """A document the pipeline could not produce."""

    doc_id: str
    code: str
    reason: str


@dataclass
class _Pending:
    info: dict[str, Any] | None = None
    expected: int = -1
    chunks: dict[int, ChunkResult] = field(default_factory=dict)


def _tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    return tuple(value.tolist() if hasattr(value, "tolist") else value)


def _graph(raw: Any) -> tuple[tuple[Entity, ...], tuple[Relation, ...], bool]:
    if not isinstance(raw, str) or not raw:
        return (), (), False
    data = json.loads(raw)
    if data.get("failed"):
        return (), (), True
    entities = tuple(Entity(**e) for e in data.get("entities", []))
    relations = tuple(Relation(**r) for r in data.get("relations", []))
    return entities, relations, False


class DocumentAssembler:
    """Collects rows and hands out documents as they complete."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    @property
    def in_flight(self) -> int:
        """Documents with some rows but not all."""
        return len(self._pending)

    def add(self, rows: Iterable[Mapping[str, Any]]) -> tuple[list[DocumentResult], list[DocumentFailure]]:
        """Adds rows; returns the documents and failures they completed."""
        done: list[DocumentResult] = []
        failed: list[DocumentFailure] = []
        touched: set[str] = set()
        for row in rows:
            doc_id = str(row["doc_id"])
            kind = row["kind"]
            if kind == "error":
                info = json.loads(row["info"])
                self._pending.pop(doc_id, None)
                failed.append(DocumentFailure(doc_id, info.get("code", "PARSER_ERROR"), info.get("reason", "")))
                continue
            pending = self._pending.setdefault(doc_id, _Pending())
            if kind == "doc":
                pending.info = json.loads(row["info"])
                pending.expected = int(row["chunk_count"])
            elif kind == "chunk":
                entities, relations, graph_failed = _graph(row.get("graph"))
                index = int(row["chunk_index"])
                pending.chunks[index] = ChunkResult(
                    index=index,
                    text=str(row["text"]),
                    section=str(row["section"]),
                    dense=_tuple(row.get("dense")),
                    sparse_indices=_tuple(row["sparse_indices"]),
                    sparse_values=_tuple(row["sparse_values"]),
                    entities=entities,
                    relations=relations,
                    graph_failed=graph_failed,
                )
            touched.add(doc_id)
        for doc_id in touched:
            entry = self._pending.get(doc_id)
            if entry is None or entry.info is None or len(entry.chunks) < entry.expected:
                continue
            del self._pending[doc_id]
            info = entry.info
            done.append(
                DocumentResult(
                    doc_id=doc_id,
                    title=str(info.get("title", "")),
                    document_type=str(info.get("document_type", "")),
                    links=list(info.get("links", [])),
                    ocr_pages=int(info.get("ocr_pages", 0)),
                    chunks=[entry.chunks[i] for i in sorted(entry.chunks)],
                )
            )
        return done, failed

    def unfinished(self) -> list[str]:
        """Doc ids still missing rows (after the pipeline ended these are lost rows: a bug)."""
        return list(self._pending)
