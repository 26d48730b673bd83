"""Citation markers in a streamed answer, and attribution of every answer to its sources.

``MarkerFilter`` sits between the model's token stream and the client: it
holds back a ``[`` until it knows whether a citation marker follows, keeps
markers of sources the model was given, and drops any other marker, so a
client never sees a citation to nothing. ``attribute`` credits each answer
sentence to the given source that supports it best (its embedding's
similarity, the source's standing in retrieval's order, the values it shares),
when that support clears a threshold; the agent cites what it finds beside the
model's own markers, since a small model cites rarely and often names the
wrong neighbour.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

from svc_agent.domain.model import Citation, Source
from svc_agent.domain.ports import Embedder
from svc_agent.domain.text import clean_source_text, content_terms, sentences, shorten, words

_MARKER_RE = re.compile(r"\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\]")
# The longest text a marker can take ("[12, 13, 14]"); an open bracket held longer is not one.
_MAX_MARKER_CHARS = 16
_PARTIAL_RE = re.compile(r"\[[\d,\s]*$")
SNIPPET_CHARS = 240


class MarkerFilter:
    """Streams answer text, keeping valid citation markers and dropping unknown ones."""

    def __init__(self, valid_markers: Sequence[int]) -> None:
        self._valid = frozenset(valid_markers)
        self._pending = ""
        self.used: list[int] = []
        """Valid markers in the order they first appeared."""
        self.dropped: list[int] = []
        """Markers the model wrote that name no given source."""

    def _rewrite(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            kept: list[int] = []
            for part in match.group(1).split(","):
                number = int(part)
                if number in self._valid:
                    kept.append(number)
                    if number not in self.used:
                        self.used.append(number)
                else:
                    self.dropped.append(number)
            return "".join(f"[{n}]" for n in kept)

        return _MARKER_RE.sub(replace, text)

    def feed(self, delta: str) -> str:
        """The text that can be shown now; a possible marker's start is held back."""
        text = self._pending + delta
        partial = _PARTIAL_RE.search(text)
        if partial is not None and len(text) - partial.start() <= _MAX_MARKER_CHARS:
            self._pending = text[partial.start() :]
            text = text[: partial.start()]
        else:
            self._pending = ""
        return self._rewrite(text)

    def finish(self) -> str:
        """Whatever was held back, once the stream has ended."""
        text, self._pending = self._pending, ""
        return self._rewrite(text)


def strip_markers(text: str) -> str:
    """``text`` without citation markers."""
    return re.sub(r"\s*" + _MARKER_RE.pattern, "", text)


def snippet(source: Source, near: str = "") -> str:
    """A short excerpt of the source, around the answer's words when they appear in it."""
    text = " ".join(clean_source_text(source.text).split())
    if near:
        best_start, best_hits = 0, -1
        probe = {w.lower() for w in words(near) if len(w) > 3}
        parts = sentences(text)
        offset = 0
        for part in parts:
            hits = sum(w.lower() in probe for w in words(part))
            start = text.find(part, offset)
            if hits > best_hits and start >= 0:
                best_start, best_hits = start, hits
            offset = max(offset, start)
        text = text[best_start:]
    return shorten(text, SNIPPET_CHARS)


def make_citations(markers: Sequence[int], sources: Sequence[Source], answer: str = "") -> tuple[Citation, ...]:
    """Citations for ``markers`` (1-based positions in ``sources``), in marker order."""
    out: list[Citation] = []
    for marker in sorted(set(markers)):
        if not 1 <= marker <= len(sources):
            continue
        source = sources[marker - 1]
        out.append(
            Citation(
                marker=marker,
                chunk_id=source.chunk_id,
                doc_id=source.doc_id,
                source_uri=source.source_uri,
                title=source.title,
                snippet=snippet(source, near=answer),
                score=source.score,
            )
        )
    return tuple(out)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclasses.dataclass(frozen=True)
class Attribution:
    """Which sources answer sentences were credited to."""

    markers: tuple[int, ...]
    """1-based source numbers, in the order the answer first uses them."""
    best_similarity: float
    sentences: int


_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


def _vocabulary(text: str) -> set[str]:
    """Content terms and numbers of ``text``."""
    return set(content_terms(text)) | set(_NUMBER_RE.findall(text))


def windows(text: str, max_chars: int, max_windows: int) -> list[str]:
    """The first ``max_windows`` pieces of ``text``, each at most ``max_chars`` long, cut at sentence ends.

    An embedder refuses texts over its token limit, and one vector for a whole
    chunk blurs what each part says; a sentence longer than a window is cut at
    a word boundary.
    """
    out: list[str] = []
    current = ""
    for sentence in sentences(text):
        while len(sentence) > max_chars:
            cut = sentence[:max_chars].rsplit(" ", 1)[0] or sentence[:max_chars]
            if current:
                out.append(current)
                current = ""
            out.append(cut)
            sentence = sentence[len(cut) :].lstrip()
        if current and len(current) + 1 + len(sentence) > max_chars:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
        if len(out) >= max_windows:
            break
    if current:
        out.append(current)
    return [w for w in out if w][:max_windows]


async def attribute(
    answer: str,
    question: str,
    sources: Sequence[Source],
    embedder: Embedder,
    *,
    min_similarity: float,
    standing_weight: float,
    short_claim_words: int,
    source_chars: int,
    standing_decay: float = 0.5,
    tie_band: float = 0.0,
    lexical_weight: float = 0.0,
    min_own_similarity: float = 0.0,
) -> Attribution:
    """Credits each answer sentence to the source that best supports it, when the support is good enough.

    A sentence's support from a source is its similarity to the source's
    closest window (the first ``source_chars`` characters, cut to what the
    embedder accepts), and, weighted by ``standing_weight``, the source's
    standing in retrieval's order (``sources`` come best first; the i-th,
    counted from 0, stands at ``1 / (1 + standing_decay * i)``): a small
    model's sentence is often vague and resembles several sources about
    equally, and of those the one retrieval ranked higher (fused legs,
    reranked) is the one that answers the question. A sentence shorter than
    ``short_claim_words`` ("The default is 3.") says too little on its own, so
    it is embedded together with the question it answers. With
    ``lexical_weight``, the share of the sentence's own words and numbers (those
    not taken from the question) that a source contains adds to its support:
    a small model copies values ("30 seconds") from what it read. A sentence
    is credited when its own similarity to the best source, or the weighted
    support, reaches ``min_similarity``, and its similarity to some source
    reaches ``min_own_similarity`` (standing only chooses among sources a
    sentence resembles; it never credits a sentence that resembles none).
    Every source whose support is within ``tie_band`` of the best supports it
    as well as that one does, and is credited too.
    """
    claims = sentences(strip_markers(answer))
    if not claims or not sources:
        return Attribution((), 0.0, len(claims))
    max_chars = await embedder.max_input_chars()
    asked = " ".join(question.split())
    texts = [
        shorten(f"{claim} {asked}" if len(words(claim)) < short_claim_words else claim, max_chars) for claim in claims
    ]
    per_source = max(1, source_chars // max_chars)
    owners: list[int] = []
    passages: list[str] = []
    for index, source in enumerate(sources):
        pieces = windows(clean_source_text(source.text), max_chars, per_source) or [shorten(source.title, max_chars)]
        passages += pieces
        owners += [index] * len(pieces)
    vectors = await embedder.embed([*texts, *passages], query=False)
    claim_vectors, passage_vectors = vectors[: len(texts)], vectors[len(texts) :]
    standing = [1.0 / (1.0 + standing_decay * index) for index in range(len(sources))]
    vocabularies = [_vocabulary(clean_source_text(s.text)[:source_chars]) for s in sources]
    asked_vocabulary = _vocabulary(asked)
    weights = 1 + standing_weight + lexical_weight
    markers: list[int] = []
    best_overall = 0.0
    for claim, claim_vector in zip(claims, claim_vectors, strict=True):
        similarity = [0.0] * len(sources)
        for owner, passage_vector in zip(owners, passage_vectors, strict=True):
            similarity[owner] = max(similarity[owner], _cosine(claim_vector, passage_vector))
        own = [t for t in _vocabulary(claim) if t not in asked_vocabulary]
        lexical = [sum(t in vocabulary for t in own) / len(own) if own else 0.0 for vocabulary in vocabularies]
        support = [
            (sim + standing_weight * rank + lexical_weight * lex) / weights
            for sim, rank, lex in zip(similarity, standing, lexical, strict=True)
        ]
        best = max(range(len(support)), key=support.__getitem__)
        best_overall = max(best_overall, similarity[best])
        if max(similarity) < min_own_similarity or max(similarity[best], support[best]) < min_similarity:
            continue
        tied = sorted((i for i, s in enumerate(support) if s >= support[best] - tie_band), key=lambda i: -support[i])
        markers += [i + 1 for i in tied if i + 1 not in markers]
    return Attribution(tuple(markers), best_overall, len(claims))
