"""The embedder model role (sentence-transformers): one plain class for Ray Serve and in-process hosting.

``prepare`` checks one request (count and token lengths, which the proto rules
cannot know) so a bad request fails alone; ``embed_batch`` then runs any number
of prepared requests as one model call, which is what ``@serve.batch`` feeds it.
The same class answers cosine-similarity reranking for profiles without a
cross-encoder.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from mesh.errors import FieldViolation, InvalidArgument
from svc_inference.domain.model import (
    EmbedMode,
    EmbedRequest,
    EmbedResult,
    ModelInfo,
    ModelRole,
    RerankRequest,
    RerankResult,
    SparseVector,
)
from svc_inference.domain.model_config import EmbedderConfig
from svc_inference.domain.ranking import rank
from svc_inference.domain.sources import ModelNotAvailable, SourceSettings, offline_hub, resolve
from svc_inference.domain.sparse import SparseHead

_MAX_REPORTED_VIOLATIONS = 10


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedEmbed:
    """A checked request: the texts as the model sees them (prefix included)."""

    request: EmbedRequest
    inputs: tuple[str, ...]


class Embedder:
    """Normalized dense embeddings (plus sparse term weights) in query or document mode."""

    def __init__(self, config: EmbedderConfig, sources: SourceSettings) -> None:
        offline_hub()
        import torch
        from sentence_transformers import SentenceTransformer

        # Ray sets OMP_NUM_THREADS to a replica's CPU count; the thread count is the config's decision.
        torch.set_num_threads(config.threads)
        self._torch = torch
        self.config = config
        path = resolve(config.source, sources)
        self._model: Any = cast(Any, SentenceTransformer(str(path), device=config.device, local_files_only=True))
        self._model.eval()
        self._model.max_seq_length = config.max_tokens
        dims = self._model.get_embedding_dimension()
        if dims != config.dimensions:
            raise ModelNotAvailable(
                f"{config.name}: the model at {path} makes {dims}-d vectors, config says {config.dimensions}"
            )
        self._tokenizer: Any = self._model.tokenizer
        # A fast tokenizer keeps its truncation and padding settings as state that every call rewrites,
        # so it must never serve two threads at once. Length checks run beside a batch being encoded
        # (on the replica's event loop, while the model thread encodes), so they get their own copy.
        self._length_tokenizer: Any = copy.deepcopy(self._tokenizer)
        self._bm25: Any = None
        self._sparse_head: SparseHead | None = None
        if config.sparse == "bm25":
            from mesh.sparse import default_encoder

            self._bm25 = default_encoder()
        elif config.sparse == "bge-m3":
            head = SparseHead.find(path)
            if head is None:
                raise ModelNotAvailable(f"{config.name}: sparse is bge-m3 but {path} has no sparse_linear.pt")
            hidden = int(self._model[0].auto_model.config.hidden_size)
            self._sparse_head = SparseHead(head, hidden, config.device, self._tokenizer.all_special_ids)

    def twin(self) -> Embedder:
        """The same model, weights and tokenizer copied, for a second model thread (a fast tokenizer must never
        serve two threads at once); the sparse encoders are read-only and shared."""
        twin = copy.copy(self)
        twin._model = copy.deepcopy(self._model)
        twin._tokenizer = twin._model.tokenizer
        return twin

    def info(self) -> ModelInfo:
        """How ListModels describes this model (hosting is filled in by whoever hosts it)."""
        return ModelInfo(
            name=self.config.name,
            role=ModelRole.EMBEDDER,
            backend=self.config.backend,
            hosting="",
            context_length=self.config.max_tokens,
            dimensions=self.config.dimensions,
            description=self.config.description,
        )

    def prepare(self, request: EmbedRequest) -> PreparedEmbed:
        """Checks ``request`` against this model's limits; raises INVALID_ARGUMENT naming the limit."""
        limit = self.config.max_texts
        if len(request.texts) > limit:
            raise InvalidArgument(
                f"{len(request.texts)} texts in one request; model {self.config.name} takes at most {limit}",
                reason="TOO_MANY_TEXTS",
                metadata={"max_texts": str(limit), "texts": str(len(request.texts))},
                violations=[FieldViolation("texts", f"at most {limit} texts per request")],
            )
        prefix = self.config.query_prefix if request.mode is EmbedMode.QUERY else self.config.document_prefix
        inputs = tuple(prefix + text for text in request.texts)
        max_tokens = self.config.max_tokens
        lengths = self.token_lengths(inputs)
        too_long = [(i, n) for i, n in enumerate(lengths) if n > max_tokens]
        if too_long:
            first, count = too_long[0]
            raise InvalidArgument(
                f"text {first} is {count} tokens; model {self.config.name} takes at most {max_tokens} tokens per "
                f"text ({len(too_long)} of {len(inputs)} texts are too long); split them into shorter passages",
                reason="TEXT_TOO_LONG",
                metadata={"max_tokens": str(max_tokens), "too_long": str(len(too_long))},
                violations=[
                    FieldViolation(f"texts[{i}]", f"{n} tokens; the limit is {max_tokens}")
                    for i, n in too_long[:_MAX_REPORTED_VIOLATIONS]
                ],
            )
        return PreparedEmbed(request=request, inputs=inputs)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in tokens (special tokens included, untruncated), exact for every text that could
        exceed max_tokens; shorter texts get an upper bound below the limit and are not tokenized at all."""
        # No tokenizer makes more than two tokens per UTF-8 byte (a sentencepiece word marker plus a byte), so
        # 2 * bytes + 2 special tokens bounds a text's length: short texts need no tokenizing at all.
        lengths = [2 * len(t.encode("utf-8")) + 2 for t in texts]
        long_ones = [i for i, n in enumerate(lengths) if n > self.config.max_tokens]
        if long_ones:
            encoded = self._length_tokenizer(
                [texts[i] for i in long_ones],
                add_special_tokens=True,
                truncation=False,
                return_attention_mask=False,
                return_token_type_ids=False,
                verbose=False,
            )
            for i, ids in zip(long_ones, encoded["input_ids"], strict=True):
                lengths[i] = len(ids)
        return lengths

    def embed(self, request: EmbedRequest) -> EmbedResult:
        """Checks and embeds one request."""
        return self.embed_batch([self.prepare(request)])[0]

    def embed_batch(self, prepared: Sequence[PreparedEmbed]) -> list[EmbedResult]:
        """Embeds several checked requests in one model call; results in request order."""
        inputs = [text for p in prepared for text in p.inputs]
        want_head = self._sparse_head is not None and any(p.request.include_sparse for p in prepared)
        dense, outputs = self._encode(inputs, with_token_states=want_head)
        results: list[EmbedResult] = []
        start = 0
        for p in prepared:
            end = start + len(p.inputs)
            sparse = None
            if p.request.include_sparse:
                sparse = self._sparse(p, outputs[start:end] if outputs is not None else None)
            results.append(
                EmbedResult(model=self.config.name, dense=dense[start:end], sparse=sparse, batch_size=len(inputs))
            )
            start = end
        return results

    def rerank_batch(self, requests: Sequence[RerankRequest]) -> list[RerankResult]:
        """Scores documents by cosine similarity to the query (unit vectors: a dot product); one model call.

        Texts longer than the model's input are cut to it here: a reranker ranks, it stores nothing.
        """
        inputs: list[str] = []
        for r in requests:
            inputs.append(self.config.query_prefix + r.query)
            inputs.extend(self.config.document_prefix + d for d in r.documents)
        dense, _ = self._encode(inputs, with_token_states=False)
        results: list[RerankResult] = []
        start = 0
        for r in requests:
            query = dense[start]
            docs = dense[start + 1 : start + 1 + len(r.documents)]
            start += 1 + len(r.documents)
            scores = docs @ query
            results.append(
                RerankResult(
                    model=r.model or self.config.name,
                    method="embedding-cosine",
                    results=rank(scores.tolist(), r.top_n),
                    batch_size=len(inputs),
                )
            )
        return results

    async def check_health(self) -> None:
        """Nothing to check beyond the replica being alive; present so Serve's health check has a target."""

    def close(self) -> None:
        """Drops the model."""
        self._model = None

    def _encode(self, inputs: Sequence[str], *, with_token_states: bool) -> tuple[npt.NDArray[np.float32], Any]:
        torch = self._torch
        with torch.inference_mode():
            if not with_token_states:
                dense = self._model.encode(
                    list(inputs),
                    batch_size=self.config.encode_batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                return np.ascontiguousarray(dense, dtype=np.float32), None
            outputs = self._model.encode(
                list(inputs),
                batch_size=self.config.encode_batch_size,
                output_value=None,
                convert_to_numpy=False,
                show_progress_bar=False,
            )
            stacked = torch.stack([o["sentence_embedding"] for o in outputs]).float()
            stacked = torch.nn.functional.normalize(stacked, p=2, dim=1)
            return np.ascontiguousarray(stacked.cpu().numpy(), dtype=np.float32), outputs

    def _sparse(self, prepared: PreparedEmbed, outputs: Any) -> tuple[SparseVector, ...] | None:
        if self._bm25 is not None:
            query = prepared.request.mode is EmbedMode.QUERY
            vectors = [
                self._bm25.encode_query(text) if query else self._bm25.encode_document(text)
                for text in prepared.request.texts
            ]
            return tuple(SparseVector(tuple(v.indices), tuple(float(x) for x in v.values)) for v in vectors)
        if self._sparse_head is not None and outputs is not None:
            return tuple(
                self._sparse_head.weights(o["token_embeddings"], o["input_ids"], o["attention_mask"]) for o in outputs
            )
        return None
