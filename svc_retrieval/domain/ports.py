"""What the domain needs from stores and models, as protocols.

``clients/`` implements them over Qdrant (embedded Edge or a server), Neo4j and
InferenceService; unit tests implement them with fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from svc_retrieval.domain.model import (
    ChunkPoint,
    DeleteStats,
    DocumentMeta,
    Entity,
    GraphCounts,
    GraphLegResult,
    GraphQuery,
    Neighbourhood,
    Relation,
    SearchFilter,
    StoredChunk,
    VectorQuery,
    VectorResult,
)


class VectorIndex(Protocol):
    """The chunk collection: dense + sparse vectors with payload, every call scoped to one tenant."""

    async def open(self) -> None:
        """Creates the collection and its payload indexes when missing."""
        ...

    async def close(self) -> None:
        """Releases the store."""
        ...

    async def existing_versions(self, tenant: str, chunk_ids: Sequence[str]) -> dict[str, int]:
        """The doc_version of each of ``chunk_ids`` that the tenant already has."""
        ...

    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        """Writes points (new or replaced)."""
        ...

    async def set_version(self, tenant: str, chunk_ids: Sequence[str], doc_version: int, ingested_at_iso: str) -> None:
        """Moves unchanged chunks to a new document version."""
        ...

    async def delete_stale(self, tenant: str, doc_id: str, keep_version: int) -> int:
        """Deletes the document's points of every other version; returns how many."""
        ...

    async def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> int:
        """Deletes every point of the documents; returns how many."""
        ...

    async def count(self, tenant: str) -> int:
        """Points the tenant has."""
        ...

    async def search(self, query: VectorQuery) -> VectorResult:
        """Dense and sparse legs with RRF fusion in the engine, plus each leg's own ranking."""
        ...

    async def fetch(self, tenant: str, chunk_ids: Sequence[str], search_filter: SearchFilter) -> dict[str, StoredChunk]:
        """The tenant's chunks among ``chunk_ids`` that pass the filter."""
        ...


@dataclass(frozen=True)
class GraphWrite:
    """The graph facts of one upsert batch."""

    tenant: str
    document: DocumentMeta
    ingested_at_iso: str
    chunks: Sequence[tuple[str, int, Sequence[str]]]
    """(chunk_id, chunk_index, entity names it mentions) per chunk."""
    entities: Sequence[Entity]
    relations: Sequence[Relation]
    document_complete: bool
    points_changed: bool
    """Whether the vector store changed for this batch, so the corpus version must move."""


@dataclass(frozen=True)
class GraphWriteResult:
    """What a graph write changed, and the tenant's corpus version after it."""

    nodes_created: int
    relationships_created: int
    nodes_deleted: int
    corpus_version: int


class GraphStore(Protocol):
    """The knowledge graph and the per-tenant corpus version, every call scoped to one tenant."""

    async def open(self) -> None:
        """Creates constraints and the fulltext index when missing."""
        ...

    async def close(self) -> None:
        """Releases the driver."""
        ...

    async def write(self, batch: GraphWrite) -> GraphWriteResult:
        """MERGEs one batch in one transaction; bumps the corpus version when anything changed."""
        ...

    async def delete_documents(self, tenant: str, doc_ids: Sequence[str], points_deleted: int) -> DeleteStats:
        """Removes documents with their chunks, links and orphaned entities; bumps the version."""
        ...

    async def counts(self, tenant: str) -> GraphCounts:
        """Nodes and relationships the tenant has."""
        ...

    async def corpus_version(self, tenant: str) -> int:
        """The tenant's corpus version (0 before its first write)."""
        ...

    async def search(self, query: GraphQuery) -> GraphLegResult:
        """The graph leg: chunks reached from entity-name and title matches, best first,
        with the tenant's corpus version read in the same transaction."""
        ...

    async def explore(self, tenant: str, entity: str, depth: int, max_nodes: int) -> Neighbourhood | None:
        """The neighbourhood of the best-matching entity, or None when nothing matches."""
        ...


class Embedder(Protocol):
    """Embeds search queries with the model the index was built with."""

    async def embed_query(self, text: str) -> list[float]:
        """The unit-length dense vector of a query."""
        ...


@dataclass(frozen=True)
class RerankResult:
    """Scores of candidates, by their position in the request, best first."""

    order: Sequence[tuple[int, float]]
    method: str


class Reranker(Protocol):
    """Scores candidate passages against the query."""

    async def method(self) -> str:
        """How the reranker scores ("cross-encoder", "embedding-cosine", ...); decides its blend weight."""
        ...

    async def rerank(self, query: str, documents: Sequence[str]) -> RerankResult:
        """The candidates' scores, best first."""
        ...
