"""``python -m svc_retrieval``: serve hybrid search over Qdrant + Neo4j; owner of the index."""

from __future__ import annotations

import asyncio

from mesh.server import ServiceBinding, serve
from ragmesh.retrieval.v1 import (
    index_service_pb2,
    index_service_pb2_grpc,
    retrieval_service_pb2,
    retrieval_service_pb2_grpc,
)
from svc_retrieval import servicer
from svc_retrieval.config import Config


def bindings() -> list[ServiceBinding]:
    return [
        ServiceBinding(
            full_name=retrieval_service_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name,
            add_to_server=retrieval_service_pb2_grpc.add_RetrievalServiceServicer_to_server,
            servicer=servicer.RetrievalServiceServicer(),
        ),
        ServiceBinding(
            full_name=index_service_pb2.DESCRIPTOR.services_by_name["IndexService"].full_name,
            add_to_server=index_service_pb2_grpc.add_IndexServiceServicer_to_server,
            servicer=servicer.IndexServiceServicer(),
        ),
    ]


def main() -> None:
    asyncio.run(serve("svc_retrieval", bindings(), Config.from_env()))


if __name__ == "__main__":
    main()
