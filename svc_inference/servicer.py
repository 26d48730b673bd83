"""gRPC servicers of svc_inference: model serving (LLM, embeddings, reranker) on Ray Serve."""

from __future__ import annotations

from ragmesh.inference.v1 import inference_service_pb2_grpc


class InferenceServiceServicer(inference_service_pb2_grpc.InferenceServiceServicer):
    """``ragmesh.inference.v1.InferenceService``: one thin method per RPC (proto -> domain -> proto)."""
