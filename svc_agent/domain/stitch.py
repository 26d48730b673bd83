"""Quote-and-stitch: an answer made of the retrieved chunks' own sentences, each cited.

A small local model cannot be trusted to write a grounded answer, but the
evidence usually holds one verbatim. This picks the sentences of the sources
that answer the question and strings them together, each followed by its
chunk's ``[n]`` marker, so no sentence of the answer lacks a source.

Candidates are the sources' sentences (list items and prose lines cut at
sentence ends, headings and table rules dropped); a short fenced code block is
kept with the sentence that introduces it, as inline code spans, one per line,
and inline code spans are never cut. Each candidate is scored by

    cosine(question, sentence)                      the embedder, query vs document
    + lexical_weight * share of the question's terms the sentence holds
    + code_weight    if it carries a command, flag, field path or code span
    + standing_weight * 1 / (1 + i)                  its chunk's place i in retrieval's order

and the best are taken greedily as passages, skipping near-duplicates of those
already taken and preferring, for each passage after the first, a source not
quoted yet (``repeat_source_penalty``): each chosen sentence brings the sentences right beside it in its
source when they score close to it, since the docs give a fact's details (the
default, the flag, the exception) in the sentences after the one that names it.
The answer declines when the best sentence's cosine is under
``min_similarity``: then no sentence of the evidence is about the question.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

from svc_agent.domain.model import Source
from svc_agent.domain.ports import Embedder
from svc_agent.domain.text import clean_source_text, content_terms, sentences, shorten, term_overlap, words


@dataclasses.dataclass(frozen=True)
class StitchParams:
    """How sentences are chosen (AgentSettings holds the configured values)."""

    max_sentences: int = 7
    """Most sentences in an answer, neighbours included (with two passages, 4 found fewer key terms on the
    tuning half and 6 no more than 5; with three, 7 found 21 of its 50 key terms against 19 with 6)."""
    max_chars: int = 1600
    """Most characters of the answer's sentences together (the first sentence is always taken)."""
    min_similarity: float = 0.25
    """Best question-sentence cosine below which the evidence holds no answer (the answer declines).

    Set on the tuning half of the dev questions (tests/bench/answer_sets.py, 2 cores, subset corpus):
    the answerable questions' best sentences scored 0.29 to 0.89 (median 0.71); the unanswerable one
    was declined before, by the evidence check. 0.25 sits under the lowest answerable score: it is the
    backstop for evidence that passed the chunk-level check but holds no sentence about the question."""
    min_share_of_best: float = 0.6
    """A passage after the first is taken only when its sentence scores at least this share of the best one's
    (0.5 and 0.75 found the same key terms on the tuning half)."""
    lexical_weight: float = 0.3
    """Weight of the share of the question's terms a sentence holds (0.5 found fewer key terms on the tuning half)."""
    code_weight: float = 0.1
    """Bonus of a sentence that carries a command, flag, field path or code span."""
    standing_weight: float = 0.05
    """Weight of the chunk's place in retrieval's order."""
    repeat_source_penalty: float = 0.25
    """Taken off a sentence's score, when the next passage is chosen, if its source is quoted already.

    A question's facts often sit in two pages, and the page retrieval put first is not always the one
    whose sentences score best. Chosen on the tuning half of the dev set (full noisy corpus, 2 cores,
    the sources the agent retrieved replayed through the stitch): gold page cited 17 -> 20 of 23 with
    three passages; 0.2 and 0.3 the same, 0.1 no gain. The other half: 14 -> 15 of 15."""
    duplicate_similarity: float = 0.9
    """Two sentences at or above this cosine (or sharing this share of terms) say the same thing: one is kept."""
    max_candidates: int = 120
    """Most sentences embedded for one answer (the first sources' first sentences)."""
    max_sentence_chars: int = 400
    """Longest sentence quoted whole; longer ones are cut at a word boundary."""
    max_code_lines: int = 3
    """Most lines of a code block kept with the sentence that introduces it."""
    max_passages: int = 3
    """Most sentences chosen on their own score; each brings its neighbours (``neighbour_steps``).
    On the subset corpus one passage cited the gold page for 0.70 of the tuning half's questions, two for
    0.83; on the full noisy corpus two cited it for 17 of 23, three (with ``repeat_source_penalty``) for 20."""
    neighbour_steps: tuple[int, ...] = (1, -1, 2)
    """Offsets, in the same source, of the sentences beside a chosen one that may join it: the docs state a
    fact's details (the default, the flag, the exception) in the sentences right after the one that names it.
    On the tuning half, key terms in the answer: 0.26 with no neighbours, 0.32 with (1, -1), 0.40 with (1, -1, 2)."""
    neighbour_share: float = 0.4
    """A neighbour joins when it scores at least this share of the chosen sentence (0.3 the same, 0.5 fewer terms)."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A sentence of a source, with the code block it introduces, if any."""

    marker: int
    """1-based number of its source."""
    position: int
    """Its place in the source, from 0."""
    text: str
    code: tuple[str, ...] = ()

    def quoted(self) -> str:
        """The sentence as the answer shows it, marker before the final stop, code lines as inline spans."""
        body = self.text
        end = ""
        if not self.code and body[-1:] in ".!?":
            # All of a run of stops goes before the marker: "...have been updated.." left a sentence
            # ("...updated.") that ended before its marker.
            body, end = body.rstrip(".!?"), body[-1]
        elif not self.code:
            end = "."
        spans = " ".join(f"`{line}`" for line in self.code)
        if spans:
            # One sentence with its code, so the marker covers both: "... in that context: `kubectl ...` [1]."
            if body[-1:] in ".!?":
                body = body[:-1] + ":"
            return f"{body} {spans} [{self.marker}]."
        return f"{body} [{self.marker}]{end}"

    def embed_text(self) -> str:
        return " ".join([self.text, *self.code])


@dataclasses.dataclass(frozen=True)
class Scored:
    candidate: Candidate
    similarity: float
    score: float


@dataclasses.dataclass(frozen=True)
class Stitched:
    """The chosen sentences, in answer order, and what the choice was based on."""

    chosen: tuple[Scored, ...]
    best_similarity: float
    candidates: int
    embedded: bool
    """False when the embedder failed and only lexical overlap scored the sentences."""

    @property
    def declined(self) -> bool:
        return not self.chosen

    @property
    def markers(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(s.candidate.marker for s in self.chosen))

    def answer(self) -> str:
        return " ".join(s.candidate.quoted() for s in self.chosen)


_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_HEADING_RE = re.compile(r"^\s*#{1,6}\s")
_BULLET_RE = re.compile(r"^\s*(?:[-*+]|\d{1,2}[.)])\s+")
_TABLE_RULE_RE = re.compile(r"^\s*\|?\s*:?-{3,}")
_CODE_SPAN_RE = re.compile(r"`[^`\n]+`")
# A command, a flag, a dotted field path or a CamelCase field: what a how-to or config answer names.
_TECHNICAL_RE = re.compile(
    r"`[^`]+`|(?<![\w-])--[a-z][\w-]+|\b[a-z]+[A-Z]\w*\.\w+|\b[a-z]\w*\.[a-z]\w*\.[a-z]\w*\b"
    r"|\b(?:kubectl|kubeadm|etcdctl|crictl|helm|minikube|systemctl)\s+[a-z]"
)
_PLACEHOLDER = "\x00{}\x00"
_INLINE_BULLET_RE = re.compile(r"(?<=[.!?:;])\s+[-*\u2022]\s+(?=\S)")
_ANAPHORA_RE = re.compile(
    r"^(?:This|These|That|Those|It|They|Such|Then|However|Otherwise|In this case|In that case)\b"
    r"|.*\bthat (?:range|value|field|setting|option)\b"
)


def _split_prose(line: str) -> list[str]:
    """Sentences of a prose line; inline code spans are kept whole (a ``.`` inside one ends nothing)."""
    spans: list[str] = []

    def hide(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return _PLACEHOLDER.format(len(spans) - 1)

    hidden = _CODE_SPAN_RE.sub(hide, line)
    out = []
    # A list the parser flattened into one line ("Beside that: - Sub path mounts are not supported. - The
    # field ... has no effect.") is a sentence per item: quoted whole it read as three claims under one marker.
    items = _INLINE_BULLET_RE.split(hidden)
    for part in (sentence for item in items for sentence in sentences(item)):
        out.append(re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], part))
    return out


def _pick_code(lines: Sequence[str], question: str, limit: int) -> tuple[str, ...]:
    """Up to ``limit`` lines of a code block, in order: all of a short one, else those closest to the question."""
    kept = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if len(kept) <= limit:
        return tuple(kept)
    ranked = sorted(range(len(kept)), key=lambda i: (-term_overlap(question, kept[i]), i))[:limit]
    return tuple(kept[i] for i in sorted(ranked))


# The parser flattens a fenced block into its paragraph, language tag first: "... revision: shell kubectl rollout undo".
_LANGUAGES = "shell|bash|sh|console|yaml|json|none|text|powershell|cmd|ini|toml|go|python"
_FLAT_CODE_RE = re.compile(rf"^(?P<lead>.*?:)\s+(?:{_LANGUAGES})\s+(?P<code>\S.*)$")
_CODE_LINE_RE = re.compile(
    rf"^(?:(?:{_LANGUAGES})\s+)?(?:kubectl|kubeadm|etcdctl|crictl|helm|minikube|systemctl|sudo|curl|docker|"
    r"apiVersion:|kind:|spec:|metadata:)\b"
)


def _reads_as_prose(line: str) -> bool:
    """Whether a line that opens with a command word is a sentence about it, not the command.

    The parser drops a code span's backticks, so "`kubectl rollout undo daemonset` tells the
    server to start rolling back the DaemonSet." opens like a command line; a command does not
    end with a full stop after a sentence's worth of words.
    """
    return line[-1:] in ".!?" and len(words(line)) >= _PROSE_WORDS


#: Words from which a line that opens with a command word and ends with a stop reads as a sentence.
_PROSE_WORDS = 8


def _code_lines(code: str, question: str, limit: int) -> tuple[str, ...]:
    """A code block's lines worth quoting; a flattened block is cut at its commands where it has several."""
    code = re.sub(rf"^(?:{_LANGUAGES})\s+", "", code.strip())
    parts = [p.strip() for p in re.split(r"\s+(?=(?:kubectl|kubeadm|etcdctl|sudo)\s)", code) if p.strip()]
    return _pick_code(parts, question, limit)


def candidates(sources: Sequence[Source], question: str, params: StitchParams) -> list[Candidate]:
    """The quotable sentences of ``sources``, numbered by source, in order.

    A code block (fenced, flattened into its paragraph by the parser, or a line
    that is a command) is kept with the sentence before it when that sentence
    introduces it (the docs put a command right after the sentence that says
    what it does); a block that follows no sentence is not quoted, since a
    command alone answers nothing. Headings (short lines without a stop) are not sentences.
    """
    out: list[Candidate] = []

    def attach(marker: int, code: tuple[str, ...]) -> None:
        last = out[-1] if out and out[-1].marker == marker else None
        if last is not None and not last.code and code and sum(len(c) for c in code) <= params.max_sentence_chars:
            out[-1] = dataclasses.replace(last, code=code)

    for marker, source in enumerate(sources, start=1):
        position = 0
        fence: list[str] | None = None
        for raw in clean_source_text(source.text).split("\n"):
            if _FENCE_RE.match(raw):
                if fence is None:
                    fence = []
                    continue
                attach(marker, _pick_code(fence, question, params.max_code_lines))
                fence = None
                continue
            if fence is not None:
                fence.append(raw)
                continue
            line = raw.strip()
            if not line or _HEADING_RE.match(line) or _TABLE_RULE_RE.match(line) or line.startswith("|"):
                continue
            if _CODE_LINE_RE.match(line) and not _reads_as_prose(line):
                attach(marker, _code_lines(line, question, params.max_code_lines))
                continue
            line = _BULLET_RE.sub("", line)
            if line[-1:] not in ".!?:;)" and len(words(line)) < 10:
                continue
            flat = _FLAT_CODE_RE.match(line)
            prose, code = (flat.group("lead"), flat.group("code")) if flat else (line, "")
            for sentence in _split_prose(prose):
                if len(words(sentence)) < 4 and not _TECHNICAL_RE.search(sentence):
                    continue
                out.append(Candidate(marker, position, _cut(sentence, params.max_sentence_chars)))
                position += 1
            if code:
                attach(marker, _code_lines(code, question, params.max_code_lines))
    return out[: params.max_candidates]


def _cut(sentence: str, limit: int) -> str:
    if len(sentence) <= limit:
        return sentence
    # Never end inside a code span: cut before the span that the limit falls in.
    cut = shorten(sentence, limit)
    if cut.count("`") % 2:
        cut = cut[: cut.rfind("`")].rstrip() + "…"
    return cut


def technical(text: str) -> bool:
    """Whether ``text`` carries a command, a flag, a field path or a code span."""
    return _TECHNICAL_RE.search(text) is not None


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _same(a: Candidate, b: Candidate) -> float:
    """Share of the shorter sentence's terms the other holds."""
    ta, tb = set(content_terms(a.embed_text())), set(content_terms(b.embed_text()))
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / min(len(ta), len(tb))


async def stitch(question: str, sources: Sequence[Source], embedder: Embedder | None, params: StitchParams) -> Stitched:
    """The sentences of ``sources`` that answer ``question``, best first; none when the evidence holds no answer.

    ``embedder`` None scores by lexical overlap alone (the embedder failed):
    then the decline threshold applies to that overlap.
    """
    pool = candidates(sources, question, params)
    if not pool:
        return Stitched((), 0.0, 0, embedder is not None)
    vectors: list[list[float]] = []
    if embedder is not None:
        limit = await embedder.max_input_chars()
        # One call: the question and the sentences are short texts alike, and a second round trip costs TTFT.
        texts = [shorten(" ".join(question.split()), limit), *(shorten(c.embed_text(), limit) for c in pool)]
        vectors = await embedder.embed(texts, query=False)
    scored: list[Scored] = []
    for index, candidate in enumerate(pool):
        lexical = term_overlap(question, candidate.embed_text())
        similarity = _cosine(vectors[0], vectors[index + 1]) if vectors else lexical
        score = (
            similarity
            + params.lexical_weight * lexical
            + (params.code_weight if technical(candidate.embed_text()) else 0.0)
            + params.standing_weight / candidate.marker
        )
        scored.append(Scored(candidate, similarity, score))
    best_similarity = max(s.similarity for s in scored)
    if best_similarity < params.min_similarity:
        return Stitched((), best_similarity, len(pool), bool(vectors))
    ranked = sorted(range(len(scored)), key=lambda i: -scored[i].score)
    chosen: list[int] = []
    length = 0

    def duplicate(index: int) -> bool:
        return any(
            _same(pool[index], pool[j]) >= params.duplicate_similarity
            or (bool(vectors) and _cosine(vectors[index + 1], vectors[j + 1]) >= params.duplicate_similarity)
            for j in chosen
        )

    def fits(index: int) -> bool:
        return len(chosen) < params.max_sentences and length + len(pool[index].text) <= params.max_chars

    anchors = 0
    while anchors < params.max_passages:
        quoted = {pool[i].marker for i in chosen}
        eligible = [
            i
            for i in ranked
            if i not in chosen
            and (not chosen or (fits(i) and scored[i].score >= params.min_share_of_best * scored[chosen[0]].score))
            and not duplicate(i)
        ]
        if not eligible:
            break
        # A source not quoted yet is preferred for the next passage: the answer's facts often sit in two pages.
        standing = {
            i: scored[i].score - (params.repeat_source_penalty if pool[i].marker in quoted else 0.0) for i in eligible
        }
        # max keeps the first of equals, and ``eligible`` is in ranked order: ties go to the better-ranked sentence.
        index = max(eligible, key=standing.__getitem__)
        item = scored[index]
        chosen.append(index)
        anchors += 1
        length += len(item.candidate.text)
        # The facts an answer needs sit next to the sentence that matches the question best:
        # its neighbours in the same passage are taken when they are about the question too.
        for step in params.neighbour_steps:
            near = index + step
            if not 0 <= near < len(pool) or near in chosen:
                continue
            if pool[near].marker != pool[index].marker or abs(pool[near].position - pool[index].position) != abs(step):
                continue
            if scored[near].score < params.neighbour_share * item.score or not fits(near) or duplicate(near):
                continue
            chosen.append(near)
            length += len(pool[near].text)
    # A sentence that points back ("This means...", "that range") is quoted after the one it points to,
    # which joins it when it was not chosen, and moves in front of it when it was (as a neighbour).
    context: dict[int, int] = {}
    for index in chosen:
        before = index - 1
        if (
            _ANAPHORA_RE.match(pool[index].text)
            and before >= 0
            and pool[before].marker == pool[index].marker
            and pool[before].position == pool[index].position - 1
            and (before in chosen or length + len(pool[before].text) <= params.max_chars)
        ):
            context[index] = before
            if before not in chosen:
                length += len(pool[before].text)
    # The best sentence leads; the others follow in the order their sources give them, so steps stay in order.
    lead, rest = chosen[0], sorted(chosen[1:], key=lambda i: (pool[i].marker, pool[i].position))
    order: list[int] = []
    for i in (lead, *rest):
        for j in (context[i], i) if i in context else (i,):
            if j not in order:
                order.append(j)
    ordered = tuple(scored[i] for i in order)
    return Stitched(ordered, best_similarity, len(pool), bool(vectors))


def deltas(text: str, words_per_delta: int) -> list[str]:
    """``text`` as the token deltas it is streamed in: a few words each, code spans never cut."""
    pieces: list[str] = []
    size = max(1, words_per_delta)
    current: list[str] = []
    open_span = False
    for word in text.split(" "):
        current.append(word)
        open_span ^= word.count("`") % 2 == 1
        if len(current) >= size and not open_span:
            pieces.append(" ".join(current))
            current = []
    if current:
        pieces.append(" ".join(current))
    return [piece if i == 0 else " " + piece for i, piece in enumerate(pieces)]
