"""``ragmesh search`` and ``ragmesh eval retrieval``: query the index and measure its quality.

Both call RetrievalService.Search through the Envoy edge by default (``--addr``
to call a service directly) with --token (or a dev token for --tenant);
``search`` calls it with the SDK (``ragmesh_client``).

``eval retrieval`` reads questions in the format of the dev set (one JSON
object a line with ``question``, ``gold_paths`` and ``kind``). A result matches
a gold page when its document's source path ends with that gold path; a
question's recall@k is the fraction of its gold pages found in the top k
results; MRR@10 uses the rank of the first result from a gold page; questions
without gold pages are left out. The full pipeline (all legs, fused and
reranked) is scored as "hybrid", and each leg alone, in its own ranking
(no reranking), as "dense", "sparse" and "graph", all in the same run.
With ``--json`` the report also has one row per question: for each run, the
rank (1-based, within the depth searched) of each gold page's first result,
or null where the page was not found.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import ragmesh_client
from mesh.cli.common import add_connection_args, client, report_error, within_limits

T = TypeVar("T")
sdk_common = ragmesh_client.common
sdk_retrieval = ragmesh_client.retrieval

LEG_NAMES = {
    "dense": sdk_common.RetrievalLeg.DENSE,
    "sparse": sdk_common.RetrievalLeg.SPARSE,
    "graph": sdk_common.RetrievalLeg.GRAPH,
}

# The runs of one evaluation: name -> (legs, skip_rerank). Empty legs mean all of them.
EVAL_RUNS: dict[str, tuple[tuple[str, ...], bool]] = {
    "hybrid": ((), False),
    "dense": (("dense",), True),
    "sparse": (("sparse",), True),
    "graph": (("graph",), True),
}
MRR_DEPTH = 10


# -- scoring (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One evaluation question."""

    id: str
    question: str
    gold_paths: tuple[str, ...]
    kind: str


def question_rows(path: Path, build: Callable[[int, dict[str, Any]], T]) -> list[T]:
    """``build(line number, row)`` for each row of a JSONL question file; blank lines are skipped, a bad
    line names its number."""
    out: list[T] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(build(number, json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{number}: not a question: {exc}") from exc
    return out


def load_questions(path: Path) -> list[Question]:
    """The questions of a JSONL file (the dev_questions.jsonl format)."""
    return question_rows(
        path,
        lambda number, raw: Question(
            id=str(raw.get("id", number)),
            question=str(raw["question"]),
            gold_paths=tuple(str(p) for p in raw.get("gold_paths", [])),
            kind=str(raw.get("kind", "")),
        ),
    )


def source_path(source_uri: str) -> str:
    """The path of a source URI (``file:///a/b.md`` -> ``/a/b.md``; plain names stay as they are)."""
    parsed = urlparse(source_uri)
    return unquote(parsed.path) if parsed.scheme else source_uri


def matches(source_uri: str, gold_path: str) -> bool:
    """Whether a result's source is the gold page: its path ends with the gold path at a path boundary."""
    path = source_path(source_uri)
    gold = gold_path.lstrip("/")
    return path == gold or path.endswith("/" + gold)


def recall_at_k(sources: Sequence[str], gold_paths: Sequence[str], k: int) -> float:
    """Fraction of the gold pages found among the first ``k`` results."""
    top = sources[:k]
    found = sum(1 for gold in gold_paths if any(matches(s, gold) for s in top))
    return found / len(gold_paths)


def reciprocal_rank(sources: Sequence[str], gold_paths: Sequence[str], depth: int = MRR_DEPTH) -> float:
    """1 / rank of the first result from a gold page within ``depth``, else 0."""
    for rank, source in enumerate(sources[:depth], start=1):
        if any(matches(source, gold) for gold in gold_paths):
            return 1.0 / rank
    return 0.0


def gold_ranks(sources: Sequence[str], gold_paths: Sequence[str]) -> dict[str, int | None]:
    """Each gold page's best rank (1-based) among ``sources``, or None where it is absent."""
    return {
        gold: next((rank for rank, source in enumerate(sources, 1) if matches(source, gold)), None)
        for gold in gold_paths
    }


def summarize(rows: Iterable[tuple[float, float]]) -> dict[str, float | int]:
    """Mean recall and MRR over (recall, reciprocal rank) rows, with their count."""
    rows = list(rows)
    n = len(rows)
    return {
        "recall_at_k": round(sum(r for r, _ in rows) / n, 4) if n else 0.0,
        "mrr_at_10": round(sum(m for _, m in rows) / n, 4) if n else 0.0,
        "n": n,
    }


def score_run(
    questions: Sequence[Question], sources_by_question: dict[str, Sequence[str]], k: int
) -> list[tuple[float, float]]:
    """(recall@k, reciprocal rank) per question that has gold pages."""
    return [
        (
            recall_at_k(sources_by_question[q.id], q.gold_paths, k),
            reciprocal_rank(sources_by_question[q.id], q.gold_paths),
        )
        for q in questions
        if q.gold_paths
    ]


def report(questions: Sequence[Question], results: dict[str, dict[str, Sequence[str]]], k: int) -> dict[str, Any]:
    """The evaluation report: one summary per run, and per question kind."""
    scored = [q for q in questions if q.gold_paths]
    out: dict[str, Any] = {name: summarize(score_run(scored, results[name], k)) for name in results}
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({q.kind for q in scored}):
        subset = [q for q in scored if q.kind == kind]
        by_kind[kind] = {name: summarize(score_run(subset, results[name], k)) for name in results}
    out["by_kind"] = by_kind
    out["k"] = k
    out["skipped_without_gold"] = len(questions) - len(scored)
    out["questions"] = [
        {
            "id": q.id,
            "kind": q.kind,
            "gold_ranks": {name: gold_ranks(results[name][q.id], q.gold_paths) for name in results},
        }
        for q in scored
    ]
    return out


# -- commands ---------------------------------------------------------------


def _search_request(args: argparse.Namespace) -> sdk_retrieval.SearchRequest:
    legs = [LEG_NAMES[name] for name in args.legs.split(",") if name] if args.legs else []
    flt = sdk_retrieval.SearchFilter(source_prefix=args.source_prefix or "", document_types=args.doc_type or [])
    return sdk_retrieval.SearchRequest(
        query=args.query, top_k=args.top_k, legs=legs, filter=flt, skip_rerank=args.no_rerank
    )


def _leg_label(leg: int) -> str:
    """ "dense", "sparse", "graph" (the number of a leg this CLI does not know)."""
    try:
        return sdk_common.RetrievalLeg(leg).name.lower()
    except ValueError:
        return str(int(leg))


def _hit_json(hit: sdk_retrieval.SearchHit) -> dict[str, Any]:
    chunk = hit.chunk or sdk_common.Chunk()
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "source_uri": chunk.source_uri,
        "title": chunk.title,
        "section": chunk.section,
        "chunk_index": chunk.chunk_index,
        "fused_score": hit.fused_score,
        "rerank_score": hit.rerank_score,
        "legs": {_leg_label(s.leg): {"rank": s.rank, "score": s.score} for s in hit.leg_scores},
        "text": chunk.text,
    }


def _print_hits(response: sdk_retrieval.SearchResponse) -> None:
    for rank, hit in enumerate(response.hits, start=1):
        chunk = hit.chunk or sdk_common.Chunk()
        legs = " ".join(f"{_leg_label(s.leg)}#{s.rank}" for s in hit.leg_scores)
        rerank = f" rerank={hit.rerank_score:.3f}" if hit.rerank_score is not None else ""
        print(f"{rank:>2}. {chunk.title or chunk.doc_id}" + (f" > {chunk.section}" if chunk.section else ""))
        print(f"    {chunk.source_uri}  fused={hit.fused_score:.4f}{rerank}  [{legs}]")
        snippet = " ".join(chunk.text.split())
        print(f"    {snippet[:200]}{'...' if len(snippet) > 200 else ''}")
    if response.degraded_legs:
        names = ", ".join(_leg_label(leg) for leg in response.degraded_legs)
        print(f"degraded legs: {names}", file=sys.stderr)
    t = response.timings or sdk_retrieval.SearchTimings()
    print(
        f"{len(response.hits)} hits in {t.total_ms:.1f} ms (embed {t.embed_ms:.1f}, vector {t.vector_ms:.1f}, "
        f"graph {t.graph_ms:.1f}, rerank {t.rerank_ms:.1f}); corpus version {response.corpus_version}",
        file=sys.stderr,
    )


async def _search(args: argparse.Namespace) -> int:
    request = _search_request(args)
    async with client(args) as sdk:
        try:
            response = await sdk.search(
                request.query,
                top_k=request.top_k,
                legs=request.legs,
                skip_rerank=request.skip_rerank,
                filter=request.filter,
                timeout_s=args.timeout,
            )
        except ragmesh_client.RagmeshError as err:
            return report_error(err, as_json=args.json)
    if args.json:
        t = response.timings or sdk_retrieval.SearchTimings()
        doc = {
            "hits": [_hit_json(h) for h in response.hits],
            "degraded_legs": [_leg_label(leg) for leg in response.degraded_legs],
            "corpus_version": response.corpus_version,
            "timings_ms": {
                "embed": t.embed_ms,
                "vector": t.vector_ms,
                "graph": t.graph_ms,
                "rerank": t.rerank_ms,
                "total": t.total_ms,
            },
        }
        print(json.dumps(doc, indent=2))
    else:
        _print_hits(response)
    return 0


async def _eval(args: argparse.Namespace) -> int:
    try:
        questions = load_questions(Path(args.questions))
    except (OSError, ValueError) as exc:
        print(f"ragmesh eval retrieval: {exc}", file=sys.stderr)
        return 2
    if args.k < 1:
        print("ragmesh eval retrieval: --k must be at least 1", file=sys.stderr)
        return 2
    depth = min(50, max(args.k, MRR_DEPTH))
    scored = [q for q in questions if q.gold_paths]
    results: dict[str, dict[str, Sequence[str]]] = {name: {} for name in EVAL_RUNS}
    degraded: dict[str, int] = dict.fromkeys(EVAL_RUNS, 0)
    limit = asyncio.Semaphore(args.concurrency)
    async with client(args) as sdk:

        async def run(name: str, question: Question) -> None:
            legs, skip_rerank = EVAL_RUNS[name]
            async with limit:
                response = await within_limits(
                    lambda: sdk.search(
                        question.question, top_k=depth, legs=legs, skip_rerank=skip_rerank, timeout_s=args.timeout
                    )
                )
            results[name][question.id] = [h.chunk.source_uri if h.chunk else "" for h in response.hits]
            degraded[name] += bool(response.degraded_legs)

        try:
            await asyncio.gather(*(run(name, q) for name in EVAL_RUNS for q in scored))
        except ragmesh_client.RagmeshError as err:
            return report_error(err, as_json=args.json)
    summary = report(questions, results, args.k)
    # Searches that ran with a leg missing: their scores do not measure the full pipeline.
    summary["degraded_searches"] = degraded
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{'run':<8} {'recall@' + str(args.k):>10} {'MRR@10':>8} {'n':>4}")
        for name in EVAL_RUNS:
            row = summary[name]
            print(f"{name:<8} {row['recall_at_k']:>10.3f} {row['mrr_at_10']:>8.3f} {row['n']:>4}")
        if any(degraded.values()):
            print(f"searches with a degraded leg: {degraded}", file=sys.stderr)
        for kind, runs in summary["by_kind"].items():
            row = runs["hybrid"]
            print(
                f"  hybrid/{kind:<10} recall@{args.k} {row['recall_at_k']:.3f}  "
                f"MRR@10 {row['mrr_at_10']:.3f}  n={row['n']}"
            )
    return 0


def _subparsers_of(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def eval_group(subparsers: Any) -> Any:
    """The sub-commands of ``ragmesh eval``, created here unless another module made the group first."""
    existing = subparsers.choices.get("eval")
    if existing is not None:
        group = _subparsers_of(existing)
        if group is not None:
            return group
    parser = subparsers.add_parser("eval", help="measure quality against a question set")
    group = parser.add_subparsers(dest="eval_command", metavar="WHAT")
    group.required = True
    return group


def register(subparsers: Any) -> None:
    """Adds ``search`` and ``eval retrieval``."""
    search = subparsers.add_parser("search", help="hybrid search over the index (RetrievalService.Search)")
    search.add_argument("query", help="what to search for")
    search.add_argument("--top-k", type=int, default=10, help="results to return, 1 to 50 (default 10)")
    search.add_argument("--legs", default="", help="comma-separated legs: dense,sparse,graph (default: all)")
    search.add_argument("--no-rerank", action="store_true", help="keep the fused order (skip reranking)")
    search.add_argument("--source-prefix", default="", help="only documents whose source URI starts with this")
    search.add_argument("--doc-type", action="append", help="only this document type (repeatable)")
    search.add_argument("--json", action="store_true", help="print the response as JSON")
    search.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds (default 30)")
    add_connection_args(search)
    search.set_defaults(func=lambda args: asyncio.run(_search(args)))

    retrieval = eval_group(subparsers).add_parser(
        "retrieval", help="recall@k and MRR@10 of every leg and of hybrid search on a question set"
    )
    retrieval.add_argument("--questions", required=True, help="JSONL questions (the dev_questions.jsonl format)")
    retrieval.add_argument("--k", type=int, default=5, help="k of recall@k (default 5)")
    retrieval.add_argument("--json", action="store_true", help="print the report as JSON")
    retrieval.add_argument("--concurrency", type=int, default=4, help="searches in flight at once (default 4)")
    retrieval.add_argument("--timeout", type=float, default=60.0, help="deadline per search in seconds (default 60)")
    add_connection_args(retrieval)
    retrieval.set_defaults(func=lambda args: asyncio.run(_eval(args)))
