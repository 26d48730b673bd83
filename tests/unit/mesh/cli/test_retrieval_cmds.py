"""``ragmesh search`` / ``ragmesh eval retrieval``: argument parsing and the scoring rules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import ragmesh_client
from mesh.cli import retrieval_cmds as rc
from mesh.cli.common import within_limits


def test_a_gold_page_matches_at_a_path_boundary() -> None:
    uri = "file:///work/shared/corpus/k8s-docs/concepts/storage/volumes.md"
    assert rc.matches(uri, "concepts/storage/volumes.md")
    assert rc.matches(uri, "storage/volumes.md")
    assert not rc.matches(uri, "s/volumes.md")
    assert not rc.matches(uri, "concepts/storage/persistent-volumes.md")
    assert rc.matches("file:///a/b%20c.md", "b c.md")
    assert rc.matches("s3://bucket/docs/x.md", "docs/x.md")
    assert rc.matches("docs/x.md", "docs/x.md")


def test_recall_counts_distinct_gold_pages_in_the_top_k() -> None:
    sources = ["file:///d/a.md", "file:///d/a.md", "file:///d/x.md", "file:///d/b.md"]
    assert rc.recall_at_k(sources, ["a.md", "b.md"], k=3) == 0.5
    assert rc.recall_at_k(sources, ["a.md", "b.md"], k=4) == 1.0
    assert rc.recall_at_k([], ["a.md"], k=5) == 0.0


def test_reciprocal_rank_uses_the_first_gold_hit_within_ten() -> None:
    assert rc.reciprocal_rank(["file:///x.md", "file:///a.md"], ["a.md"]) == 0.5
    assert rc.reciprocal_rank(["file:///x.md"] * 10 + ["file:///a.md"], ["a.md"]) == 0.0


def test_report_leaves_out_questions_without_gold_and_groups_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": "q1", "question": "one?", "gold_paths": ["a.md"], "kind": "fact"},
        {"id": "q2", "question": "two?", "gold_paths": ["b.md", "c.md"], "kind": "compare"},
        {"id": "q3", "question": "three?", "gold_paths": [], "kind": "unanswerable"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    questions = rc.load_questions(path)
    results = {
        "hybrid": {"q1": ["file:///a.md"], "q2": ["file:///x.md", "file:///b.md"]},
        "dense": {"q1": ["file:///x.md"], "q2": ["file:///c.md"]},
    }
    out = rc.report(questions, results, k=5)
    assert out["hybrid"] == {"recall_at_k": 0.75, "mrr_at_10": 0.75, "n": 2}
    assert out["dense"] == {"recall_at_k": 0.25, "mrr_at_10": 0.5, "n": 2}
    assert out["by_kind"]["fact"]["hybrid"]["n"] == 1
    assert "unanswerable" not in out["by_kind"]
    assert out["skipped_without_gold"] == 1
    assert out["questions"] == [
        {"id": "q1", "kind": "fact", "gold_ranks": {"hybrid": {"a.md": 1}, "dense": {"a.md": None}}},
        {
            "id": "q2",
            "kind": "compare",
            "gold_ranks": {"hybrid": {"b.md": 2, "c.md": None}, "dense": {"b.md": None, "c.md": 1}},
        },
    ]


def test_a_malformed_question_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok", "gold_paths": []}\n{"nope": 1}\n')
    with pytest.raises(ValueError, match=":2:"):
        rc.load_questions(path)


def test_commands_register_and_parse() -> None:
    parser = argparse.ArgumentParser(prog="ragmesh")
    sub = parser.add_subparsers(dest="command")
    rc.register(sub)
    args = parser.parse_args(["search", "how do taints work", "--top-k", "5", "--json", "--tenant", "acme"])
    assert (args.query, args.top_k, args.json, args.tenant, args.addr) == ("how do taints work", 5, True, "acme", None)
    request = rc._search_request(args)
    assert request.top_k == 5 and list(request.legs) == [] and not request.skip_rerank
    legs = parser.parse_args(["search", "q", "--legs", "dense,graph", "--no-rerank", "--addr", "127.0.0.1:50052"])
    assert list(rc._search_request(legs).legs) == [rc.LEG_NAMES["dense"], rc.LEG_NAMES["graph"]]
    evaluation = parser.parse_args(["eval", "retrieval", "--questions", "q.jsonl", "--k", "3"])
    assert (evaluation.questions, evaluation.k, evaluation.json) == ("q.jsonl", 3, False)


def test_eval_group_is_shared_with_other_modules() -> None:
    parser = argparse.ArgumentParser(prog="ragmesh")
    sub = parser.add_subparsers(dest="command")
    other = sub.add_parser("eval").add_subparsers(dest="eval_command")
    other.add_parser("answers")
    rc.register(sub)
    assert parser.parse_args(["eval", "retrieval", "--questions", "q.jsonl"]).questions == "q.jsonl"
    assert parser.parse_args(["eval", "answers"]).eval_command == "answers"


async def test_a_call_over_the_tenants_limit_waits_out_the_hint_and_a_refusal_without_one_is_reported() -> None:
    calls: list[int] = []

    async def refused_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ragmesh_client.ResourceExhausted("tenant eval is over its rate limit; retry in 0 s")
        return "hits"

    assert await within_limits(refused_once) == "hits"
    assert len(calls) == 2

    async def at_capacity() -> str:
        raise ragmesh_client.ResourceExhausted("the model is at capacity")

    with pytest.raises(ragmesh_client.ResourceExhausted):
        await within_limits(at_capacity)

    async def always_limited() -> str:
        raise ragmesh_client.ResourceExhausted("over its rate limit; retry in 0 s")

    with pytest.raises(ragmesh_client.ResourceExhausted):
        await within_limits(always_limited, max_waits=2)
