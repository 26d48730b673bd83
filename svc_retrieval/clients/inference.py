"""InferenceService over gRPC: query embeddings and reranking.

The channel comes from ``mesh.channels.open_channel``, which passes the
caller's identity and request id on and caps every call at the request's
remaining deadline. Failed calls become domain errors by the mesh's one policy
(``mesh.downstream``); the search degrades the dense leg or skips reranking on
the ones that say the model is unavailable, late or saturated.

Query embeddings of one tenant that arrive while an Embed call of that tenant
is in flight wait for it and then go together, in one call of up to
``embed_batch_max`` texts: a lone query is sent at once, and under load each
Embed call, its hop through Ray Serve and its share of the model's per-call work
serve several searches (each query is still embedded; nothing is cached).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from mesh import context
from mesh.channels import open_channel
from mesh.context import call_timeout_s
from mesh.downstream import downstream_error
from mesh.errors import DeadlineExceeded, InvalidArgument, Unavailable
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
MAX_EMBED_TEXTS = max_items(pb.EmbedRequest, "texts")
"""Most texts one Embed call may carry (the contract's rule)."""


@dataclass
class _Query:
    """A query waiting to be embedded, with what its own call would have carried."""

    text: str
    deadline: float
    """Event-loop time by which its search needs the vector."""
    request_context: contextvars.Context
    """The context it was asked in: identity, request id and deadline for the call that carries it."""
    vector: asyncio.Future[list[float]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


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
        embed_batch_max: int = 16,
    ) -> None:
        self._channel = channel
        self._stub = pb_grpc.InferenceServiceStub(channel)
        self._embed_model = embed_model
        self._rerank_model = rerank_model
        self._dense_dim = dense_dim
        self._embed_timeout_s = embed_timeout_s
        self._rerank_timeout_s = rerank_timeout_s
        self._rerank_method: str | None = None
        self._embed_batch_max = max(1, min(embed_batch_max, MAX_EMBED_TEXTS))
        # Per tenant: the queries waiting for the tenant's call in flight, and whether one is.
        self._waiting: dict[str, list[_Query]] = {}
        self._sending: set[str] = set()
        self._senders: set[asyncio.Task[None]] = set()

    @classmethod
    def connect(cls, target: str, **kwargs: object) -> InferenceClient:
        """A client on a new mesh channel to ``target``."""
        return cls(open_channel(target, [SERVICE]), **kwargs)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close(None)

    async def embed_query(self, text: str) -> list[float]:
        """The query's dense vector; its length must match the index.

        Sent with the other queries of the caller's tenant that are waiting (see the module docstring).
        """
        timeout = call_timeout_s(self._embed_timeout_s)
        if self._embed_batch_max == 1:
            return (await self._embed(pb.EmbedRequest(texts=[text]), within_s=timeout))[0]
        loop = asyncio.get_running_loop()
        query = _Query(text, loop.time() + timeout, contextvars.copy_context())
        ctx = context.current()
        tenant = "" if ctx is None or ctx.identity is None else ctx.identity.tenant
        self._waiting.setdefault(tenant, []).append(query)
        if tenant not in self._sending:
            self._sending.add(tenant)
            sender = asyncio.create_task(self._send_waiting(tenant))
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(query.vector), timeout)
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"embedding the query did not finish within {timeout:.3f} s", reason="EMBEDDING_TIMEOUT"
            ) from exc
        finally:
            # A search that stopped waiting (deadline, cancellation) takes its query out of the next call.
            query.vector.cancel()

    async def _send_waiting(self, tenant: str) -> None:
        """Sends the tenant's waiting queries, one call at a time, until none wait."""
        try:
            while waiting := self._waiting.get(tenant):
                batch = [q for q in waiting[: self._embed_batch_max] if not q.vector.done()]
                del waiting[: self._embed_batch_max]
                if not waiting:
                    del self._waiting[tenant]
                if batch:
                    await self._send(batch)
        finally:
            self._sending.discard(tenant)

    async def _send(self, batch: list[_Query]) -> None:
        """One Embed call for ``batch``, made in the context of the query that may wait longest."""
        loop = asyncio.get_running_loop()
        lead = max(batch, key=lambda q: q.deadline)
        request = pb.EmbedRequest(texts=[q.text for q in batch])
        vectors: list[list[float]] | BaseException | None = None
        try:
            within_s = lead.deadline - loop.time()
            if within_s <= 0:
                raise DeadlineExceeded("every query waiting to be embedded is out of time", reason="DEADLINE_PASSED")
            call = asyncio.create_task(self._embed(request, within_s=within_s), context=lead.request_context.copy())
            vectors = await call
        except Exception as exc:  # noqa: BLE001 - each waiting search gets what its own call would have raised
            vectors = exc
        finally:
            for i, query in enumerate(batch):
                if query.vector.done():
                    continue
                if isinstance(vectors, list):
                    query.vector.set_result(vectors[i])
                elif isinstance(vectors, BaseException):
                    query.vector.set_exception(vectors)
                else:
                    # This sender was cancelled (the client is closing) before the call came back.
                    query.vector.set_exception(Unavailable("embedding the query was interrupted"))

    async def _embed(self, request: pb.EmbedRequest, *, within_s: float) -> list[list[float]]:
        """The dense vectors of the request's texts, checked against the index."""
        request.model = self._embed_model
        request.mode = pb.EMBED_MODE_QUERY
        try:
            response = await self._stub.Embed(request, timeout=within_s)
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "embedding the query") from exc
        if len(response.embeddings) != len(request.texts):
            raise Unavailable(
                f"the embedder answered {len(response.embeddings)} of {len(request.texts)} texts",
                reason="EMBEDDING_INVALID",
            )
        vectors = [list(e.dense) for e in response.embeddings]
        for vector in vectors:
            if len(vector) != self._dense_dim:
                # A different embedder than the index was built with: searching would return noise.
                raise InvalidArgument(
                    f"the embedder returned {len(vector)}-dimensional vectors; the index holds {self._dense_dim}",
                    reason="EMBEDDING_DIMENSION_MISMATCH",
                    metadata={"model": response.model},
                )
            if not all(math.isfinite(x) for x in vector):
                raise Unavailable("the embedder returned a non-finite vector", reason="EMBEDDING_INVALID")
        return vectors

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
