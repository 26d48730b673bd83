"""``python -m svc_inference``: serve model serving (LLM, embeddings, reranker) on Ray Serve or in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mesh.server import ServiceBinding, serve_opened
from mesh.settings import MeshSettings
from ragmesh.inference.v1 import inference_service_pb2, inference_service_pb2_grpc
from svc_inference import servicer
from svc_inference.app import open_runtime
from svc_inference.config import Config
from svc_inference.domain.runtime import ModelRuntime


def bindings(runtime: ModelRuntime) -> list[ServiceBinding]:
    """The gRPC services this process serves over ``runtime``."""
    return [
        ServiceBinding(
            full_name=inference_service_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name,
            add_to_server=inference_service_pb2_grpc.add_InferenceServiceServicer_to_server,
            servicer=servicer.InferenceServiceServicer(runtime),
        ),
    ]


@contextlib.asynccontextmanager
async def running(config: Config, settings: MeshSettings) -> AsyncIterator[ModelRuntime]:
    """Opens the model runtime; closes it on the way out."""
    runtime = await open_runtime(config, settings.ray_address)
    try:
        yield runtime
    finally:
        await runtime.close()


def main() -> None:
    """Runs the service until SIGTERM/SIGINT."""
    config = Config.from_env()
    settings = MeshSettings.from_env()
    asyncio.run(serve_opened("svc_inference", lambda: running(config, settings), bindings, config))


if __name__ == "__main__":
    main()
