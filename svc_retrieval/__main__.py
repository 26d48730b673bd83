"""``python -m svc_retrieval``: serve hybrid search over Qdrant + Neo4j; owner of the index."""

from __future__ import annotations

import asyncio

from mesh.server import ServiceBinding, serve_opened
from mesh.settings import MeshSettings
from ragmesh.retrieval.v1 import (
    index_service_pb2,
    index_service_pb2_grpc,
    retrieval_service_pb2,
    retrieval_service_pb2_grpc,
)
from svc_retrieval import servicer
from svc_retrieval.app import Components, open_components
from svc_retrieval.config import Config


def bindings(components: Components) -> list[ServiceBinding]:
    """The two services svc_retrieval serves, over the opened components."""
    return [
        ServiceBinding(
            full_name=retrieval_service_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name,
            add_to_server=retrieval_service_pb2_grpc.add_RetrievalServiceServicer_to_server,
            servicer=servicer.RetrievalServiceServicer(components.searcher),
        ),
        ServiceBinding(
            full_name=index_service_pb2.DESCRIPTOR.services_by_name["IndexService"].full_name,
            add_to_server=index_service_pb2_grpc.add_IndexServiceServicer_to_server,
            servicer=servicer.IndexServiceServicer(components.indexer),
        ),
    ]


def main() -> None:
    """Runs the service until SIGTERM/SIGINT."""
    config = Config.from_env()
    settings = MeshSettings.from_env()
    asyncio.run(serve_opened("svc_retrieval", lambda: open_components(config, settings), bindings, config))


if __name__ == "__main__":
    main()
