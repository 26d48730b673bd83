"""Chunking: unstructured's chunk_by_title, sized in tokens of the embedding tokenizer.

``chunk_by_title`` keeps sections together (a heading starts a new chunk,
small neighbouring sections are combined) and splits oversized elements with
an overlap. It resolves its ``tokenizer`` argument to a tiktoken encoding; the
embedding model's WordPiece counter is registered under a name of its own in
unstructured's token-counter class (every place that counts tokens, table-cell
splitting included, builds its counter through that class), so ``max_tokens``
means what the embedder will see. Each chunk carries the heading path of its
section ("Pods > Pod lifecycle > Container states").
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from unstructured.chunking import base as chunking_base
from unstructured.chunking.title import chunk_by_title
from unstructured.documents.elements import Element

from svc_ingest.domain.tokens import TokenCounter, default_counter

# Name of the ad-hoc metadata field that carries an element's heading path through chunking.
_SECTION_FIELD = "ragmesh_section"
_MAX_SECTION_CHARS = 2048
_MAX_HEADING_CHARS = 200


@dataclass(frozen=True)
class ChunkingOptions:
    """Chunk size and overlap, in tokens of the embedding tokenizer."""

    max_tokens: int = 240
    """Hard limit on a chunk's tokens (the model's input limit minus its special tokens, or less)."""
    overlap_tokens: int = 32
    """Tokens repeated from the end of a split chunk at the start of the next."""
    combine_under_tokens: int = 120
    """Sections smaller than this are merged with the next when both fit in one chunk."""

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError("max_tokens must be at least 16")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError("overlap_tokens must be at least 0 and below max_tokens")

    @property
    def signature(self) -> str:
        """Identifies the chunking scheme: documents chunked differently are re-ingested."""
        return f"by_title/minilm-wordpiece/{self.max_tokens}/{self.overlap_tokens}/{self.combine_under_tokens}"


@dataclass(frozen=True)
class Chunk:
    """One passage to embed and index."""

    index: int
    text: str
    section: str
    page: int | None
    token_count: int

    @cached_property
    def chunk_hash(self) -> str:
        """SHA-256 (hex) of the chunk's text and section: what the point id is derived from."""
        return hashlib.sha256(f"{self.section}\x1f{self.text}".encode()).hexdigest()


_COUNTERS: dict[str, TokenCounter] = {}
_routing_lock = threading.Lock()


def _register(counter: TokenCounter) -> str:
    """The tokenizer name under which unstructured's chunkers will count with ``counter``."""
    name = f"ragmesh-wordpiece-{id(counter):x}"
    with _routing_lock:
        _COUNTERS[name] = counter
        original = chunking_base.TokenCounter
        if not getattr(original, "_ragmesh_routing", False):

            class _Routing(original):  # type: ignore[misc, valid-type]
                """unstructured's TokenCounter, answering our names with our counters."""

                _ragmesh_routing = True

                def __new__(cls, tokenizer: str) -> Any:
                    ours = _COUNTERS.get(tokenizer)
                    return ours if ours is not None else super().__new__(cls)

            chunking_base.TokenCounter = _Routing  # type: ignore[misc]
    return name


def annotate_sections(elements: Sequence[Element]) -> None:
    """Stores each element's heading path in its metadata (headings nest by category_depth)."""
    stack: list[tuple[int, str]] = []
    for element in elements:
        if element.category == "Title":
            depth = element.metadata.category_depth or 0
            heading = " ".join(element.text.split())[:_MAX_HEADING_CHARS]
            while stack and stack[-1][0] >= depth:
                stack.pop()
            stack.append((depth, heading))
        path = " > ".join(h for _, h in stack)
        setattr(element.metadata, _SECTION_FIELD, path[:_MAX_SECTION_CHARS])


def chunk_elements(
    elements: Iterable[Element], options: ChunkingOptions, counter: TokenCounter | None = None
) -> list[Chunk]:
    """Cuts ``elements`` into token-sized chunks, in document order."""
    elements = list(elements)
    if not elements:
        return []
    annotate_sections(elements)
    tokens = counter or default_counter()
    chunks: list[Chunk] = []
    last_section = ""
    for element in chunk_by_title(
        elements,
        max_tokens=options.max_tokens,
        overlap=options.overlap_tokens,
        combine_text_under_n_chars=min(options.combine_under_tokens, options.max_tokens),
        tokenizer=_register(tokens),
        include_orig_elements=True,
        multipage_sections=True,
    ):
        text = element.text.strip()
        if not text:
            continue
        originals = getattr(element.metadata, "orig_elements", None) or []
        section = last_section
        if originals:
            section = getattr(originals[0].metadata, _SECTION_FIELD, "") or last_section
        last_section = section
        chunks.append(
            Chunk(
                index=len(chunks),
                text=text,
                section=section,
                page=element.metadata.page_number,
                token_count=tokens.count(text),
            )
        )
    return chunks
