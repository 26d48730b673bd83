"""Chunking by title, sized in tokens of the embedding tokenizer."""

from __future__ import annotations

import itertools

from unstructured.documents.elements import ElementMetadata, NarrativeText, Title

from svc_ingest.domain.chunk import ChunkingOptions, chunk_elements
from svc_ingest.domain.tokens import SPECIAL_TOKENS, default_counter


def _title(text: str, depth: int) -> Title:
    return Title(text=text, metadata=ElementMetadata(category_depth=depth))


def test_chunks_fit_the_token_budget_and_carry_sections() -> None:
    paragraph = "The kubelet restarts containers that fail their liveness probe after the grace period. " * 12
    elements = [
        _title("Pods", 0),
        NarrativeText(text="Pods are the smallest deployable units."),
        _title("Lifecycle", 1),
        NarrativeText(text=paragraph),
        NarrativeText(text=paragraph),
        _title("Networking", 1),
        NarrativeText(text="Each Pod gets its own IP address."),
    ]
    options = ChunkingOptions(max_tokens=96, overlap_tokens=16, combine_under_tokens=48)
    chunks = chunk_elements(elements, options)
    counter = default_counter()
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(counter.count(c.text) <= options.max_tokens for c in chunks)
    assert all(c.token_count + SPECIAL_TOKENS <= 256 for c in chunks)
    assert any(c.section == "Pods > Lifecycle" for c in chunks)
    assert chunks[-1].section == "Pods > Networking"
    assert "own IP address" in chunks[-1].text
    lifecycle = [c for c in chunks if c.section == "Pods > Lifecycle"]
    assert len(lifecycle) >= 3, "the long section must be split"


def test_split_chunks_overlap() -> None:
    words = " ".join(f"word{i}" for i in range(600))
    chunks = chunk_elements([NarrativeText(text=words)], ChunkingOptions(max_tokens=64, overlap_tokens=16))
    assert len(chunks) > 3
    for previous, current in itertools.pairwise(chunks):
        tail = previous.text.split()[-2:]
        assert all(word in current.text for word in tail)


def test_hash_depends_on_text_and_section() -> None:
    a = chunk_elements([NarrativeText(text="Same text here.")], ChunkingOptions())[0]
    b = chunk_elements([_title("S", 0), NarrativeText(text="Same text here.")], ChunkingOptions())[0]
    assert a.chunk_hash != b.chunk_hash
    assert a.chunk_hash == chunk_elements([NarrativeText(text="Same text here.")], ChunkingOptions())[0].chunk_hash


def test_signature_names_the_settings() -> None:
    assert ChunkingOptions(max_tokens=200, overlap_tokens=20).signature != ChunkingOptions().signature


def test_tables_are_split_with_the_embedding_tokenizer() -> None:
    from pathlib import Path

    from svc_ingest.domain.parse import parse_file

    page = Path(__file__).resolve().parents[3] / "samples/k8s/concepts/security/pod-security-standards.md"
    doc = parse_file(page, page.name)
    assert any(e.category == "Table" for e in doc.elements)
    chunks = chunk_elements(doc.elements, ChunkingOptions(max_tokens=128, overlap_tokens=16))
    counter = default_counter()
    assert chunks and all(counter.count(c.text) <= 128 for c in chunks)
