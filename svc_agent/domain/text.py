"""Small text helpers the loop's deterministic parts share: words, stopwords, normalisation, sentences."""

from __future__ import annotations

import re
import unicodedata


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` as a set (for word lists written as prose)."""
    return frozenset(text.split())


# Words that carry no topic: articles, auxiliaries, pronouns, prepositions, question words.
STOPWORDS = word_set(
    """
    a an the and or but if then else so than too very can could should would will shall may might must
    do does did done doing is are was were be been being am has have had having
    i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
    this that these those there here what which who whom whose when where why how
    of in on at to for from by with about into onto over under between through during before after
    above below up down out off again further once not no nor only own same just also any all both
    each few more most other some such as until while because whether
    please tell explain describe show give know want need like let lets get got
    s t don doesn isn aren wasn weren hasn haven didn won wouldn shouldn couldn
    """
)

# Verbs that often open a question's predicate; never the topic of a question.
COMMON_VERBS = word_set(
    """
    use used using make makes made create creates created configure configures configured set sets setting
    run runs running start starts started stop stops stopped delete deletes deleted remove removes removed
    add adds added enable enables enabled disable disables disabled change changes changed update updates
    find finds check checks see look work works happen happens happened mean means meant define defines
    specify specifies write writes read reads install installs installed deploy deploys deployed scale
    scales expose exposes access accesses debug debugs call calls called list lists manage manages
    go goes keep keeps become becomes cause causes decide decides take takes put puts say says
    clean cleans compare differ differs fix fixes listen listens serve serves mount mounts store stores
    schedule schedules evict evicts restart restarts drain drains support supports require requires
    allow allows handle handles contain contains apply applies send sends receive receives connect connects
    reach reaches expect expects happen fail fails
    """
)

_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.'/-]*[A-Za-z0-9]|[A-Za-z0-9]")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")


def words(text: str) -> list[str]:
    """The words of ``text`` (letters, digits and inner ``_.'/-``), in order."""
    return _WORD_RE.findall(text)


def _stem(word: str) -> str:
    lowered = word.lower().removesuffix("'s")
    if len(lowered) > 4 and lowered.endswith("ies"):
        return lowered[:-3] + "y"
    if len(lowered) > 3 and lowered.endswith("s") and not lowered.endswith("ss"):
        return lowered[:-1]
    return lowered


def content_terms(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words of ``text`` that are not stopwords, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in words(text):
        lowered = word.lower()
        if lowered in STOPWORDS or len(lowered) < 2:
            continue
        seen.setdefault(_stem(word), None)
    return list(seen)


def term_overlap(part: str, whole: str) -> float:
    """Share of ``part``'s content terms that ``whole`` contains (0 when ``part`` has none)."""
    terms = content_terms(part)
    if not terms:
        return 0.0
    present = set(content_terms(whole))
    return sum(t in present for t in terms) / len(terms)


def keyword_query(text: str) -> str:
    """The words of ``text`` that are not stopwords, as written, each once: a terser query for a second search."""
    kept: dict[str, str] = {}
    for word in words(text):
        if word.lower() not in STOPWORDS and len(word) > 1:
            kept.setdefault(word.lower(), word)
    return " ".join(kept.values())


def is_specific(word: str) -> bool:
    """Whether a word names something specific: camelCase, a flag, digits, dots or hyphens inside."""
    if len(word) < 3:
        return False
    inner_upper = any(c.isupper() for c in word[1:])
    return inner_upper or word.startswith("-") or any(c.isdigit() for c in word) or bool(re.search(r"[a-z][.-]", word))


def normalize_question(text: str) -> str:
    """The form of a question the exact cache keys on: NFKC, lower case, single spaces, no end punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    collapsed = " ".join(folded.split())
    return collapsed.rstrip(" ?!.").strip()


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences (and lines), stripped, empty ones dropped."""
    return [part.strip() for part in _SENTENCE_RE.split(text) if part.strip()]


_MD_LINK_RE = re.compile(r"!?\[([^\]\n]{0,200})\]\([^)\n]{0,500}\)")
_SHORTCODE_TEXT_RE = re.compile(r"\{\{[<%]\s*[\w-]+[^}]*?\btext=\"([^\"]*)\"[^}]*?[>%]\}\}")
_SHORTCODE_RE = re.compile(r"\{\{[<%].*?[>%]\}\}", re.DOTALL)
# HTML elements by name, so the docs' placeholders survive: "kubectl rollout status ds/<daemonset-name>"
# lost "<daemonset-name>" to a rule that took any "<word>" for a tag. Names that read as placeholders
# too ("path", "label", "source", "title") are not listed.
_HTML_ELEMENTS = (
    "a|abbr|article|aside|audio|b|blockquote|br|button|caption|center|cite|code|col|colgroup|dd|del|details|"
    "div|dl|dt|em|figcaption|figure|font|footer|h[1-6]|header|hr|i|iframe|img|ins|kbd|li|main|mark|nav|"
    "noscript|ol|p|picture|pre|q|s|samp|script|section|small|span|strike|strong|style|sub|summary|sup|svg|"
    "table|tbody|td|tfoot|th|thead|tr|tt|u|ul|video"
)
_HTML_TAG_RE = re.compile(rf"</?(?:{_HTML_ELEMENTS})(?:[\s/][^>\n]{{0,200}})?>", re.IGNORECASE)
_FRONT_MATTER_RE = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


def clean_source_text(text: str) -> str:
    """Chunk text as a model should read it: markup that is not content removed, whitespace collapsed.

    Markdown links keep their text (their ``[...]`` would otherwise look like
    citation markers), template shortcodes keep their ``text=`` argument, and
    HTML tags and front matter go.
    """
    out = _FRONT_MATTER_RE.sub("", text)
    out = _MD_LINK_RE.sub(r"\1", out)
    out = _SHORTCODE_TEXT_RE.sub(r"\1", out)
    out = _SHORTCODE_RE.sub(" ", out)
    out = _HTML_TAG_RE.sub(" ", out)
    out = re.sub(r"[ \t]+", " ", out)
    out = re.sub(r"\n\s*\n+", "\n", out)
    return out.strip()


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis when cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: max(0, limit - 1)]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"
