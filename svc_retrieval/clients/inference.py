"""InferenceService over gRPC: query embeddings and reranking.

The channel comes from ``mesh.channels.open_channel``, which passes the
caller's identity and request id on and caps every call at the request's
remaining deadline. Failed calls become domain errors by the mesh's one policy
(``mesh.downstream``); the search degrades the dense leg or skips reranking on
the ones that say the model is unavailable, late or saturated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import grpc

from mesh.channels import open_channel
from mesh.context import call_timeout_s
from mesh.downstream import downstream_error
from mesh.errors import InvalidArgument, Unavailable
from mesh.validation import max_items, max_len
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from svc_retrieval.domain.ports import RerankResult

SERVICE = "ragmesh.inference.v1.InferenceService"

MAX_RERANK_DOCUMENTS = max_items(pb.RerankRequest, "documents")
"""Most passages one Rerank call may carry (the contract's rule)."""
MAX_RERANK_CHARS = max_len(pb.RerankRequest, "documents")
"""Longest passage sent to the reranker, in characters (the contract's rule)."""
MAX_RERANK_QUERY_CHARS = max_len(pb.RerankRequest, "query")
"""Longest query sent to the reranker, in characters (the contract's rule)."""


class InferenceClient:
    """Embedder and Reranker over InferenceService."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        embed_model: str = "",
        rerank_model: str = "",
        dense_dim: int,
        embed_timeout_s: float = 5.0,
        rerank_timeout_s: float = 10.0,
    ) -> None:
        self._channel = channel
        self._stub = pb_grpc.InferenceServiceStub(channel)
        self._embed_model = embed_model
        self._rerank_model = rerank_model
        self._dense_dim = dense_dim
        self._embed_timeout_s = embed_timeout_s
        self._rerank_timeout_s = rerank_timeout_s
        self._rerank_method: str | None = None

    @classmethod
    def connect(cls, target: str, **kwargs: object) -> InferenceClient:
        """A client on a new mesh channel to ``target``."""
        return cls(open_channel(target, [SERVICE]), **kwargs)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close(None)

    async def embed_query(self, text: str) -> list[float]:
        """The query's dense vector; its length must match the index."""
        request = pb.EmbedRequest(model=self._embed_model, texts=[text], mode=pb.EMBED_MODE_QUERY)
        try:
            response = await self._stub.Embed(request, timeout=call_timeout_s(self._embed_timeout_s))
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "embedding the query") from exc
        vector = list(response.embeddings[0].dense)
        if len(vector) != self._dense_dim:
            # A different embedder than the index was built with: searching would return noise.
            raise InvalidArgument(
                f"the embedder returned {len(vector)}-dimensional vectors; the index holds {self._dense_dim}",
                reason="EMBEDDING_DIMENSION_MISMATCH",
                metadata={"model": response.model},
            )
        if not all(math.isfinite(x) for x in vector):
            raise Unavailable("the embedder returned a non-finite vector", reason="EMBEDDING_INVALID")
        return vector

    async def method(self) -> str:
        """The reranker's scoring method, from ListModels (asked once, then remembered)."""
        if self._rerank_method is None:
            try:
                response = await self._stub.ListModels(
                    pb.ListModelsRequest(), timeout=call_timeout_s(self._embed_timeout_s)
                )
            except grpc.aio.AioRpcError as exc:
                raise downstream_error(exc, "listing models") from exc
            rerankers = [m for m in response.models if m.role == pb.MODEL_ROLE_RERANKER]
            chosen = [m for m in rerankers if (m.name == self._rerank_model if self._rerank_model else m.is_default)]
            if not chosen:
                raise Unavailable(
                    f"InferenceService serves no reranker named {self._rerank_model or '(default)'}",
                    reason="RERANKER_MISSING",
                )
            self._rerank_method = chosen[0].backend
        return self._rerank_method

    async def rerank(self, query: str, documents: Sequence[str]) -> RerankResult:
        """The documents' reranker scores, best first."""
        request = pb.RerankRequest(
            model=self._rerank_model,
            query=query[:MAX_RERANK_QUERY_CHARS],
            documents=[d[:MAX_RERANK_CHARS] for d in documents[:MAX_RERANK_DOCUMENTS]],
        )
        try:
            response = await self._stub.Rerank(request, timeout=call_timeout_s(self._rerank_timeout_s))
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "reranking") from exc
        return RerankResult(order=[(r.index, r.score) for r in response.results], method=response.method)
