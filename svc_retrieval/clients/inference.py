"""InferenceService over gRPC: query embeddings and reranking.

The channel comes from ``mesh.channels.open_channel``, which passes the
caller's identity and request id on and caps every call at the request's
remaining deadline. Transient faults (UNAVAILABLE, a passed deadline) become
the domain's Unavailable / DeadlineExceeded so a search can degrade the dense
leg or skip reranking instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import grpc

from mesh.channels import open_channel
from mesh.errors import DeadlineExceeded, InvalidArgument, Unavailable
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from svc_retrieval.clients.deadline import call_timeout_s
from svc_retrieval.domain.ports import RerankResult

SERVICE = "ragmesh.inference.v1.InferenceService"

# Most passages one Rerank call may carry (the proto's limit).
MAX_RERANK_DOCUMENTS = 256
# Longest passage sent to the reranker, in characters (the proto's limit).
MAX_RERANK_CHARS = 32_768


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
            raise _domain_error(exc, "embedding the query") from exc
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
                raise _domain_error(exc, "listing models") from exc
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
            query=query[:4096],
            documents=[d[:MAX_RERANK_CHARS] for d in documents[:MAX_RERANK_DOCUMENTS]],
        )
        try:
            response = await self._stub.Rerank(request, timeout=call_timeout_s(self._rerank_timeout_s))
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "reranking") from exc
        return RerankResult(order=[(r.index, r.score) for r in response.results], method=response.method)


def _domain_error(exc: grpc.aio.AioRpcError, doing: str) -> Exception:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"{doing} timed out: {exc.details()}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        # The text itself is unacceptable to the model (for example too long): the caller's to fix.
        return InvalidArgument(f"{doing} was refused: {exc.details()}", reason="INFERENCE_REJECTED_INPUT")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNIMPLEMENTED):
        return Unavailable(f"{doing} failed: {code.name}: {exc.details()}", reason="INFERENCE_UNAVAILABLE")
    # Anything else is the inference service's fault; the search degrades around it and logs why.
    return Unavailable(f"{doing} failed: {code.name}: {exc.details()}", reason="INFERENCE_FAILED")
