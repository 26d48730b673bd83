"""gRPC servicer of svc_inference: model serving (LLM, embeddings, reranker) on Ray Serve or in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from mesh import context
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc
from svc_inference import convert
from svc_inference.domain.model import Priority
from svc_inference.domain.runtime import ModelRuntime


class InferenceServiceServicer(inference_service_pb2_grpc.InferenceServiceServicer):
    """``ragmesh.inference.v1.InferenceService``: one thin method per RPC (proto -> domain -> proto)."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self._runtime = runtime

    async def StreamGenerate(
        self, request: pb.StreamGenerateRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamGenerateResponse]:
        """Streams token deltas as they are produced; the last message carries the summary."""
        # The backend stops by itself when the caller's deadline passes, even if cancellation is lost on the way.
        generate = convert.generate_request(request, timeout_s=context.remaining_s(), priority=_priority(ctx))
        async for chunk in self._runtime.generate(generate):
            yield convert.generate_response(chunk)

    async def Embed(self, request: pb.EmbedRequest, ctx: grpc.aio.ServicerContext[Any, Any]) -> pb.EmbedResponse:
        """Embeds a batch of texts; calls marked batch (ingest) wait while interactive ones are served."""
        embed = convert.embed_request(request, priority=_priority(ctx))
        return convert.embed_response(await self._runtime.embed(embed))

    async def Rerank(self, request: pb.RerankRequest, ctx: grpc.aio.ServicerContext[Any, Any]) -> pb.RerankResponse:
        """Ranks documents against a query."""
        return convert.rerank_response(await self._runtime.rerank(convert.rerank_request(request)))

    async def ListModels(
        self, request: pb.ListModelsRequest, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListModelsResponse:
        """Lists the served models."""
        return convert.list_models_response(self._runtime.list_models())


def _priority(ctx: grpc.aio.ServicerContext[Any, Any] | None) -> Priority:
    # Unit tests call handlers without a context; a call without the header is interactive.
    metadata = ctx.invocation_metadata() if ctx is not None else None
    return convert.priority(metadata)
