"""RetrievalService over gRPC: search (whose response carries the corpus version) and graph exploration.

The tenant travels in the caller-identity metadata the mesh channel adds; it is
never put in a request body.
"""

from __future__ import annotations

import grpc

from mesh.downstream import downstream_error
from mesh.validation import max_len, max_value
from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from svc_agent.domain.model import Source
from svc_agent.domain.ports import GraphEdge, GraphNode, Neighbourhood, SearchOutcome

SERVICE = "ragmesh.retrieval.v1.RetrievalService"
MAX_QUERY_CHARS = max_len(rpb.SearchRequest, "query")
"""Longest query Search accepts (the contract's rule)."""
MAX_TOP_K = max_value(rpb.SearchRequest, "top_k")
"""Most results Search returns (the contract's rule)."""
MAX_ENTITY_CHARS = max_len(rpb.ExploreGraphRequest, "entity")
"""Longest entity name ExploreGraph accepts (the contract's rule)."""

_LEG_NAMES = {
    common_pb2.RETRIEVAL_LEG_DENSE: "dense",
    common_pb2.RETRIEVAL_LEG_SPARSE: "sparse",
    common_pb2.RETRIEVAL_LEG_GRAPH: "graph",
}


def source_from_hit(hit: rpb.SearchHit) -> Source:
    """A search hit as the loop's Source; relevance is the dense leg's cosine when that leg found it."""
    chunk = hit.chunk
    relevance = next((leg.score for leg in hit.leg_scores if leg.leg == common_pb2.RETRIEVAL_LEG_DENSE), None)
    return Source(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        source_uri=chunk.source_uri,
        title=chunk.title,
        text=chunk.text,
        section=chunk.section,
        score=hit.rerank_score if hit.HasField("rerank_score") else hit.fused_score,
        relevance=relevance,
    )


class RetrievalClient:
    """Retriever over RetrievalService."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._search = rpb_grpc.RetrievalServiceStub(channel)

    async def search(self, query: str, top_k: int, *, lexical: bool = False) -> SearchOutcome:
        """Hybrid search (every leg, reranked) of the caller's corpus; ``lexical``: the sparse leg alone."""
        request = rpb.SearchRequest(query=query.strip()[:MAX_QUERY_CHARS], top_k=max(1, min(top_k, MAX_TOP_K)))
        if lexical:
            request.legs.append(common_pb2.RETRIEVAL_LEG_SPARSE)
            request.skip_rerank = True
        try:
            response = await self._search.Search(request)
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "searching the documents") from exc
        return SearchOutcome(
            sources=tuple(source_from_hit(hit) for hit in response.hits),
            corpus_version=response.corpus_version,
            degraded_legs=tuple(_LEG_NAMES.get(leg, str(leg)) for leg in response.degraded_legs),
            total_ms=response.timings.total_ms,
        )

    async def explore_graph(self, entity: str, depth: int, max_nodes: int) -> Neighbourhood:
        """The entity's neighbourhood; empty when no entity matches."""
        request = rpb.ExploreGraphRequest(entity=entity.strip()[:MAX_ENTITY_CHARS], depth=depth, max_nodes=max_nodes)
        try:
            response = await self._search.ExploreGraph(request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return Neighbourhood(nodes=(), edges=())
            raise downstream_error(exc, "exploring the knowledge graph") from exc
        return Neighbourhood(
            nodes=tuple(GraphNode(n.node_id, n.kind, n.label, n.name, n.source_uri) for n in response.nodes),
            edges=tuple(GraphEdge(e.source_id, e.target_id, e.type) for e in response.edges),
            truncated=response.truncated,
        )
