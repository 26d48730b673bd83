"""Every proto <-> domain mapping of svc_retrieval, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC

from mesh.errors import FieldViolation, InvalidArgument
from mesh.sparse import SparseVector
from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_retrieval.domain.model import (
    ALL_LEGS,
    ChunkInput,
    DeleteStats,
    DocumentMeta,
    Entity,
    IndexStats,
    Leg,
    Neighbourhood,
    Relation,
    SearchFilter,
    SearchOutcome,
    SearchQuery,
    StoredChunk,
    UpsertBatch,
    UpsertStats,
)

_LEG_TO_PROTO = {
    Leg.DENSE: common_pb2.RETRIEVAL_LEG_DENSE,
    Leg.SPARSE: common_pb2.RETRIEVAL_LEG_SPARSE,
    Leg.GRAPH: common_pb2.RETRIEVAL_LEG_GRAPH,
}
_LEG_FROM_PROTO = {v: k for k, v in _LEG_TO_PROTO.items()}

DEFAULT_TOP_K = 10
DEFAULT_DEPTH = 1
DEFAULT_MAX_NODES = 50


# -- IndexService -----------------------------------------------------------


def sparse_from_proto(vector: common_pb2.SparseVector, field: str) -> SparseVector:
    """A sparse vector; INVALID_ARGUMENT when indices and values do not pair up."""
    if len(vector.indices) != len(vector.values):
        raise InvalidArgument(
            f"{field}: {len(vector.indices)} indices but {len(vector.values)} values",
            reason="INVALID_SPARSE_VECTOR",
            violations=[FieldViolation(field, "indices and values must have the same length")],
        )
    return SparseVector(tuple(vector.indices), tuple(vector.values))


def batch_from_proto(request: ipb.UpsertChunksRequest) -> UpsertBatch:
    """One UpsertChunks message as a domain batch."""
    doc = request.document
    document = DocumentMeta(
        doc_id=doc.doc_id,
        source_uri=doc.source_uri,
        title=doc.title,
        document_type=doc.document_type,
        doc_version=doc.doc_version,
        content_hash=doc.content_hash,
        links_to=tuple(doc.links_to),
    )
    chunks = tuple(
        ChunkInput(
            chunk_index=c.chunk_index,
            text=c.text,
            section=c.section,
            dense=c.dense,
            # An empty sparse vector counts as none: the index then encodes the chunk itself.
            sparse=sparse_from_proto(c.sparse, f"chunks[{i}].sparse") if c.sparse.indices or c.sparse.values else None,
            mentions=tuple(c.mentions),
        )
        for i, c in enumerate(request.chunks)
    )
    return UpsertBatch(
        document=document,
        chunks=chunks,
        entities=tuple(Entity(e.name, e.label) for e in request.entities),
        relations=tuple(Relation(r.source, r.target, r.type) for r in request.relations),
        document_complete=request.document_complete,
    )


async def batches_from_proto(requests: AsyncIterator[ipb.UpsertChunksRequest]) -> AsyncIterator[UpsertBatch]:
    """The stream of UpsertChunks messages as domain batches."""
    async for request in requests:
        yield batch_from_proto(request)


def upsert_to_proto(stats: UpsertStats) -> ipb.UpsertChunksResponse:
    """The UpsertChunks response."""
    return ipb.UpsertChunksResponse(
        documents=stats.documents,
        points_written=stats.points_written,
        points_unchanged=stats.points_unchanged,
        points_deleted=stats.points_deleted,
        nodes_created=stats.nodes_created,
        relationships_created=stats.relationships_created,
        corpus_version=stats.corpus_version,
    )


def delete_to_proto(stats: DeleteStats) -> ipb.DeleteDocumentsResponse:
    """The DeleteDocuments response."""
    return ipb.DeleteDocumentsResponse(
        points_deleted=stats.points_deleted, nodes_deleted=stats.nodes_deleted, corpus_version=stats.corpus_version
    )


def stats_to_proto(stats: IndexStats) -> ipb.GetIndexStatsResponse:
    """The GetIndexStats response."""
    return ipb.GetIndexStatsResponse(
        points=stats.points,
        documents=stats.graph.documents,
        chunk_nodes=stats.graph.chunk_nodes,
        entity_nodes=stats.graph.entity_nodes,
        relationships=stats.graph.relationships,
        corpus_version=stats.corpus_version,
    )


# -- RetrievalService -------------------------------------------------------


def filter_from_proto(flt: rpb.SearchFilter) -> SearchFilter:
    """Search filters; an unset ingested_after filters nothing."""
    ingested_after = None
    if flt.HasField("ingested_after"):
        try:
            ingested_after = flt.ingested_after.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError) as exc:
            # Out-of-range seconds or nanos: a Timestamp no clock can show.
            raise InvalidArgument(
                "filter.ingested_after is not a valid timestamp",
                reason="INVALID_TIMESTAMP",
                violations=[FieldViolation("filter.ingested_after", str(exc))],
            ) from exc
    return SearchFilter(
        source_prefix=flt.source_prefix,
        document_types=tuple(flt.document_types),
        ingested_after=ingested_after,
        doc_ids=tuple(flt.doc_ids),
    )


def query_from_proto(request: rpb.SearchRequest) -> SearchQuery:
    """A search request as a domain query (empty legs mean all of them, 0 top_k means 10)."""
    legs = frozenset(_LEG_FROM_PROTO[v] for v in request.legs) or ALL_LEGS
    return SearchQuery(
        text=request.query,
        top_k=request.top_k or DEFAULT_TOP_K,
        legs=legs,
        filter=filter_from_proto(request.filter),
        skip_rerank=request.skip_rerank,
    )


def _fill_chunk(message: common_pb2.Chunk, chunk: StoredChunk) -> None:
    """Writes ``chunk`` into ``message`` in place (no sub-message copies)."""
    message.chunk_id = chunk.chunk_id
    message.doc_id = chunk.doc_id
    message.source_uri = chunk.source_uri
    message.title = chunk.title
    message.section = chunk.section
    message.chunk_index = chunk.chunk_index
    message.text = chunk.text
    message.document_type = chunk.document_type
    message.doc_version = chunk.doc_version
    message.ingested_at.FromDatetime(chunk.ingested_at)


def chunk_to_proto(chunk: StoredChunk) -> common_pb2.Chunk:
    """A stored chunk as the common Chunk message."""
    message = common_pb2.Chunk()
    _fill_chunk(message, chunk)
    return message


def search_to_proto(outcome: SearchOutcome) -> rpb.SearchResponse:
    """The Search response, built in place: it is on every search's path, and copying
    each hit's sub-messages into the response would cost twice the time."""
    t = outcome.timings
    response = rpb.SearchResponse(
        degraded_legs=[_LEG_TO_PROTO[leg] for leg in outcome.degraded_legs],
        timings=rpb.SearchTimings(
            embed_ms=t.embed_ms, vector_ms=t.vector_ms, graph_ms=t.graph_ms, rerank_ms=t.rerank_ms, total_ms=t.total_ms
        ),
        corpus_version=outcome.corpus_version,
    )
    for hit in outcome.hits:
        message = response.hits.add()
        _fill_chunk(message.chunk, hit.chunk)
        message.fused_score = hit.fused_score
        if hit.rerank_score is not None:
            message.rerank_score = hit.rerank_score
        for leg, leg_hit in hit.legs:
            message.leg_scores.add(leg=_LEG_TO_PROTO[leg], rank=leg_hit.rank, score=leg_hit.score)
    return response


def explore_args(request: rpb.ExploreGraphRequest) -> tuple[str, int, int]:
    """(entity, depth, max_nodes) with the proto's defaults applied."""
    return request.entity, request.depth or DEFAULT_DEPTH, request.max_nodes or DEFAULT_MAX_NODES


def neighbourhood_to_proto(found: Neighbourhood) -> rpb.ExploreGraphResponse:
    """The ExploreGraph response."""
    return rpb.ExploreGraphResponse(
        nodes=[
            rpb.GraphNode(node_id=n.node_id, kind=n.kind, label=n.label, name=n.name, source_uri=n.source_uri)
            for n in found.nodes
        ],
        edges=[rpb.GraphEdge(source_id=e.source_id, target_id=e.target_id, type=e.type) for e in found.edges],
        truncated=found.truncated,
    )
