"""Ranking of the graph leg: entity matches weighed by specificity, bounded expansion, one page at a time.

The question's entity keys (``mesh.entities.query_keys``, the extractor that built
the graph) are looked up exactly. A matched entity weighs its inverse document
frequency over the tenant's chunks, ``log(1 + chunks / mentions)``, so "pod" says
little and ``resources.limits.cpu`` a lot; entities mentioned by more than
``max_mention_share`` of the chunks are dropped. A one-word key is also weighed by
how common the word is in English (``english_commonness``): in a technical corpus
"tired" or "actually" are rare entities, and rare-as-an-entity says nothing about
such a word, while "kubeadm" or "cgroup" are rare both ways. Entities one RELATES hop away from
two or more matched ones (bridges between the things a question names) join at
``expansion_decay`` of their weight, at most ``expansion_limit`` of them.

A chunk scores the sum of the weights of the entities it mentions, plus the
fulltext (title and name) score of the older leg, scaled to the same range.
Hits come one page at a time (the best chunk of every page in page order, then
the second-best, ...), so a question about two pages has both near the top.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class EntityRankSettings:
    """Bounds and weights of the entity part of the graph leg."""

    max_query_keys: int = 48
    """Most question keys looked up."""
    max_entities: int = 8
    """Matched entities kept (the most specific)."""
    max_mention_share: float = 0.05
    """Entities mentioned by more than this share of the tenant's chunks are too generic to use."""
    min_generic_mentions: int = 20
    """An entity mentioned by no more chunks than this is never too generic (a small tenant's share is tiny)."""
    chunks_per_entity: int = 200
    """Most mentioning chunks read per entity."""
    expansion_limit: int = 8
    """Most neighbour entities added by expansion."""
    expansion_decay: float = 0.5
    """Weight share of an expanded neighbour."""
    fulltext_weight: float = 0.5
    """Weight of the fulltext score (scaled so its best hit equals the best entity weight)."""
    word_factor: float = 1.0
    """Multiplier of a one-word key's weight, before its commonness in English (below)."""
    specific_zipf: float = 3.5
    """A word at or below this Zipf frequency in English (3.5: "namespace", "taint", "kubelet") keeps its
    whole weight."""
    common_zipf: float = 5.0
    """A word at or above this Zipf frequency (5: "actually", "missing", "wrong") keeps ``common_floor``
    of it; in between, the share falls linearly. The bounds were chosen on the tuning half of the dev
    questions (tests/bench/answer_sets.py) while the full noisy corpus was being ingested (531 of its 743
    files in): every setting of 2.5 to 3.5, 5 to 5.5 and 0 to 0.25 gave the same recall@5 there. On the
    whole corpus, graph leg recall@5 with the old flat one-word factor of 0.5 and with this: tuning half
    0.74 -> 0.85, the other half 0.70 -> 0.73 (its MRR@10 0.71 -> 0.65)."""
    common_floor: float = 0.25
    """Share of its weight that the most common word keeps ("service" and "job" are common English and
    still the subject of a question, so not 0)."""
    phrase_factor: float = 1.0
    """Multiplier of a key of two or more words."""
    code_factor: float = 1.0
    """Multiplier of a code-like key: a command, a dotted field, a flag, a PascalCase kind."""


@dataclass(frozen=True)
class ChunkRow:
    """A chunk that mentions a weighted entity."""

    entity_uid: str
    chunk_id: str
    doc_id: str


def idf(mentions: int, chunks: int) -> float:
    """Specificity of an entity mentioned by ``mentions`` of ``chunks`` chunks."""
    return math.log(1.0 + max(chunks, 1) / max(mentions, 1))


@functools.lru_cache(maxsize=65536)
def _zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def load_word_frequencies() -> None:
    """Loads the English word frequencies now (about half a second), so no search waits for them."""
    _zipf("pod")


def english_commonness(word: str, settings: EntityRankSettings) -> float:
    """Share of a one-word key's weight kept for how common the word is in English: 1 for a word at or
    under ``specific_zipf``, ``common_floor`` at or over ``common_zipf``, linear in between."""
    zipf = _zipf(word)
    if zipf <= settings.specific_zipf:
        return 1.0
    if zipf >= settings.common_zipf:
        return settings.common_floor
    span = settings.common_zipf - settings.specific_zipf
    return 1.0 - (zipf - settings.specific_zipf) / span * (1.0 - settings.common_floor)


def shape_factor(key: str, settings: EntityRankSettings, code: bool = False) -> float:
    """How much a key's shape says: code-like, a phrase, or one word (weighed by its commonness in English)."""
    if code or any(ch in key for ch in "._=/") or key.startswith("-"):
        return settings.code_factor
    if " " in key:
        return settings.phrase_factor
    return settings.word_factor * english_commonness(key, settings)


def entity_weights(
    matched: Mapping[str, int],
    chunks: int,
    settings: EntityRankSettings,
    shapes: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Weights of the matched entities (uid -> mentions) worth using: the most specific, generic ones dropped;
    ``shapes`` multiplies each by its key's ``shape_factor``."""
    cap = max(float(settings.min_generic_mentions), settings.max_mention_share * chunks)
    shapes = shapes or {}
    usable = {uid: idf(m, chunks) * shapes.get(uid, 1.0) for uid, m in matched.items() if 0 < m <= cap}
    best = sorted(usable.items(), key=lambda kv: (-kv[1], kv[0]))[: settings.max_entities]
    return dict(best)


def expansion_weights(
    neighbours: Iterable[tuple[str, int, int]], chunks: int, settings: EntityRankSettings, matched: int
) -> dict[str, float]:
    """Weights of neighbour entities (uid, matched entities it relates to, mentions).

    With two or more matched entities only bridges (related to two or more) count.
    """
    need = 2 if matched >= 2 else 1
    cap = max(float(settings.min_generic_mentions), settings.max_mention_share * chunks)
    scored = [
        (uid, settings.expansion_decay * idf(m, chunks) * links / max(matched, 1))
        for uid, links, m in neighbours
        if links >= need and 0 < m <= cap
    ]
    scored.sort(key=lambda kv: (-kv[1], kv[0]))
    return dict(scored[: settings.expansion_limit])


def rank(
    rows: Iterable[ChunkRow],
    weights: Mapping[str, float],
    fulltext: Iterable[tuple[str, str, float]],
    settings: EntityRankSettings,
    limit: int,
) -> list[tuple[str, float]]:
    """(chunk id, score) best first, one page at a time; ``fulltext`` holds (chunk id, doc id, score)."""
    scores: dict[str, float] = defaultdict(float)
    doc_of: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if (row.entity_uid, row.chunk_id) in seen:
            continue
        seen.add((row.entity_uid, row.chunk_id))
        scores[row.chunk_id] += weights.get(row.entity_uid, 0.0)
        doc_of[row.chunk_id] = row.doc_id
    text_hits = list(fulltext)
    if text_hits:
        top_text = max(s for _, _, s in text_hits) or 1.0
        top_entity = max(weights.values(), default=1.0)
        for chunk_id, doc_id, score in text_hits:
            scores[chunk_id] += settings.fulltext_weight * top_entity * score / top_text
            doc_of[chunk_id] = doc_id
    by_doc: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for chunk_id, score in scores.items():
        if score > 0:
            by_doc[doc_of[chunk_id]].append((chunk_id, score))
    for hits in by_doc.values():
        hits.sort(key=lambda h: (-h[1], h[0]))
    docs = sorted(by_doc, key=lambda d: (-by_doc[d][0][1], d))
    out: list[tuple[str, float]] = []
    depth = 0
    while len(out) < limit and docs:
        layer = [by_doc[d][depth] for d in docs if depth < len(by_doc[d])]
        if not layer:
            break
        layer.sort(key=lambda h: (-h[1], h[0]))
        out.extend(layer[: limit - len(out)])
        depth += 1
    return out
