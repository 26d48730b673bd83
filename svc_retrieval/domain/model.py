"""Values the retrieval domain works with: what is indexed, asked for and found.

Plain frozen dataclasses with no transport or store types, so the logic that
uses them is testable without gRPC, Qdrant or Neo4j.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mesh.sparse import SparseVector


class Leg(enum.Enum):
    """A retrieval leg; values match ``ragmesh.common.v1.RetrievalLeg``."""

    DENSE = 1
    SPARSE = 2
    GRAPH = 3


ALL_LEGS: frozenset[Leg] = frozenset(Leg)


@dataclass(frozen=True)
class DocumentMeta:
    """A document being written: identity, provenance and version."""

    doc_id: str
    source_uri: str
    title: str
    document_type: str
    doc_version: int
    content_hash: str = ""
    links_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChunkInput:
    """A chunk as ingestion sends it, with its vectors and the entities it mentions."""

    chunk_index: int
    text: str
    section: str
    dense: Sequence[float]
    sparse: SparseVector | None = None
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entity:
    """An entity extracted from a document."""

    name: str
    label: str


@dataclass(frozen=True)
class Relation:
    """A typed relation between two entities, by name."""

    source: str
    target: str
    type: str


@dataclass(frozen=True)
class UpsertBatch:
    """One message of an UpsertChunks stream."""

    document: DocumentMeta
    chunks: tuple[ChunkInput, ...] = ()
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()
    document_complete: bool = False


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the index holds it (the vector store's payload)."""

    chunk_id: str
    doc_id: str
    source_uri: str
    title: str
    section: str
    chunk_index: int
    chunk_hash: str
    text: str
    document_type: str
    doc_version: int
    ingested_at: datetime


@dataclass(frozen=True)
class ChunkPoint:
    """A point to write: the stored chunk of one tenant with its vectors."""

    tenant: str
    chunk: StoredChunk
    dense: Sequence[float]
    sparse: SparseVector | None


@dataclass(frozen=True)
class SearchFilter:
    """Metadata filters applied to every leg; empty fields filter nothing."""

    source_prefix: str = ""
    document_types: tuple[str, ...] = ()
    ingested_after: datetime | None = None
    doc_ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Whether the filter lets every chunk through."""
        return not (self.source_prefix or self.document_types or self.ingested_after or self.doc_ids)


@dataclass(frozen=True)
class SearchQuery:
    """What the caller asked for (the tenant travels separately, from the caller's identity)."""

    text: str
    top_k: int
    legs: frozenset[Leg] = ALL_LEGS
    filter: SearchFilter = field(default_factory=SearchFilter)
    skip_rerank: bool = False


@dataclass(frozen=True)
class LegHit:
    """One entry of one leg's ranked list."""

    chunk_id: str
    rank: int
    score: float


@dataclass(frozen=True)
class VectorQuery:
    """A dense and/or sparse search in the vector store, fused there with RRF."""

    tenant: str
    dense: Sequence[float] | None
    sparse: SparseVector | None
    filter: SearchFilter
    leg_limit: int
    fused_limit: int
    rrf_k: int
    dense_weight: float
    sparse_weight: float
    hnsw_ef: int | None = None


@dataclass(frozen=True)
class VectorResult:
    """What the vector store found: each leg's ranking and the fused one, with payloads."""

    dense: tuple[LegHit, ...]
    sparse: tuple[LegHit, ...]
    fused: tuple[LegHit, ...]
    chunks: dict[str, StoredChunk]


@dataclass(frozen=True)
class GraphQuery:
    """The graph leg's request: fulltext over entity names and titles, then chunks."""

    tenant: str
    text: str
    filter: SearchFilter
    limit: int


@dataclass(frozen=True)
class GraphLegResult:
    """The graph leg's hits, best first, and the tenant's corpus version read with them."""

    hits: list[LegHit]
    corpus_version: int


@dataclass(frozen=True)
class SearchHit:
    """One result: the chunk, its fused and rerank scores and how each leg saw it."""

    chunk: StoredChunk
    fused_score: float
    rerank_score: float | None
    legs: tuple[tuple[Leg, LegHit], ...]


@dataclass(frozen=True)
class SearchTimings:
    """Milliseconds per stage of one search."""

    embed_ms: float = 0.0
    vector_ms: float = 0.0
    graph_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class SearchOutcome:
    """The answer to a search."""

    hits: tuple[SearchHit, ...]
    degraded_legs: tuple[Leg, ...]
    timings: SearchTimings
    corpus_version: int


@dataclass(frozen=True)
class UpsertStats:
    """What a stream of upserts changed."""

    documents: int = 0
    points_written: int = 0
    points_unchanged: int = 0
    points_deleted: int = 0
    nodes_created: int = 0
    relationships_created: int = 0
    corpus_version: int = 0


@dataclass(frozen=True)
class DeleteStats:
    """What a delete removed."""

    points_deleted: int
    nodes_deleted: int
    corpus_version: int


@dataclass(frozen=True)
class GraphCounts:
    """The graph's node and relationship counts for one tenant."""

    documents: int
    chunk_nodes: int
    entity_nodes: int
    relationships: int


@dataclass(frozen=True)
class IndexStats:
    """Everything the index holds for one tenant."""

    points: int
    graph: GraphCounts
    corpus_version: int


@dataclass(frozen=True)
class GraphNode:
    """A node of a graph neighbourhood."""

    node_id: str
    kind: str
    label: str
    name: str
    source_uri: str = ""


@dataclass(frozen=True)
class GraphEdge:
    """An edge of a graph neighbourhood."""

    source_id: str
    target_id: str
    type: str


@dataclass(frozen=True)
class Neighbourhood:
    """The part of the graph around an entity."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    truncated: bool
