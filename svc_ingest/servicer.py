"""gRPC servicers of svc_ingest: document ingestion through a Ray Data pipeline."""

from __future__ import annotations

from ragmesh.ingest.v1 import ingest_service_pb2_grpc


class IngestServiceServicer(ingest_service_pb2_grpc.IngestServiceServicer):
    """``ragmesh.ingest.v1.IngestService``: one thin method per RPC (proto -> domain -> proto)."""
