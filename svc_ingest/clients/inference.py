"""Blocking InferenceService clients for the pipeline's Ray stages.

Ray Data calls stage objects synchronously in worker processes that have no
request context, so these clients use the blocking form of the mesh's channel
(``mesh.channels.open_blocking_channel``: service config with its deadlines and
retries of UNAVAILABLE, tracing), pass the job's tenant and credential
explicitly, and give every call a timeout. Every call is batch work
(``mesh.priority``): the embedder's RESOURCE_EXHAUSTED is back-pressure, waited
out within a budget (``mesh.priority.Backpressure``). Failed calls raise the
mesh's domain errors (``mesh.downstream``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import grpc

from mesh import context, priority
from mesh.auth import AUTHORIZATION
from mesh.channels import open_blocking_channel
from mesh.downstream import downstream_error
from mesh.errors import Unavailable
from mesh.validation import max_items
from ragmesh.inference.v1 import inference_service_pb2, inference_service_pb2_grpc

SERVICE = "ragmesh.inference.v1.InferenceService"
EMBED_MAX_TEXTS = max_items(inference_service_pb2.EmbedRequest, "texts")
"""Most texts one Embed request may carry (the contract's rule)."""


class _InferenceClient:
    """A blocking InferenceService stub for one tenant, on a channel of its own."""

    def __init__(self, target: str, tenant: str, *, timeout_s: float, model: str, token: str = "") -> None:
        self._channel = open_blocking_channel(target, [SERVICE])
        self._stub = inference_service_pb2_grpc.InferenceServiceStub(self._channel)
        # Pipeline calls are bulk work: the inference service serves interactive calls first.
        # The job's workers act for its tenant with svc_ingest's service token (InferenceService is internal).
        credential = ((AUTHORIZATION, f"Bearer {token}"),) if token else ()
        self._metadata = ((context.TENANT_HEADER, tenant), *credential, *priority.BATCH_METADATA)
        self._timeout_s = timeout_s
        self._model = model

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()


class EmbedClient(_InferenceClient):
    """Embeds document texts in batches through InferenceService.Embed, as batch work.

    RESOURCE_EXHAUSTED means the embedder's batch line is full (interactive callers come first): the client
    waits it out for up to ``busy_budget_s`` per request (``mesh.priority.Backpressure``), which is how an ingest
    slows down to what the embedder can take rather than failing.
    """

    def __init__(
        self,
        target: str,
        tenant: str,
        *,
        timeout_s: float = 60.0,
        model: str = "",
        busy_budget_s: float = 600.0,
        token: str = "",
    ) -> None:
        super().__init__(target, tenant, timeout_s=timeout_s, model=model, token=token)
        self._backpressure = priority.Backpressure(busy_budget_s)

    @property
    def busy_retries(self) -> int:
        """RESOURCE_EXHAUSTED answers this client waited out."""
        return self._backpressure.waits

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Dense unit vectors of ``texts`` (as passages), in order."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_MAX_TEXTS):
            request = inference_service_pb2.EmbedRequest(
                model=self._model,
                texts=list(texts[start : start + EMBED_MAX_TEXTS]),
                mode=inference_service_pb2.EMBED_MODE_DOCUMENT,
            )
            response = self._backpressure.call(functools.partial(self._embed_once, request))
            if len(response.embeddings) != len(request.texts):
                raise Unavailable(
                    f"Embed returned {len(response.embeddings)} vectors for {len(request.texts)} texts",
                    reason="EMBEDDING_INVALID",
                )
            vectors.extend(list(e.dense) for e in response.embeddings)
        return vectors

    def _embed_once(self, request: inference_service_pb2.EmbedRequest) -> inference_service_pb2.EmbedResponse:
        try:
            response: inference_service_pb2.EmbedResponse = self._stub.Embed(
                request, timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise downstream_error(exc, "embedding document texts") from exc
        return response


class GenerateClient(_InferenceClient):
    """Schema-constrained generation through InferenceService.StreamGenerate."""

    def __init__(
        self,
        target: str,
        tenant: str,
        *,
        timeout_s: float = 300.0,
        model: str = "",
        max_tokens: int = 512,
        token: str = "",
    ) -> None:
        super().__init__(target, tenant, timeout_s=timeout_s, model=model, token=token)
        self._max_tokens = max_tokens

    def generate_json(self, prompt: str, json_schema: str) -> str:
        """The complete answer to ``prompt`` (a user message), constrained to ``json_schema``."""
        request = inference_service_pb2.StreamGenerateRequest(
            model=self._model,
            messages=[inference_service_pb2.ChatMessage(role=inference_service_pb2.ROLE_USER, content=prompt)],
            sampling=inference_service_pb2.SamplingParams(temperature=0.0, max_tokens=self._max_tokens),
            json_schema=json_schema,
        )
        parts: list[str] = []
        try:
            for message in self._stub.StreamGenerate(request, timeout=self._timeout_s, metadata=self._metadata):
                parts.append(message.delta)
        except grpc.RpcError as exc:
            raise downstream_error(exc, "extracting graph facts") from exc
        return "".join(parts)
