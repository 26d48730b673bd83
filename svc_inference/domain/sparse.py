"""bge-m3's learned sparse weights: a linear head over the encoder's token states.

bge-m3 ships ``sparse_linear.pt`` (a Linear(hidden, 1)) beside its weights. A
token's weight is ReLU(head(state)); a term's weight is its largest token weight
in the text; special tokens carry none. The dense vector comes from the same
forward pass, so sparse weights cost one small matrix product.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from svc_inference.domain.model import SparseVector

SPARSE_HEAD_FILE = "sparse_linear.pt"


class SparseHead:
    """The sparse head of a bge-m3 style model."""

    def __init__(self, head_path: Path, hidden_size: int, device: str, special_ids: Iterable[int]) -> None:
        import torch

        self._torch = torch
        state = torch.load(head_path, map_location=device, weights_only=True)
        self._linear = torch.nn.Linear(hidden_size, 1)
        self._linear.load_state_dict(state)
        self._linear.to(device)
        self._linear.eval()
        self._special = frozenset(int(i) for i in special_ids)

    @staticmethod
    def find(model_dir: Path) -> Path | None:
        """The head's file in ``model_dir``, if the model has one."""
        path = model_dir / SPARSE_HEAD_FILE
        return path if path.is_file() else None

    def weights(self, token_states: Any, input_ids: Any, attention_mask: Any) -> SparseVector:
        """Term weights of one text from its token states ([tokens, hidden]) and ids ([tokens])."""
        torch = self._torch
        with torch.inference_mode():
            scores = torch.relu(self._linear(token_states.to(self._linear.weight.dtype))).squeeze(-1)
        best: dict[int, float] = {}
        for token, score, keep in zip(input_ids.tolist(), scores.tolist(), attention_mask.tolist(), strict=True):
            if not keep or token in self._special or score <= 0.0:
                continue
            if score > best.get(token, 0.0):
                best[token] = score
        ids = sorted(best)
        return SparseVector(indices=tuple(ids), values=tuple(best[i] for i in ids))
