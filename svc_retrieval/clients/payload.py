"""The chunk payload both vector backends store, and the filters over it.

One schema for the embedded engine and the server: the payload fields, which of
them are indexed (tenant first: every query filters on it), and the stored
form of each value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from svc_retrieval.domain.model import ChunkPoint, StoredChunk

DENSE_VECTOR = "dense"
"""Name of the dense vector."""
SPARSE_VECTOR = "sparse"
"""Name of the sparse vector (IDF modifier)."""

DOC_FIELD = "doc_id"
TYPE_FIELD = "document_type"
KEYWORD_FIELDS = (DOC_FIELD, TYPE_FIELD)
"""Keyword payload indexes besides tenant and source_uri."""
TENANT_FIELD = "tenant"
SOURCE_FIELD = "source_uri"
"""Keyword index with prefix matching (the source_prefix filter)."""
DATETIME_FIELD = "ingested_at"
VERSION_FIELD = "doc_version"
"""Integer index (stale-version deletes)."""


def to_payload(point: ChunkPoint) -> dict[str, Any]:
    """The stored payload of a point."""
    chunk = point.chunk
    return {
        "tenant": point.tenant,
        "doc_id": chunk.doc_id,
        "source_uri": chunk.source_uri,
        "title": chunk.title,
        "section": chunk.section,
        "chunk_index": chunk.chunk_index,
        "chunk_hash": chunk.chunk_hash,
        "doc_version": chunk.doc_version,
        "document_type": chunk.document_type,
        "ingested_at": chunk.ingested_at.isoformat(),
        "text": chunk.text,
    }


def from_payload(chunk_id: str, payload: Mapping[str, Any]) -> StoredChunk:
    """The chunk a stored payload describes."""
    return StoredChunk(
        chunk_id=chunk_id,
        doc_id=str(payload.get("doc_id", "")),
        source_uri=str(payload.get("source_uri", "")),
        title=str(payload.get("title", "")),
        section=str(payload.get("section", "")),
        chunk_index=int(payload.get("chunk_index", 0)),
        chunk_hash=str(payload.get("chunk_hash", "")),
        text=str(payload.get("text", "")),
        document_type=str(payload.get("document_type", "")),
        doc_version=int(payload.get("doc_version", 0)),
        ingested_at=datetime.fromisoformat(str(payload["ingested_at"])),
    )
