"""Blocking InferenceService clients for the pipeline's Ray stages.

Ray Data calls stage objects synchronously in worker processes that have no
request context, so these clients open their own (blocking) channel with the
service config that sits beside the inference protos (deadlines, retries of
UNAVAILABLE only), pass the job's tenant and request id explicitly, and give
every call a timeout.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import grpc

from mesh import context, priority
from mesh.auth import AUTHORIZATION
from mesh.channels import MAX_MESSAGE_BYTES, service_config
from ragmesh.inference.v1 import inference_service_pb2, inference_service_pb2_grpc

_SERVICE = "ragmesh.inference.v1.InferenceService"
EMBED_MAX_TEXTS = 256
"""Most texts one Embed request may carry (the contract's limit)."""
_RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
_BUSY_BACKOFF_MAX_S = 5.0


def blocking_channel(target: str) -> grpc.Channel:
    """A blocking channel to InferenceService with the mesh's options and service config."""
    options: list[tuple[str, object]] = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 1),
    ]
    config = service_config(_SERVICE)
    if config is not None:
        options.append(("grpc.service_config", config))
    return grpc.insecure_channel(target, options=options)


class InferenceCallError(RuntimeError):
    """A call to InferenceService failed after its retries."""


class _InferenceClient:
    """A blocking InferenceService stub for one tenant, on a channel of its own."""

    def __init__(self, target: str, tenant: str, *, timeout_s: float, model: str, token: str = "") -> None:
        self._channel = blocking_channel(target)
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

    RESOURCE_EXHAUSTED means the embedder's batch line is full (interactive callers come first): the client backs
    off (capped exponential, with jitter) and tries again for up to ``busy_budget_s``, which is how an ingest
    slows down to what the embedder can take rather than failing. UNAVAILABLE is retried ``attempts`` times.
    """

    def __init__(
        self,
        target: str,
        tenant: str,
        *,
        timeout_s: float = 60.0,
        model: str = "",
        attempts: int = 4,
        busy_budget_s: float = 600.0,
        token: str = "",
    ) -> None:
        super().__init__(target, tenant, timeout_s=timeout_s, model=model, token=token)
        self._attempts = attempts
        self._busy_budget_s = busy_budget_s
        self.busy_retries = 0
        """RESOURCE_EXHAUSTED answers this client backed off from."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Dense unit vectors of ``texts`` (as passages), in order."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_MAX_TEXTS):
            request = inference_service_pb2.EmbedRequest(
                model=self._model,
                texts=list(texts[start : start + EMBED_MAX_TEXTS]),
                mode=inference_service_pb2.EMBED_MODE_DOCUMENT,
            )
            response = self._call(request)
            if len(response.embeddings) != len(request.texts):
                raise InferenceCallError(
                    f"Embed returned {len(response.embeddings)} vectors for {len(request.texts)} texts"
                )
            vectors.extend(list(e.dense) for e in response.embeddings)
        return vectors

    def _call(self, request: inference_service_pb2.EmbedRequest) -> inference_service_pb2.EmbedResponse:
        delay = 0.5
        busy_delay = 0.05
        attempt = 0
        busy_until = time.monotonic() + self._busy_budget_s
        while True:
            try:
                response: inference_service_pb2.EmbedResponse = self._stub.Embed(
                    request, timeout=self._timeout_s, metadata=self._metadata
                )
                return response
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() + busy_delay < busy_until:
                    # The embedder is saturated and said so at once: wait a little longer each time.
                    self.busy_retries += 1
                    time.sleep(busy_delay * random.uniform(0.5, 1.0))
                    busy_delay = min(busy_delay * 2, _BUSY_BACKOFF_MAX_S)
                    continue
                attempt += 1
                if code not in _RETRY_CODES or attempt >= self._attempts:
                    raise InferenceCallError(
                        f"Embed failed: {code.name if code else 'UNKNOWN'}: "
                        f"{exc.details() if hasattr(exc, 'details') else exc}"
                    ) from exc
                # The service config already retried quickly; back off longer for a model restart.
                time.sleep(delay)
                delay *= 2


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
            code = exc.code() if hasattr(exc, "code") else None
            raise InferenceCallError(f"StreamGenerate failed: {code.name if code else 'UNKNOWN'}") from exc
        return "".join(parts)
