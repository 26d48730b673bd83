"""gRPC servicers of svc_retrieval: hybrid search over Qdrant + Neo4j; owner of the index."""

from __future__ import annotations

from ragmesh.retrieval.v1 import index_service_pb2_grpc, retrieval_service_pb2_grpc


class RetrievalServiceServicer(retrieval_service_pb2_grpc.RetrievalServiceServicer):
    """``ragmesh.retrieval.v1.RetrievalService``: one thin method per RPC (proto -> domain -> proto)."""


class IndexServiceServicer(index_service_pb2_grpc.IndexServiceServicer):
    """``ragmesh.retrieval.v1.IndexService``: one thin method per RPC (proto -> domain -> proto)."""
