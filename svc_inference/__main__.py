"""``python -m svc_inference``: serve model serving (LLM, embeddings, reranker) on Ray Serve or in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mesh.server import ServiceBinding, serve
from mesh.settings import MeshSettings
from ragmesh.inference.v1 import inference_service_pb2, inference_service_pb2_grpc
from svc_inference import servicer
from svc_inference.bootstrap import open_runtime
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


def main() -> None:
    """Runs the service until SIGTERM/SIGINT."""
    config = Config.from_env()
    settings = MeshSettings.from_env()
    opened: list[ModelRuntime] = []

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        runtime = await open_runtime(config, settings.ray_address)
        opened.append(runtime)
        try:
            yield
        finally:
            await runtime.close()

    async def make_bindings() -> list[ServiceBinding]:
        return bindings(opened[0])

    asyncio.run(serve("svc_inference", make_bindings, config, lifespan=lifespan))


if __name__ == "__main__":
    main()
