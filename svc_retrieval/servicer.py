"""gRPC servicers of svc_retrieval: hybrid search over Qdrant + Neo4j; owner of the index.

One thin method per RPC: proto -> domain (convert.py) -> domain call -> proto.
The tenant always comes from the caller's identity (``mesh.context.tenant()``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from mesh import context
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import index_service_pb2_grpc, retrieval_service_pb2_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_retrieval import convert, metrics
from svc_retrieval.domain.indexing import Indexer
from svc_retrieval.domain.search import Searcher


class RetrievalServiceServicer(retrieval_service_pb2_grpc.RetrievalServiceServicer):
    """``ragmesh.retrieval.v1.RetrievalService``: one thin method per RPC (proto -> domain -> proto)."""

    def __init__(self, searcher: Searcher) -> None:
        self._searcher = searcher

    async def Search(self, request: rpb.SearchRequest, ctx: grpc.aio.ServicerContext[Any, Any]) -> rpb.SearchResponse:
        """Hybrid search over the caller's corpus."""
        outcome = await self._searcher.search(context.tenant(), convert.query_from_proto(request))
        metrics.observe(outcome)
        return convert.search_to_proto(outcome)

    async def GetChunk(
        self, request: rpb.GetChunkRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> rpb.GetChunkResponse:
        """One of the caller's chunks."""
        chunk = await self._searcher.get_chunk(context.tenant(), request.chunk_id.lower())
        return rpb.GetChunkResponse(chunk=convert.chunk_to_proto(chunk))

    async def ExploreGraph(
        self, request: rpb.ExploreGraphRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> rpb.ExploreGraphResponse:
        """The neighbourhood of an entity in the caller's graph."""
        entity, depth, max_nodes = convert.explore_args(request)
        found = await self._searcher.explore(context.tenant(), entity, depth, max_nodes)
        return convert.neighbourhood_to_proto(found)


class IndexServiceServicer(index_service_pb2_grpc.IndexServiceServicer):
    """``ragmesh.retrieval.v1.IndexService``: one thin method per RPC (proto -> domain -> proto)."""

    def __init__(self, indexer: Indexer) -> None:
        self._indexer = indexer

    async def UpsertChunks(
        self, requests: AsyncIterator[ipb.UpsertChunksRequest], ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertChunksResponse:
        """Writes the streamed batches of the caller's documents."""
        stats = await self._indexer.upsert(context.tenant(), convert.batches_from_proto(requests))
        return convert.upsert_to_proto(stats)

    async def DeleteDocuments(
        self, request: ipb.DeleteDocumentsRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.DeleteDocumentsResponse:
        """Removes the caller's documents with everything they own."""
        stats = await self._indexer.delete_documents(context.tenant(), list(request.doc_ids))
        return convert.delete_to_proto(stats)

    async def GetIndexStats(
        self, request: ipb.GetIndexStatsRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.GetIndexStatsResponse:
        """Counts of what the index holds for the caller."""
        return convert.stats_to_proto(await self._indexer.stats(context.tenant()))
