"""Stored forms of citations and cached answers; the exact cache's key."""

from __future__ import annotations

from svc_agent.clients.answer_cache import cache_key
from svc_agent.clients.codec import (
    cached_answer_from_json,
    cached_answer_to_json,
    citations_from_json,
    citations_to_json,
)
from svc_agent.clients.semantic_cache import point_id
from svc_agent.domain.model import CachedAnswer, Citation
from svc_agent.domain.ports import CacheScope

CITATIONS = (Citation(1, "c1", "d1", "file:///a.md", "A", "snip", 0.25),)


def test_round_trips() -> None:
    assert citations_from_json(citations_to_json(CITATIONS)) == CITATIONS
    answer = CachedAnswer("A [1].", CITATIONS, "q", True)
    assert cached_answer_from_json(cached_answer_to_json(answer)) == answer


def test_unreadable_or_old_entries_read_as_misses() -> None:
    assert cached_answer_from_json("not json") is None
    assert cached_answer_from_json('{"format": 0, "answer": "x"}') is None
    assert cached_answer_from_json('{"format": 1}') is None


def test_cache_key_holds_tenant_version_and_options() -> None:
    key = cache_key(CacheScope("acme", 7, "k4"), "how do i drain a node")
    assert key.startswith("ragmesh:agent:answer:v1:acme:7:k4:")
    assert key != cache_key(CacheScope("acme", 8, "k4"), "how do i drain a node")
    assert key != cache_key(CacheScope("other", 7, "k4"), "how do i drain a node")
    assert key != cache_key(CacheScope("acme", 7, "k4"), "how do i drain a pod")


def test_semantic_point_ids_are_per_question_and_scope() -> None:
    scope = CacheScope("acme", 7, "k4")
    assert point_id(scope, "How do I drain a node?") == point_id(scope, "how do I drain a node")
    assert point_id(scope, "How do I drain a node?") != point_id(CacheScope("acme", 8, "k4"), "How do I drain a node?")
