"""Query rewriting from the chat history.

A follow-up like "How do I scale it?" means nothing to a search engine. The
rewrite is done in two layers, because the local LLM is tiny:

1. a deterministic resolution that always runs: pronouns (it, they, this, ...)
   are replaced by the main noun phrase of the previous question, and an
   elliptical follow-up ("What about StatefulSets?") takes the previous
   question with its noun phrase swapped;
2. the model, asked only when the deterministic layer found something to
   resolve, whose rewrite is kept only if it passes checks (it names the topic,
   keeps the follow-up's own terms, leaves no pronoun unresolved).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from svc_agent.domain.model import Role, Turn
from svc_agent.domain.text import COMMON_VERBS, STOPWORDS, content_terms, words

_ALWAYS_PRONOUNS = frozenset({"it", "its", "they", "them", "their", "theirs"})
_POSSESSIVES = frozenset({"its", "their", "theirs"})
_PRONOUN_RE = re.compile(r"\b(it|its|they|them|their|theirs|this|that|these|those|one)\b", re.IGNORECASE)
_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.'/-]*|[?!.,;:]")
_ELLIPSIS_RES = (
    re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<np>.+?)\s*[?.!]*\s*$", re.IGNORECASE),
    re.compile(r"^\s*and\s+(?:for|with|in|on|of)\s+(?P<np>.+?)\s*[?.!]*\s*$", re.IGNORECASE),
    re.compile(r"^\s*(?:and|also|same\s+for)\s+(?P<np>[^?]{1,80}?)\s*\?\s*$", re.IGNORECASE),
)
_ARTICLE_RE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Resolution:
    """The deterministic rewrite of a message."""

    query: str
    """The standalone question (the message itself when nothing needed resolving)."""
    topic: str = ""
    """The noun phrase of the previous question that was substituted, if any."""
    reason: str = ""
    """What was resolved, for people."""

    @property
    def changed(self) -> bool:
        """Whether anything was resolved."""
        return bool(self.topic)


def _is_topic_word(word: str) -> bool:
    lowered = word.lower()
    return lowered not in STOPWORDS and lowered not in COMMON_VERBS and not lowered.isdigit()


def main_noun_phrase(question: str) -> str:
    """The likely topic of a question: its longest run of topic words, capitalised or technical ones first.

    Without a tagger, "runs of words that are neither stopwords nor common
    verbs" approximates noun phrases well on technical questions ("What is a
    Pod disruption budget?" -> "Pod disruption budget").
    """
    tokens = words(question)
    runs: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if _is_topic_word(token):
            current.append(token)
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    if not runs:
        return ""

    def score(item: tuple[int, list[str]]) -> tuple[int, int]:
        position, run = item
        named = any(w[:1].isupper() or any(c.isupper() for c in w[1:]) or "-" in w for w in run)
        # Longer and named phrases win; on a tie the earlier one (usually the object of the question).
        return (len(run) + (1 if named else 0), -position)

    _, best = max(enumerate(runs), key=score)
    return " ".join(best)


def _previous_question(history: Sequence[Turn]) -> str:
    for turn in reversed(history):
        if turn.role is Role.USER:
            return turn.rewritten_query or turn.content
    return ""


def _neighbours(text: str, start: int, end: int) -> tuple[str | None, str | None]:
    before = _TOKEN_RE.findall(text[:start])
    after = _TOKEN_RE.findall(text[end:])
    return (before[-1].lower() if before else None, after[0].lower() if after else None)


def _is_pronoun(text: str, match: re.Match[str]) -> bool:
    word = match.group(0).lower()
    if word in _ALWAYS_PRONOUNS:
        return True
    prev, nxt = _neighbours(text, match.start(), match.end())
    # "this", "that", "one" and the like are pronouns only where no noun surrounds them:
    # "pods that are evicted": after a noun, a demonstrative is a relative pronoun or a determiner.
    prev_ok = prev is None or not prev[0].isalnum() or prev in STOPWORDS or prev in COMMON_VERBS
    # "this feature": followed by a noun, it is a determiner of a new noun phrase.
    next_ok = nxt is None or not nxt[0].isalnum() or nxt in STOPWORDS or nxt in COMMON_VERBS
    return prev_ok and next_ok


def find_pronouns(question: str) -> list[str]:
    """The pronouns in ``question`` that refer back to something, in order."""
    return [m.group(0) for m in _PRONOUN_RE.finditer(question) if _is_pronoun(question, m)]


def _swap_topic(previous: str, old_topic: str, new_topic: str) -> str:
    if old_topic and old_topic in previous:
        return previous.replace(old_topic, new_topic, 1)
    return f"{previous.rstrip(' ?.!')} for {new_topic}?"


def resolve(question: str, history: Sequence[Turn]) -> Resolution:
    """Makes ``question`` standalone using the previous question of ``history``, deterministically."""
    previous = _previous_question(history)
    if not previous:
        return Resolution(query=question)
    topic = main_noun_phrase(previous)
    if not topic:
        return Resolution(query=question)
    for pattern in _ELLIPSIS_RES:
        match = pattern.match(question)
        if match:
            new_topic = _ARTICLE_RE.sub("", match.group("np").strip())
            if not new_topic or not content_terms(new_topic):
                continue
            return Resolution(
                query=_swap_topic(previous, topic, new_topic),
                topic=topic,
                reason=f"ellipsis: previous question with {topic!r} -> {new_topic!r}",
            )
    replaced: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if not _is_pronoun(question, match):
            return match.group(0)
        word = match.group(0)
        replaced.append(word)
        return f"{topic}'s" if word.lower() in _POSSESSIVES else topic

    query = _PRONOUN_RE.sub(substitute, question)
    if not replaced:
        return Resolution(query=question)
    pronouns = ", ".join(repr(p) for p in dict.fromkeys(replaced))
    return Resolution(query=query, topic=topic, reason=f"{pronouns} -> {topic!r}")


REWRITE_PROMPT = """Rewrite the follow-up as a standalone question. Keep its meaning and name what it refers to.

Previous question: What is a Deployment?
Follow-up: How do I scale it?
Standalone question: How do I scale a Deployment?

Previous question: How do I create a Secret?
Follow-up: What about ConfigMaps?
Standalone question: How do I create a ConfigMap?

Previous question: {previous}
Follow-up: {question}
Standalone question:"""


def rewrite_prompt(question: str, history: Sequence[Turn]) -> str:
    """The few-shot prompt that asks the model for a standalone question."""
    return REWRITE_PROMPT.format(previous=_previous_question(history), question=question.strip())


def check_model_rewrite(candidate: str, question: str, resolution: Resolution) -> str | None:
    """Why the model's rewrite is unusable, or None when it may replace the deterministic one."""
    text = " ".join(candidate.split())
    if not text:
        return "empty"
    if len(text) > max(300, 3 * len(resolution.query)):
        return "too long"
    if find_pronouns(text):
        return "still has a pronoun"
    terms = set(content_terms(text))
    topic_terms = content_terms(resolution.topic)
    if topic_terms and sum(t in terms for t in topic_terms) * 2 < len(topic_terms):
        return "does not name the topic"
    own = [t for t in content_terms(question) if t not in topic_terms]
    if own and sum(t in terms for t in own) * 2 < len(own):
        return "drops the follow-up's own terms"
    return None
