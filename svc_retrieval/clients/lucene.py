"""Lucene query strings for Neo4j's fulltext index, built from untrusted text.

The index covers entity names, document titles and a ``tenant_key`` field;
every query requires the caller's tenant key, so Lucene itself filters by
tenant before scoring, and no match of another tenant can take a result slot.
User text never reaches the query parser as syntax: it is cut into plain
alphanumeric words, lower-cased (so AND/OR/NOT are words, not operators).
"""

from __future__ import annotations

import re

_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
# Enough words for any real question; more only slows Lucene down.
_MAX_WORDS = 48

# Lucene's English stop words plus the function words of questions: matching an entity
# or title on "how" or "does" is noise, and a query of only these would match
# every node of the tenant once the analyzer dropped them.
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
        "how",
        "what",
        "why",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "do",
        "does",
        "did",
        "doing",
        "done",
        "can",
        "could",
        "should",
        "would",
        "may",
        "might",
        "must",
        "shall",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "his",
        "her",
        "its",
        "them",
        "us",
        "am",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "from",
        "about",
        "above",
        "below",
        "over",
        "under",
        "again",
        "further",
        "once",
        "here",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "just",
        "also",
        "get",
        "gets",
        "got",
        "use",
        "using",
        "used",
        "need",
        "needs",
        "want",
        "wants",
        "make",
        "makes",
        "between",
        "after",
        "before",
        "during",
        "while",
        "until",
        "up",
        "down",
        "out",
        "off",
    }
)


def tenant_key(tenant: str) -> str:
    """A single-token form of the tenant that every analyzer keeps whole.

    Hex of the UTF-8 bytes, between a letter and a digit, so no tokenizer splits
    it and no stemmer finds a suffix to strip.
    """
    return "t" + tenant.encode("utf-8").hex() + "0"


def words(text: str) -> list[str]:
    """The plain words of ``text`` that are not stop words, lower-cased, in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _WORD_RE.finditer(text):
        word = match.group().lower()
        if word in STOP_WORDS:
            continue
        seen.setdefault(word, None)
        if len(seen) >= _MAX_WORDS:
            break
    return list(seen)


def names_query(tenant: str, text: str, fields: tuple[str, ...] = ("name", "title")) -> str | None:
    """``+tenant_key:<key> +(name:(w1 w2 ...) title:(w1 w2 ...))``, or None when ``text`` has no words."""
    found = words(text)
    if not found:
        return None
    terms = " ".join(found)
    alternatives = " ".join(f"{field}:({terms})" for field in fields)
    return f"+tenant_key:{tenant_key(tenant)} +({alternatives})"
