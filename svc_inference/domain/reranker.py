"""The cross-encoder reranker role (sentence-transformers CrossEncoder), and ranking by score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from svc_inference.domain.model import ModelInfo, ModelRole, RerankRequest, RerankResult
from svc_inference.domain.model_config import RerankerConfig
from svc_inference.domain.ranking import rank
from svc_inference.domain.sources import SourceSettings, offline_hub, resolve


class CrossEncoderReranker:
    """Scores query-document pairs jointly; several requests are scored in one model call."""

    def __init__(self, config: RerankerConfig, sources: SourceSettings) -> None:
        offline_hub()
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(config.threads)
        self._torch = torch
        self.config = config
        path = resolve(config.source, sources)
        activation = torch.nn.Sigmoid() if config.score_activation == "sigmoid" else torch.nn.Identity()
        self._activation = activation
        self._model: Any = CrossEncoder(
            str(path), device=config.device, max_length=config.max_tokens, local_files_only=True
        )
        self._model.eval()

    def info(self) -> ModelInfo:
        """How ListModels describes this model (hosting is filled in by whoever hosts it)."""
        return ModelInfo(
            name=self.config.name,
            role=ModelRole.RERANKER,
            backend="cross-encoder",
            hosting="",
            context_length=self.config.max_tokens,
            description=self.config.description,
        )

    def rerank(self, request: RerankRequest) -> RerankResult:
        """Scores one request."""
        return self.rerank_batch([request])[0]

    def rerank_batch(self, requests: Sequence[RerankRequest]) -> list[RerankResult]:
        """Scores every request's pairs in one call; pairs longer than max_tokens are cut at the document's end."""
        pairs = [(r.query, d) for r in requests for d in r.documents]
        with self._torch.inference_mode():
            scores = self._model.predict(
                pairs,
                batch_size=self.config.predict_batch_size,
                activation_fn=self._activation,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        flat = [float(s) for s in scores.reshape(len(pairs), -1)[:, 0]]
        results: list[RerankResult] = []
        start = 0
        for r in requests:
            part = flat[start : start + len(r.documents)]
            start += len(r.documents)
            results.append(
                RerankResult(
                    model=self.config.name, method="cross-encoder", results=rank(part, r.top_n), batch_size=len(pairs)
                )
            )
        return results

    async def check_health(self) -> None:
        """Nothing to check beyond the replica being alive; present so Serve's health check has a target."""

    def close(self) -> None:
        """Drops the model."""
        self._model = None
