"""How well the retrieved sources support answering a question.

Two signals, both cheap (nothing is embedded again):

- strength: the best cosine similarity of question and source from the dense
  leg of the search (a lexical proxy when no source has a dense score, for
  example while the dense leg is degraded);
- coverage: the share of the question's specific terms (names like
  ``ClusterIssuer``, ``cert-manager``, ``--history-max``, capitalised words)
  the corpus mentions: in the retrieved chunks, or else in a term lookup. A
  question about a tool the corpus never mentions can still sit close to it
  in embedding space; its specific terms are what give it away.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Collection, Sequence

from svc_agent.domain.model import Source
from svc_agent.domain.text import STOPWORDS, is_specific, term_overlap, words


class Level(enum.Enum):
    """What the evidence allows."""

    STRONG = "strong"
    """Answer."""
    WEAK = "weak"
    """Answer, but a corrective search may find better sources."""
    INSUFFICIENT = "insufficient"
    """Decline unless a corrective search finds better sources."""


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Where the levels start."""

    min_relevance: float
    """Below this best similarity the documents do not hold the answer."""
    strong_relevance: float
    """At or above this best similarity no corrective search is needed."""
    min_coverage: float
    """Share of the question's names (see ``specific_terms``) the corpus must mention."""


@dataclasses.dataclass(frozen=True)
class Evidence:
    """The evidence of one set of sources for one question."""

    strength: float
    coverage: float
    """Share of the question's names the corpus mentions (1 when it has none)."""
    missing_terms: tuple[str, ...]
    """Specific terms, names or not, no retrieved chunk or lookup mentions."""
    lexical: bool
    """Whether strength is the lexical proxy (no source had a dense score)."""

    def level(self, thresholds: Thresholds) -> Level:
        """STRONG, WEAK or INSUFFICIENT under ``thresholds``."""
        if self.strength < thresholds.min_relevance or self.coverage < thresholds.min_coverage:
            return Level.INSUFFICIENT
        if self.strength < thresholds.strong_relevance or self.missing_terms:
            return Level.WEAK
        return Level.STRONG

    def describe(self) -> str:
        """A short account for step details."""
        kind = "lexical overlap" if self.lexical else "similarity"
        text = f"best {kind} {self.strength:.2f}, names covered {self.coverage:.0%}"
        if self.missing_terms:
            text += f" (missing: {', '.join(self.missing_terms[:4])})"
        return text


_QUANTITY_RE = re.compile(r"^\d+(?:[.,:]\d+)*[A-Za-z]{0,3}$")


@dataclasses.dataclass(frozen=True)
class Term:
    """A specific term of a question, lower-cased, and whether it names something."""

    text: str
    name: bool
    """A flag, a CamelCase, ALLCAPS or capitalised word: what the question is about. Lower-case
    hyphenated or dotted words ("my-app", "scratch-volume") are as often the asker's own identifiers."""


def question_terms(question: str) -> list[Term]:
    """The words of ``question`` that are specific, each once.

    Quantities and versions ("1000Gi", "1.25", "10s") are the asker's own values,
    not words a corpus must contain, so they are left out; so is a word that is
    only a part of another term ("Berlin" beside "Europe/Berlin").
    """
    found: dict[str, bool] = {}
    for index, token in enumerate(words(question)):
        term = token.lstrip("-").lower().removesuffix("'s")
        if term in STOPWORDS or _QUANTITY_RE.match(token):
            continue
        capitalised = index > 0 and token[:1].isupper() and len(token) >= 3
        flag = f"--{token}" in question
        if is_specific(token) or capitalised or flag:
            name = flag or any(c.isupper() for c in token)
            found[term] = found.get(term, False) or name
    terms = [Term(t, n) for t, n in found.items()]
    return [t for t in terms if not any(t.text != o.text and t.text in re.split(r"[/._=-]", o.text) for o in terms)]


def specific_terms(question: str) -> list[str]:
    """The specific terms of ``question`` (see ``question_terms``), lower-cased, without leading dashes."""
    return [t.text for t in question_terms(question)]


def same_specifics(first: str, second: str) -> bool:
    """Whether two questions name the same specific things and numbers (a check on semantic cache hits).

    Each question's specific terms must appear in the other (case, plurals and
    hyphens aside), and both must hold the same numbers.
    """

    def flat(text: str) -> str:
        return " " + " ".join(re.sub(r"[-_/.]", " ", text.lower()).split()) + " "

    def covered(terms: list[str], text: str) -> bool:
        return all(f" {flat(t).strip().removesuffix('s')}" in text for t in terms)

    def numbers(text: str) -> set[str]:
        return set(re.findall(r"\d+(?:\.\d+)?", text))

    return (
        numbers(first) == numbers(second)
        and covered(specific_terms(first), flat(second))
        and covered(specific_terms(second), flat(first))
    )


def mentions(text: str, term: str) -> bool:
    """Whether ``text`` (lower-cased) mentions ``term``, in its singular or plural form."""
    if term in text:
        return True
    # "ConfigMaps" is covered by a source that says "ConfigMap", and the other way round.
    other = term[:-1] if term.endswith("s") else term + "s"
    return len(other) >= 3 and re.search(rf"\b{re.escape(other)}\b", text) is not None


def assess(
    question: str, sources: Sequence[Source], *, pool: Sequence[Source] = (), known: Collection[str] = ()
) -> Evidence:
    """The evidence ``sources`` give for answering ``question``.

    Strength comes from ``sources`` (what the model will read); a specific term
    counts as covered when any source, any other retrieved chunk in ``pool``
    or a term lookup (``known``) shows the corpus mentions it. Coverage counts
    names only: an absent identifier of the asker's own does not make a
    question unanswerable, an absent product or flag does.
    """
    terms = question_terms(question)
    haystack = "\n".join(f"{s.title}\n{s.text}" for s in (*sources, *pool)).lower()
    missing = tuple(t.text for t in terms if t.text not in known and not mentions(haystack, t.text))
    names = [t.text for t in terms if t.name]
    coverage = 1.0 if not names else sum(n not in missing for n in names) / len(names)
    if not sources:
        return Evidence(strength=0.0, coverage=coverage, missing_terms=missing, lexical=False)
    dense = [s.relevance for s in sources if s.relevance is not None]
    lexical = not dense
    strength = max(dense) if dense else max(term_overlap(question, s.text) for s in sources)
    return Evidence(strength=strength, coverage=coverage, missing_terms=missing, lexical=lexical)


def merge_sources(current: Sequence[Source], extra: Sequence[Source], limit: int) -> tuple[Source, ...]:
    """The best ``limit`` sources of two searches, each chunk once, most relevant first."""
    best: dict[str, Source] = {}
    for source in (*current, *extra):
        kept = best.get(source.chunk_id)
        if kept is None or (source.relevance or 0.0) > (kept.relevance or 0.0):
            best[source.chunk_id] = source
    ranked = sorted(best.values(), key=lambda s: s.relevance if s.relevance is not None else -1.0, reverse=True)
    return tuple(ranked[:limit])
