"""``ragmesh eval answers``: the scoring, on answers written here (no stack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.cli import eval_answers as ea

QUESTION = ea.AnswerQuestion(
    id="q1",
    question="How do I limit the CPU a container can use?",
    gold_paths=("tasks/configure-pod-container/assign-cpu-resource.md",),
    must_include=("resources.limits.cpu", "millicpu"),
    kind="howto",
)
CHUNK = (
    "To specify a CPU limit, include resources.limits.cpu in the container manifest. "
    "CPU is measured in CPU units; 500m means 500 millicpu."
)


def test_key_terms_are_found_case_insensitively() -> None:
    assert ea.terms_found("Set RESOURCES.LIMITS.CPU to 500m.", QUESTION.must_include) == ["resources.limits.cpu"]


def test_a_quoted_sentence_is_fully_supported_and_an_unrelated_one_is_not() -> None:
    quoted = "To specify a CPU limit, include resources.limits.cpu in the container manifest. [1]"
    assert ea.support(quoted, CHUNK) == 1.0
    unrelated = "A Deployment rolls out a new ReplicaSet and scales the old one down. [1]"
    assert ea.support(unrelated, CHUNK) < 0.3
    paraphrase = "Include resources.limits.cpu in the manifest to cap the container's CPU. [1]"
    assert ea.support(paraphrase, CHUNK) >= ea.SUPPORT_THRESHOLD


def test_sentences_and_their_markers() -> None:
    answer = "Set resources.limits.cpu [1]. It is in millicpu [1][2].\nNo source here."
    assert ea.cited_sentences(answer) == [
        ("Set resources.limits.cpu [1].", (1,)),
        ("It is in millicpu [1][2].", (1, 2)),
    ]
    assert len(ea.sentences(answer)) == 3


def test_an_abbreviation_inside_a_quoted_sentence_ends_no_sentence() -> None:
    answer = "Drain the node before maintenance (e.g. a kernel upgrade) [1]. Pods move, i.e. they are evicted [2]."
    assert ea.cited_sentences(answer) == [
        ("Drain the node before maintenance (e.g. a kernel upgrade) [1].", (1,)),
        ("Pods move, i.e. they are evicted [2].", (2,)),
    ]


def _row(
    answer: str, *, found: list[str], chunk_found: list[str], sources: list[str], declined: bool = False
) -> ea.Row:
    row = ea.Row(QUESTION, answer=answer, declined=declined, key_terms_found=found, chunk_terms_found=chunk_found)
    row.cited_sources = sources
    row.sentence_support = [1.0, 0.4]
    row.control_support = [0.1]
    row.ttft_ms = 120.0
    row.total_ms = 900.0
    return row


def test_the_summary_compares_answers_with_the_evidence_and_counts_declines() -> None:
    good = _row(
        "x",
        found=["resources.limits.cpu"],
        chunk_found=["resources.limits.cpu", "millicpu"],
        sources=["file:///docs/tasks/configure-pod-container/assign-cpu-resource.md"],
    )
    unanswerable = ea.Row(ea.AnswerQuestion("q2", "Helm history?", (), (), "unanswerable"), declined=True)
    failed = ea.Row(QUESTION, error="UNAVAILABLE: down")
    result = ea.report([good, unanswerable, failed], 0.6)
    summary = result["summary"]
    assert summary["key_terms_in_answers"] == 0.5 and summary["key_terms_in_top5_chunks"] == 1.0
    assert summary["answer_to_chunks_ratio"] == 0.5
    assert summary["gold_cited"] == 1.0
    assert summary["unanswerable_declined"] == "1/1" and summary["answerable_declined"] == "0/1"
    assert summary["cited_sentences"] == 2 and summary["cited_sentences_supported"] == 0.5
    assert summary["errors"] == 1 and summary["n"] == 3
    assert set(result["by_kind"]) == {"howto", "unanswerable"}
    assert [r["id"] for r in result["rows"]] == ["q1", "q2", "q1"]
    json.dumps(result)  # the report is plain JSON


def test_questions_load_from_jsonl_and_a_bad_line_names_its_number(tmp_path: Path) -> None:
    good = {"id": "a", "question": "Q?", "gold_paths": ["p.md"], "must_include": ["t"], "kind": "fact"}
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + '{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:3"):
        ea.load_questions(path)
    path.write_text(json.dumps(good) + "\n")
    assert ea.load_questions(path) == [ea.AnswerQuestion("a", "Q?", ("p.md",), ("t",), "fact")]


def test_percentiles() -> None:
    assert ea.percentile([], 50) == 0.0
    assert ea.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
