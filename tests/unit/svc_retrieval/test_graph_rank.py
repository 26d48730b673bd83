"""Graph-leg ranking: specificity weights, bounded expansion, one page at a time."""

from __future__ import annotations

from svc_retrieval.domain.graph_rank import (
    ChunkRow,
    EntityRankSettings,
    english_commonness,
    entity_weights,
    expansion_weights,
    idf,
    rank,
    shape_factor,
)

SETTINGS = EntityRankSettings(max_entities=2, max_mention_share=0.2, expansion_limit=1, min_generic_mentions=1)


def test_specific_entities_weigh_more_and_generic_ones_are_dropped() -> None:
    assert idf(1, 1000) > idf(50, 1000) > 0
    weights = entity_weights({"pod": 400, "pdb": 3, "drain": 10, "label": 50}, 1000, SETTINGS)
    assert list(weights) == ["pdb", "drain"], "pod is too generic, and only the two most specific are kept"


def test_a_small_tenant_keeps_entities_every_chunk_mentions() -> None:
    settings = EntityRankSettings(max_mention_share=0.05, min_generic_mentions=20)
    assert set(entity_weights({"taint": 3, "pod": 30}, 10, settings)) == {"taint"}


def test_expansion_keeps_bridges_within_the_bound() -> None:
    neighbours = [("bridge", 2, 5), ("leaf", 1, 1), ("other-bridge", 2, 50), ("generic", 2, 900)]
    got = expansion_weights(neighbours, 1000, SETTINGS, matched=2)
    assert list(got) == ["bridge"]
    assert got["bridge"] < idf(5, 1000), "a neighbour weighs less than a match"
    assert list(expansion_weights([("leaf", 1, 1)], 1000, SETTINGS, matched=1)) == ["leaf"]


def test_rank_sums_entities_and_interleaves_pages() -> None:
    rows = [
        ChunkRow("a", "a1", "docA"),
        ChunkRow("b", "a1", "docA"),
        ChunkRow("a", "a2", "docA"),
        ChunkRow("a", "a3", "docA"),
        ChunkRow("b", "b1", "docB"),
        ChunkRow("b", "b1", "docB"),  # a repeated row counts once
    ]
    got = rank(rows, {"a": 2.0, "b": 1.0}, [], SETTINGS, limit=3)
    assert [c for c, _ in got] == ["a1", "b1", "a2"], "each page's best chunk before any page's second"
    assert got[0][1] == 3.0 and got[1][1] == 1.0


def test_fulltext_hits_join_on_the_entity_scale() -> None:
    got = rank([ChunkRow("a", "a1", "docA")], {"a": 2.0}, [("t1", "docT", 8.0), ("a1", "docA", 4.0)], SETTINGS, 5)
    scores = dict(got)
    assert scores["t1"] == SETTINGS.fulltext_weight * 2.0
    assert scores["a1"] == 2.0 + SETTINGS.fulltext_weight * 2.0 * 0.5
    assert rank([], {}, [], SETTINGS, 5) == []


def test_an_everyday_word_weighs_less_than_a_technical_one() -> None:
    settings = EntityRankSettings()
    # Rare as entities of a technical corpus both, but only one is rare in English.
    assert shape_factor("kubeadm", settings) == 1.0
    assert shape_factor("cgroup", settings) == 1.0
    assert shape_factor("actually", settings) == settings.common_floor
    tired = shape_factor("tired", settings)
    assert settings.common_floor < tired < 1.0
    # The share falls with the word's frequency between the two bounds.
    assert shape_factor("pod", settings) > tired > shape_factor("thinking", settings)
    # Phrases and code-like keys are not words of English: their factor is their shape's.
    assert shape_factor("current context", settings) == settings.phrase_factor
    assert shape_factor("resources.limits.cpu", settings) == settings.code_factor
    assert shape_factor("service", settings, code=True) == settings.code_factor


def test_english_commonness_follows_its_bounds() -> None:
    flat = EntityRankSettings(specific_zipf=9.0, common_zipf=10.0)
    assert english_commonness("actually", flat) == 1.0
    strict = EntityRankSettings(specific_zipf=0.0, common_zipf=0.5, common_floor=0.0)
    assert english_commonness("actually", strict) == 0.0
