"""BM25-style sparse term vectors, made the same way at write time and at query time.

Ingestion encodes every chunk with :meth:`SparseEncoder.encode_document`;
retrieval encodes the question with :meth:`SparseEncoder.encode_query`. The
vector store multiplies each term by its inverse document frequency (the IDF
modifier of the sparse vector), so a document weight here is only the BM25
term-frequency part::

    w(t, d) = tf'(t) * (k1 + 1) / (tf'(t) + k1 * (1 - b + b * len(d) / avg_len))

where ``tf'`` counts the term in the chunk text plus ``title_weight`` times its
count in the document title and ``section_weight`` times its count in the
section heading path (a BM25F-style field boost: a term in "Pod Lifecycle" says
more about a chunk than the same term in passing). A query term weighs 1.0, so
the score of a chunk is the BM25 sum over the query's terms.

Tokens come from the Qdrant BM25 analyser (``qdrant_edge.Bm25``: word
tokenizer, lowercase, English stop words, Snowball stemmer, stable 32-bit term
hashes), applied word by word so term frequencies stay ours to weigh. Before
that, identifiers are split so prose finds code: ``HighThresholdPercent`` also
yields ``high``, ``threshold`` and ``percent`` (the analyser already splits
``snake_case`` and ``dotted.names``), while the whole identifier stays a term.

Changing anything here changes the vectors: documents indexed before the
change must be re-ingested. ``ENCODER_VERSION`` names the current scheme.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import qdrant_edge

__all__ = ["ENCODER_VERSION", "SparseConfig", "SparseEncoder", "SparseVector", "default_encoder"]

ENCODER_VERSION = "bm25f-qdrant-snowball-en-v1"
"""Identifies the tokenizer and weighting; stored with nothing, quoted in logs and docs."""

# Whitespace-separated words; the analyser splits each further on punctuation.
_WORD_RE = re.compile(r"\S+")
# The parts of a camelCase or PascalCase identifier ("HTTPGetAction" -> HTTP, Get, Action).
_CAMEL_PART_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# Alphanumeric runs with a lower-case letter directly followed by an upper-case one: identifiers to split.
_CAMEL_WORD_RE = re.compile(r"[A-Za-z0-9]*[a-z][A-Z][A-Za-z0-9]*")
# Longest word passed to the analyser; longer runs are base64, hashes or minified code.
_MAX_WORD_CHARS = 64


@dataclass(frozen=True)
class SparseVector:
    """A sparse term vector: term ids (unique, ascending) and one weight per id."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("indices and values must have the same length")

    def __len__(self) -> int:
        return len(self.indices)

    def as_dict(self) -> dict[int, float]:
        """The vector as ``{term_id: weight}``."""
        return dict(zip(self.indices, self.values, strict=True))


@dataclass(frozen=True)
class SparseConfig:
    """BM25 parameters of the document side (the query side has none)."""

    k1: float = 1.2
    """Term-frequency saturation: higher lets repeated terms count for more."""
    b: float = 0.75
    """Length normalisation, 0 (none) to 1 (full)."""
    avg_len: float = 120.0
    """Average chunk length in analysed tokens (after stop words are dropped)."""
    title_weight: float = 2.0
    """How many body occurrences one occurrence in the document title is worth."""
    section_weight: float = 1.0
    """How many body occurrences one occurrence in the section heading path is worth."""

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1 or self.avg_len <= 0:
            raise ValueError("k1 must be >= 0, b within [0, 1] and avg_len > 0")
        if self.title_weight < 0 or self.section_weight < 0:
            raise ValueError("field weights must be >= 0")


class SparseEncoder:
    """Turns text into BM25-style sparse term vectors (see the module docstring).

    Thread-safe; cheap to share. Build one per process (``default_encoder()``).
    """

    def __init__(self, config: SparseConfig | None = None, *, cache_words: int = 200_000) -> None:
        self.config = config or SparseConfig()
        # One analyser call per distinct word: natural text repeats its words, so
        # the cache makes encoding cost a dictionary lookup per word after warm-up.
        analyser = qdrant_edge.Bm25()

        def word_terms(word: str) -> tuple[int, ...]:
            return tuple(analyser.embed_query(word).indices)

        self._word_terms = functools.lru_cache(maxsize=cache_words)(word_terms)

    def terms(self, text: str) -> list[int]:
        """The term ids of ``text`` in order, repeats kept (stop words dropped, stems hashed)."""
        out: list[int] = []
        for word in _words(text):
            out.extend(self._word_terms(word))
        return out

    def encode_query(self, text: str) -> SparseVector:
        """The query vector: weight 1.0 for each distinct term of ``text``."""
        ids = sorted(set(self.terms(text)))
        return SparseVector(tuple(ids), tuple(1.0 for _ in ids))

    def encode_document(self, text: str, *, title: str = "", section: str = "") -> SparseVector:
        """The vector of one chunk: BM25 term-frequency weights with title and section boosts."""
        cfg = self.config
        body = self.terms(text)
        tf: Counter[int] = Counter(body)
        field_tf: dict[int, float] = {}
        if title and cfg.title_weight:
            for term in self.terms(title):
                field_tf[term] = field_tf.get(term, 0.0) + cfg.title_weight
        if section and cfg.section_weight:
            for term in self.terms(section):
                field_tf[term] = field_tf.get(term, 0.0) + cfg.section_weight
        length_norm = cfg.k1 * (1.0 - cfg.b + cfg.b * len(body) / cfg.avg_len)
        weights: dict[int, float] = {}
        for term in tf.keys() | field_tf.keys():
            freq = tf[term] + field_tf.get(term, 0.0)
            weights[term] = freq * (cfg.k1 + 1.0) / (freq + length_norm)
        ids = sorted(weights)
        return SparseVector(tuple(ids), tuple(weights[i] for i in ids))


def _words(text: str) -> Iterable[str]:
    for match in _WORD_RE.finditer(text):
        word = match.group()
        if len(word) > _MAX_WORD_CHARS:
            continue
        yield word
        for identifier in _CAMEL_WORD_RE.findall(word):
            for part in _CAMEL_PART_RE.findall(identifier):
                if len(part) > 1:
                    yield part


@functools.cache
def default_encoder() -> SparseEncoder:
    """The process-wide encoder with the default configuration."""
    return SparseEncoder()
