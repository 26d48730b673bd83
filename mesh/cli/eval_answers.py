"""``ragmesh eval answers``: what a user reads, scored against a question set.

Each question is asked through the edge with the answer caches bypassed, as a
user would ask it, and the answer is scored:

- **key terms**: the share of the question's ``must_include`` terms found in the
  answer (case-insensitive), next to the share found in the full text of the top 5
  chunks a Search for the same question returns: the answer cannot hold more than
  retrieval gave it, so the ratio says how much of the evidence reached the reader.
- **gold page cited**: a citation's source is one of the question's gold pages.
- **declined**: the agent said the documents do not hold the answer (the final
  event's ``answered_from_documents`` is false); right for ``unanswerable``
  questions, a miss for the others.
- **supported**: every answer sentence that carries a ``[n]`` marker is compared
  with the full text of the chunks it cites (GetChunk). Support is lexical
  containment: the share of the sentence's content words (lower-cased, stop words
  and markers dropped) that occur in the cited chunk. A sentence quoted from the
  chunk scores 1.0; a faithful paraphrase keeps its names, numbers and field names
  and scores well above half. The default threshold, 0.6, sits between those and
  what an unrelated chunk gives: each run also reports the *control*, the same score
  of each cited sentence against a retrieved chunk it does not cite, so a run shows
  the margin it was judged with.
- **TTFT** (first answer token as the client saw it) and total time.

``--json`` prints per-question rows and a summary overall and by kind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ragmesh_client
from mesh.cli.common import add_connection_args, client, report_error, within_limits
from mesh.cli.retrieval_cmds import eval_group, matches, question_rows

#: Chunks of the Search whose text bounds what an answer could contain.
EVIDENCE_TOP_K = 5
#: Default share of a cited sentence's content words its cited chunk must hold.
SUPPORT_THRESHOLD = 0.6

_MARKER = re.compile(r"\[(\d+)\]")
# "e.g." and "i.e." end no sentence: a quoted docs sentence holding one is one claim under one marker.
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<!\bcf\.)\s+(?=\S)")
_WORD = re.compile(r"[a-z0-9][a-z0-9_.\-/]*[a-z0-9]|[a-z0-9]")
_STOP_TEXT = """
a an the and or but if then else of to in on at by for with from as is are was were be been being
it its this that these those there here which who whom whose what when where why how not no nor so
than too very can will would should could may might must do does did done has have had having i you
he she we they them their our your his her my me us also into onto over under about after before
between through during each other some such only own same both all any more most few just up down
out off again further once
"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True)
class AnswerQuestion:
    """One question of the set, with what a correct answer must contain."""

    id: str
    question: str
    gold_paths: tuple[str, ...]
    must_include: tuple[str, ...]
    kind: str

    @property
    def unanswerable(self) -> bool:
        return self.kind == "unanswerable"


def load_questions(path: Path) -> list[AnswerQuestion]:
    """The questions of a JSONL file (the dev_questions.jsonl format); a bad line names its number."""
    return question_rows(
        path,
        lambda number, raw: AnswerQuestion(
            id=str(raw.get("id", number)),
            question=str(raw["question"]),
            gold_paths=tuple(str(p) for p in raw.get("gold_paths", [])),
            must_include=tuple(str(t) for t in raw.get("must_include", [])),
            kind=str(raw.get("kind", "")),
        ),
    )


# -- scoring (pure) ---------------------------------------------------------


def terms_found(text: str, terms: Sequence[str]) -> list[str]:
    """The terms that occur in ``text``, case-insensitively."""
    lowered = text.lower()
    return [t for t in terms if t.lower() in lowered]


def content_words(text: str) -> set[str]:
    """The words of ``text`` that carry content: lower-cased, markers and stop words dropped."""
    return {w for w in _WORD.findall(_MARKER.sub(" ", text).lower()) if w not in _STOP_WORDS}


def support(sentence: str, chunk_text: str) -> float:
    """Share of the sentence's content words that occur in the chunk (1.0 for a sentence with none)."""
    words = content_words(sentence)
    if not words:
        return 1.0
    chunk = content_words(chunk_text)
    # A word of the chunk may carry punctuation the sentence's does not (``limits.cpu,``): match on the bare word too.
    chunk |= {w.strip(".-/_") for w in chunk}
    return len({w for w in words if w in chunk or w.strip(".-/_") in chunk}) / len(words)


def sentences(answer: str) -> list[str]:
    """The answer's sentences (split after . ! ? and a space, not after e.g. / i.e. / vs. / cf.; at line breaks too)."""
    out: list[str] = []
    for line in answer.splitlines():
        out += [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]
    return out


def cited_sentences(answer: str) -> list[tuple[str, tuple[int, ...]]]:
    """(sentence, the markers it carries) for each sentence with at least one ``[n]``."""
    out = []
    for sentence in sentences(answer):
        markers = tuple(sorted({int(m) for m in _MARKER.findall(sentence)}))
        if markers:
            out.append((sentence, markers))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Row:
    """One question's outcome."""

    question: AnswerQuestion
    answer: str = ""
    declined: bool = False
    key_terms_found: list[str] = field(default_factory=list)
    chunk_terms_found: list[str] = field(default_factory=list)
    cited_sources: list[str] = field(default_factory=list)
    sentence_support: list[float] = field(default_factory=list)
    control_support: list[float] = field(default_factory=list)
    uncited_sentences: int = 0
    ttft_ms: float | None = None
    total_ms: float = 0.0
    error: str = ""

    def gold_cited(self) -> bool | None:
        """Whether a gold page is among the citations (None when the question has no gold page)."""
        if not self.question.gold_paths:
            return None
        return any(matches(s, g) for s in self.cited_sources for g in self.question.gold_paths)

    def as_json(self, threshold: float) -> dict[str, Any]:
        q = self.question
        return {
            "id": q.id,
            "kind": q.kind,
            "question": q.question,
            "answer": self.answer,
            "error": self.error,
            "declined": self.declined,
            "key_terms": {"found": self.key_terms_found, "total": len(q.must_include)},
            "chunk_key_terms": {"found": self.chunk_terms_found, "total": len(q.must_include)},
            "gold_cited": self.gold_cited(),
            "cited_sources": self.cited_sources,
            "cited_sentences": len(self.sentence_support),
            "supported_sentences": sum(s >= threshold for s in self.sentence_support),
            "sentence_support": [round(s, 3) for s in self.sentence_support],
            "uncited_sentences": self.uncited_sentences,
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 1),
            "total_ms": round(self.total_ms, 1),
        }


def summarize(rows: Sequence[Row], threshold: float) -> dict[str, Any]:
    """The figures of a set of rows (all questions, or one kind)."""
    ok = [r for r in rows if not r.error]
    answerable = [r for r in ok if not r.question.unanswerable]
    unanswerable = [r for r in ok if r.question.unanswerable]
    terms_total = sum(len(r.question.must_include) for r in answerable)
    in_answers = sum(len(r.key_terms_found) for r in answerable)
    in_chunks = sum(len(r.chunk_terms_found) for r in answerable)
    with_gold = [r for r in ok if r.question.gold_paths]
    support_all = [s for r in ok for s in r.sentence_support]
    control_all = [s for r in ok for s in r.control_support]
    ttfts = [r.ttft_ms for r in ok if r.ttft_ms is not None]
    return {
        "n": len(rows),
        "errors": len(rows) - len(ok),
        "key_terms_in_answers": round(in_answers / terms_total, 4) if terms_total else None,
        "key_terms_in_top5_chunks": round(in_chunks / terms_total, 4) if terms_total else None,
        "answer_to_chunks_ratio": round(in_answers / in_chunks, 4) if in_chunks else None,
        "gold_cited": round(sum(bool(r.gold_cited()) for r in with_gold) / len(with_gold), 4) if with_gold else None,
        "unanswerable_declined": f"{sum(r.declined for r in unanswerable)}/{len(unanswerable)}",
        "answerable_declined": f"{sum(r.declined for r in answerable)}/{len(answerable)}",
        "cited_sentences": len(support_all),
        "cited_sentences_supported": (
            round(sum(s >= threshold for s in support_all) / len(support_all), 4) if support_all else None
        ),
        "support_median": round(statistics.median(support_all), 3) if support_all else None,
        "control_support_median": round(statistics.median(control_all), 3) if control_all else None,
        "uncited_sentences": sum(r.uncited_sentences for r in ok if not r.declined),
        "ttft_p50_ms": round(percentile(ttfts, 50), 1),
        "ttft_p90_ms": round(percentile(ttfts, 90), 1),
        "total_p50_ms": round(percentile([r.total_ms for r in ok], 50), 1),
    }


def report(rows: Sequence[Row], threshold: float) -> dict[str, Any]:
    """Per-question rows and the summary overall and by kind."""
    kinds = sorted({r.question.kind for r in rows})
    return {
        "support_threshold": threshold,
        "evidence_top_k": EVIDENCE_TOP_K,
        "summary": summarize(rows, threshold),
        "by_kind": {kind: summarize([r for r in rows if r.question.kind == kind], threshold) for kind in kinds},
        "rows": [r.as_json(threshold) for r in rows],
    }


# -- running ----------------------------------------------------------------


async def _ask(sdk: ragmesh_client.AsyncClient, row: Row, timeout_s: float) -> ragmesh_client.events.Final | None:
    started = time.perf_counter()
    final = None
    first_token: float | None = None
    async for event in sdk.ask(row.question.question, bypass_cache=True, timeout_s=timeout_s):
        if isinstance(event, ragmesh_client.events.Token) and first_token is None:
            first_token = time.perf_counter()
        elif isinstance(event, ragmesh_client.events.Final):
            final = event
    row.total_ms = (time.perf_counter() - started) * 1000
    row.ttft_ms = None if first_token is None else (first_token - started) * 1000
    return final


async def _chunk(sdk: ragmesh_client.AsyncClient, chunk_id: str, timeout_s: float) -> ragmesh_client.common.Chunk:
    return await within_limits(lambda: sdk.get_chunk(chunk_id, timeout_s=timeout_s))


async def score_question(
    sdk: ragmesh_client.AsyncClient, question: AnswerQuestion, timeout_s: float, chunks: dict[str, str]
) -> Row:
    """Asks one question and scores its answer; ``chunks`` caches chunk texts by id across questions."""
    row = Row(question)
    final = await within_limits(lambda: _ask(sdk, row, timeout_s))
    if final is None:
        row.error = "the stream ended without a final answer"
        return row
    row.answer = final.answer
    row.declined = not final.answered_from_documents
    row.key_terms_found = terms_found(final.answer, question.must_include)
    row.cited_sources = sorted({c.source_uri for c in final.citations})
    evidence = await within_limits(lambda: sdk.search(question.question, top_k=EVIDENCE_TOP_K, timeout_s=timeout_s))
    top = [h.chunk for h in evidence.hits if h.chunk is not None]
    row.chunk_terms_found = terms_found("\n".join(c.text for c in top), question.must_include)
    by_marker: dict[int, str] = {}
    for citation in final.citations:
        if citation.chunk_id not in chunks:
            chunks[citation.chunk_id] = (await _chunk(sdk, citation.chunk_id, timeout_s)).text
        by_marker[citation.marker] = chunks[citation.chunk_id]
    cited_ids = {c.chunk_id for c in final.citations}
    control = next((c.text for c in reversed(top) if c.chunk_id not in cited_ids), "")
    cited = cited_sentences(final.answer)
    for sentence, markers in cited:
        texts = [by_marker[m] for m in markers if m in by_marker]
        row.sentence_support.append(max((support(sentence, t) for t in texts), default=0.0))
        if control:
            row.control_support.append(support(sentence, control))
    row.uncited_sentences = len(sentences(final.answer)) - len(cited)
    return row


def _print_table(result: dict[str, Any]) -> None:
    columns = (
        ("key_terms_in_answers", "terms/ans"),
        ("key_terms_in_top5_chunks", "terms/top5"),
        ("answer_to_chunks_ratio", "ratio"),
        ("gold_cited", "gold"),
        ("unanswerable_declined", "declined"),
        ("cited_sentences_supported", "supported"),
        ("ttft_p50_ms", "ttft p50"),
        ("total_p50_ms", "total p50"),
    )
    print(f"{'kind':<14} {'n':>3} " + " ".join(f"{label:>10}" for _, label in columns))
    for name, figures in (("all", result["summary"]), *result["by_kind"].items()):
        cells = []
        for key, _ in columns:
            value = figures[key]
            cells.append(f"{'-' if value is None else value:>10}")
        print(f"{name:<14} {figures['n']:>3} " + " ".join(cells))
    s = result["summary"]
    print(
        f"support: median {s['support_median']} of cited sentences vs {s['control_support_median']} against an "
        f"uncited retrieved chunk (threshold {result['support_threshold']}); errors {s['errors']}",
        file=sys.stderr,
    )


async def _eval(args: argparse.Namespace) -> int:
    try:
        questions = load_questions(Path(args.questions))
    except (OSError, ValueError) as exc:
        print(f"ragmesh eval answers: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.support_threshold <= 1:
        print("ragmesh eval answers: --support-threshold must be in (0, 1]", file=sys.stderr)
        return 2
    rows: list[Row] = []
    chunks: dict[str, str] = {}
    async with client(args) as sdk:
        for number, question in enumerate(questions, start=1):
            try:
                rows.append(await score_question(sdk, question, args.timeout, chunks))
            except ragmesh_client.Unauthenticated as err:
                return report_error(err, as_json=args.json)
            except ragmesh_client.RagmeshError as err:
                rows.append(Row(question, error=f"{err.code.name}: {err.message}"))
            if not args.json:
                print(f"[{number}/{len(questions)}] {question.id}", file=sys.stderr)
    args.result = report(rows, args.support_threshold)
    return 0


def _run(args: argparse.Namespace) -> int:
    code = asyncio.run(_eval(args))
    result = getattr(args, "result", None)
    if code or result is None:
        return code
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


def register(subparsers: Any) -> None:
    """Adds ``eval answers`` (to the ``eval`` group ``eval retrieval`` shares)."""
    parser = eval_group(subparsers).add_parser(
        "answers", help="ask each question through the edge and score the answer a user reads"
    )
    parser.add_argument("--questions", required=True, help="JSONL questions (the dev_questions.jsonl format)")
    parser.add_argument("--json", action="store_true", help="print the report (rows and summaries) as JSON")
    parser.add_argument("--out", default="", help="also write the JSON report to this file")
    parser.add_argument(
        "--support-threshold",
        type=float,
        default=SUPPORT_THRESHOLD,
        help=f"share of a cited sentence's content words its chunk must hold (default {SUPPORT_THRESHOLD})",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="deadline per call in seconds (default 300)")
    add_connection_args(parser)
    parser.set_defaults(func=_run)
