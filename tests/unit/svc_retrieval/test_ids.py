"""Deterministic chunk hashes and point ids."""

from __future__ import annotations

import uuid

from svc_retrieval.domain.ids import chunk_hash, normalize_entity, point_id
from svc_retrieval.domain.model import ChunkInput, DocumentMeta

DOC = DocumentMeta("doc-1", "file:///a.md", "Title", "markdown", 1)
CHUNK = ChunkInput(chunk_index=0, text="hello", section="Intro", dense=[1.0])


def test_point_id_is_a_stable_uuid5() -> None:
    h = chunk_hash(DOC, CHUNK)
    first = point_id("acme", "doc-1", 0, h)
    assert first == point_id("acme", "doc-1", 0, h)
    assert uuid.UUID(first).version == 5


def test_every_identity_part_changes_the_id() -> None:
    h = chunk_hash(DOC, CHUNK)
    base = point_id("acme", "doc-1", 0, h)
    assert point_id("other", "doc-1", 0, h) != base
    assert point_id("acme", "doc-2", 0, h) != base
    assert point_id("acme", "doc-1", 1, h) != base
    assert point_id("acme", "doc-1", 0, "0" * 64) != base


def test_hash_covers_what_a_reader_sees_but_not_vectors_or_version() -> None:
    h = chunk_hash(DOC, CHUNK)
    assert chunk_hash(DOC, ChunkInput(0, "hello", "Intro", dense=[0.5, 0.5])) == h
    assert chunk_hash(DocumentMeta("doc-1", "file:///a.md", "Title", "markdown", 7), CHUNK) == h
    assert chunk_hash(DOC, ChunkInput(0, "hello!", "Intro", dense=[1.0])) != h
    assert chunk_hash(DOC, ChunkInput(0, "hello", "Other", dense=[1.0])) != h
    assert chunk_hash(DocumentMeta("doc-1", "file:///a.md", "New title", "markdown", 1), CHUNK) != h


def test_hash_fields_cannot_run_into_each_other() -> None:
    a = chunk_hash(DOC, ChunkInput(0, "ab", "c", dense=[1.0]))
    b = chunk_hash(DOC, ChunkInput(0, "a", "bc", dense=[1.0]))
    assert a != b


def test_entities_normalise_case_and_spacing() -> None:
    assert normalize_entity("  Kube-Proxy \n daemon ") == "kube-proxy daemon"
