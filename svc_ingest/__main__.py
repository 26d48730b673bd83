"""``python -m svc_ingest``: serve document ingestion through a Ray Data pipeline."""

from __future__ import annotations

import asyncio

from mesh.server import ServiceBinding, serve
from ragmesh.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from svc_ingest import servicer
from svc_ingest.config import Config


def bindings() -> list[ServiceBinding]:
    return [
        ServiceBinding(
            full_name=ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
            add_to_server=ingest_service_pb2_grpc.add_IngestServiceServicer_to_server,
            servicer=servicer.IngestServiceServicer(),
        ),
    ]


def main() -> None:
    asyncio.run(serve("svc_ingest", bindings(), Config.from_env()))


if __name__ == "__main__":
    main()
