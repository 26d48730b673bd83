from __future__ import annotations

from pathlib import Path

import pytest
import torch

from svc_inference.domain.sparse import SPARSE_HEAD_FILE, SparseHead


def test_term_weight_is_the_largest_relu_score_and_special_tokens_carry_none(tmp_path: Path) -> None:
    linear = torch.nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.0]]))
        linear.bias.zero_()
    torch.save(linear.state_dict(), tmp_path / SPARSE_HEAD_FILE)
    head_path = SparseHead.find(tmp_path)
    assert head_path is not None
    head = SparseHead(head_path, hidden_size=2, device="cpu", special_ids=[0, 2])
    # Tokens: [CLS]=0, 7, 9, 7, [SEP]=2, pad; scores are the first state component.
    states = torch.tensor([[5.0, 0.0], [0.5, 1.0], [-1.0, 0.0], [0.8, 0.0], [4.0, 0.0], [9.0, 0.0]])
    ids = torch.tensor([0, 7, 9, 7, 2, 5])
    mask = torch.tensor([1, 1, 1, 1, 1, 0])
    vector = head.weights(states, ids, mask)
    assert vector.indices == (7,)  # 9 scores below zero, 0 and 2 are special, 5 is padding
    assert vector.values == (pytest.approx(0.8),)


def test_models_without_a_head_have_none(tmp_path: Path) -> None:
    assert SparseHead.find(tmp_path) is None
