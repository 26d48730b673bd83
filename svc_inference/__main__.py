"""``python -m svc_inference``: serve model serving (LLM, embeddings, reranker) on Ray Serve."""

from __future__ import annotations

import asyncio

from mesh.server import ServiceBinding, serve
from ragmesh.inference.v1 import inference_service_pb2, inference_service_pb2_grpc
from svc_inference import servicer
from svc_inference.config import Config


def bindings() -> list[ServiceBinding]:
    return [
        ServiceBinding(
            full_name=inference_service_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name,
            add_to_server=inference_service_pb2_grpc.add_InferenceServiceServicer_to_server,
            servicer=servicer.InferenceServiceServicer(),
        ),
    ]


def main() -> None:
    asyncio.run(serve("svc_inference", bindings(), Config.from_env()))


if __name__ == "__main__":
    main()
