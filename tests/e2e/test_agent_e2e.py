"""The agent through the Envoy edge on the sample corpus: streamed cited answers, follow-ups, caches, tools.

Runs against the stack ``ragmesh up`` started. The samples are ingested for a
tenant of these tests (graph extraction skipped; unchanged files are skipped
on later runs), over gRPC and grpc-web as browsers and the CLI call it.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import httpx
import pytest

from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2 as pb
from ragmesh.agent.v1 import agent_service_pb2_grpc as pb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.bench.bench_agent import SAMPLE_QUESTIONS, ingest_samples, load_questions
from tests.support import grpcweb
from tests.support.auth import stack_bearer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TENANT = "e2e-agent"


def MD() -> tuple[tuple[str, str], ...]:
    """A fresh token of the agent tests' tenant (minted per call: the suite may outlive one)."""
    return stack_bearer(TENANT)


GC_QUESTION = "How often does the kubelet garbage-collect unused images and dead containers?"
REPO = Path(__file__).resolve().parents[2]


def _samples_indexed(settings: MeshSettings) -> bool:
    with grpc.insecure_channel(settings.edge_addr) as channel:
        stub = rpb_grpc.RetrievalServiceStub(channel)  # type: ignore[no-untyped-call]
        hits = stub.Search(rpb.SearchRequest(query=GC_QUESTION, top_k=5), metadata=MD(), timeout=60).hits
    return any("concepts/architecture/garbage-collection.md" in h.chunk.source_uri for h in hits)


@pytest.fixture(scope="module")
def corpus(settings: MeshSettings) -> MeshSettings:
    """The samples, ingested for this module's tenant (once: later runs find them indexed)."""
    if not _samples_indexed(settings):
        asyncio.run(ingest_samples(settings, TENANT))
    return settings


@pytest.fixture(scope="module")
def agent(corpus: MeshSettings) -> Iterator[pb_grpc.AgentServiceStub]:
    """AgentService through the edge."""
    with grpc.insecure_channel(corpus.edge_addr) as channel:
        yield pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def retrieval(corpus: MeshSettings) -> Iterator[rpb_grpc.RetrievalServiceStub]:
    """RetrievalService through the edge."""
    with grpc.insecure_channel(corpus.edge_addr) as channel:
        yield rpb_grpc.RetrievalServiceStub(channel)  # type: ignore[no-untyped-call]


def chat(agent: pb_grpc.AgentServiceStub, message: str, **kwargs: object) -> list[pb.StreamChatResponse]:
    request = pb.StreamChatRequest(message=message, **kwargs)  # type: ignore[arg-type]
    return list(agent.StreamChat(request, metadata=MD(), timeout=300))


def final_of(messages: Sequence[pb.StreamChatResponse]) -> pb.FinalAnswer:
    assert messages and messages[-1].WhichOneof("event") == "final"
    return messages[-1].final


def tokens(messages: Sequence[pb.StreamChatResponse]) -> list[str]:
    return [m.token.text for m in messages if m.WhichOneof("event") == "token"]


def test_a_cited_answer_streams_in_deltas_with_its_latency(
    agent: pb_grpc.AgentServiceStub, retrieval: rpb_grpc.RetrievalServiceStub
) -> None:
    messages = chat(agent, GC_QUESTION, options=pb.ChatOptions(bypass_cache=True))
    final = final_of(messages)
    assert len(tokens(messages)) >= 2, "the answer did not stream"
    assert "".join(tokens(messages)).strip() == final.answer
    assert final.answered_from_documents and final.citations
    for citation in final.citations:
        chunk = retrieval.GetChunk(rpb.GetChunkRequest(chunk_id=citation.chunk_id), metadata=MD(), timeout=10).chunk
        assert (chunk.doc_id, chunk.source_uri) == (citation.doc_id, citation.source_uri)
        assert citation.snippet
    assert any(c.source_uri.endswith("concepts/architecture/garbage-collection.md") for c in final.citations)
    latency = final.latency
    assert 0 < latency.time_to_first_token_ms <= latency.total_ms
    assert latency.retrieval_ms > 0 and latency.planning_ms >= 0
    steps = {(m.step.step, m.step.status) for m in messages if m.WhichOneof("event") == "step"}
    for step in (pb.STEP_REWRITE, pb.STEP_PLAN, pb.STEP_RETRIEVE, pb.STEP_RESPOND):
        assert (step, pb.STEP_STATUS_FINISHED) in steps


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9_.\-/]*[a-z0-9]|[a-z0-9]", text.lower())


def test_the_answer_quotes_a_source_sentence_under_its_citation(
    agent: pb_grpc.AgentServiceStub, retrieval: rpb_grpc.RetrievalServiceStub
) -> None:
    """The local profile's answer is made of the docs' own sentences, each with the marker of the chunk it is from."""
    question = "What does a Deployment do when you update its Pod template?"
    final = final_of(chat(agent, question, options=pb.ChatOptions(bypass_cache=True)))
    assert final.answered_from_documents, final.answer
    by_marker = {c.marker: c for c in final.citations}
    assert any(c.source_uri.endswith("concepts/workloads/controllers/deployment.md") for c in final.citations)
    quoted = []
    for sentence in re.split(r"(?<=[.!?])\s+", final.answer):
        markers = [int(m) for m in re.findall(r"\[(\d+)\]", sentence)]
        assert markers, f"a sentence without a source: {sentence!r}"
        assert all(m in by_marker for m in markers), (sentence, sorted(by_marker))
        chunk = retrieval.GetChunk(
            rpb.GetChunkRequest(chunk_id=by_marker[markers[0]].chunk_id), metadata=MD(), timeout=10
        ).chunk
        own = _words(re.sub(r"\[\d+\]", " ", sentence))
        source_words = set(_words(chunk.text))
        quoted.append(sum(w in source_words for w in own) / max(1, len(own)))
    # Quoted, not paraphrased: the cited chunk holds (nearly) every word of the sentence.
    assert max(quoted) >= 0.9, (final.answer, quoted)
    assert "template" in final.answer.lower()


def test_a_follow_up_with_a_pronoun_is_rewritten_from_the_history(agent: pb_grpc.AgentServiceStub) -> None:
    first = chat(agent, "What is a CronJob?")
    follow = chat(agent, "How many finished Jobs does it keep by default?", session_id=first[0].session_id)
    assert follow[0].session_id == first[0].session_id
    assert "CronJob" in final_of(follow).rewritten_query


def test_asking_again_hits_the_cache_and_a_reingest_makes_it_miss(
    agent: pb_grpc.AgentServiceStub, corpus: MeshSettings
) -> None:
    question = "Which namespaces does a new Kubernetes cluster start with?"
    first = final_of(chat(agent, question))
    assert first.answered_from_documents and first.citations, "an uncited answer is not cached"
    again = chat(agent, question)
    assert final_of(again).cache_hit == pb.CACHE_HIT_EXACT
    assert final_of(again).answer == first.answer and len(tokens(again)) >= 2

    # Any ingest change moves the corpus version on: upload a new small document.
    with grpc.insecure_channel(corpus.edge_addr) as channel:
        ingest = gpb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
        note = f"Release note {uuid.uuid4().hex}: the e2e suite touched the corpus.".encode()
        job = ingest.UploadDocuments(
            iter(
                [
                    gpb.UploadDocumentsRequest(
                        filename=f"e2e-note-{uuid.uuid4().hex[:8]}.txt",
                        data=note,
                        options=gpb.IngestOptions(skip_graph=True),
                    )
                ]
            ),
            metadata=MD(),
            timeout=60,
        ).job
        for event in ingest.StreamIngestJob(gpb.StreamIngestJobRequest(job_id=job.job_id), metadata=MD(), timeout=900):
            if event.type == gpb.INGEST_EVENT_TYPE_FINISHED:
                assert event.job.state == gpb.JOB_STATE_SUCCEEDED, event.job.failure
    assert final_of(chat(agent, question)).cache_hit == pb.CACHE_HIT_NONE


def test_an_out_of_corpus_question_is_declined(agent: pb_grpc.AgentServiceStub) -> None:
    unanswerable = [q for q in load_questions(SAMPLE_QUESTIONS) if q["kind"] == "unanswerable"]
    for item in unanswerable:
        final = final_of(chat(agent, item["question"], options=pb.ChatOptions(bypass_cache=True)))
        assert not final.answered_from_documents and not final.citations, item["question"]


def test_a_calculator_question_uses_the_tool(agent: pb_grpc.AgentServiceStub) -> None:
    messages = chat(agent, "What is 1,250 * 4 + 17?")
    calls = [m.tool_call for m in messages if m.WhichOneof("event") == "tool_call"]
    results = [m.tool_result for m in messages if m.WhichOneof("event") == "tool_result"]
    assert [c.tool for c in calls] == ["calculator"] and results[0].output == "5017"
    assert "5017" in final_of(messages).answer


def test_the_sample_questions_cite_their_gold_pages(agent: pb_grpc.AgentServiceStub) -> None:
    answerable = [q for q in load_questions(SAMPLE_QUESTIONS) if q["kind"] != "unanswerable"]
    cited_gold = []
    for item in answerable:
        final = final_of(chat(agent, item["question"], options=pb.ChatOptions(bypass_cache=True)))
        uris = [c.source_uri for c in final.citations]
        cited_gold.append(any(uri.endswith(gold) for uri in uris for gold in item["gold_paths"]))
    assert sum(cited_gold) >= 0.8 * len(answerable), cited_gold


def test_streamchat_over_grpc_web(corpus: MeshSettings) -> None:
    with httpx.Client() as client:
        reply = grpcweb.call(
            client,
            f"http://{corpus.edge_addr}",
            "/ragmesh.agent.v1.AgentService/StreamChat",
            pb.StreamChatRequest(message="What is 6 * 7?"),
            headers=dict(MD()),
            timeout_s=60,
        )
    assert reply.grpc_status == 0, reply.grpc_message
    events = [pb.StreamChatResponse.FromString(raw) for raw in reply.messages]
    assert events[-1].final.answer == "6 * 7 = 42"


def test_ragmesh_ask_json_prints_one_event_a_line(corpus: MeshSettings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "ask", GC_QUESTION, "--json", "--tenant", TENANT],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert sum(e["type"] == "token" for e in events) >= 2
    final = events[-1]
    assert final["type"] == "final" and final["answer"]
    assert final["citations"] and all({"source", "chunk_id"} <= set(c) for c in final["citations"])
    assert all("samples" in c["source"] for c in final["citations"])


def test_ragmesh_eval_answers_scores_the_sample_questions(corpus: MeshSettings, tmp_path: Path) -> None:
    """Three of the sample questions (two answerable, the unanswerable one), asked and scored through the edge."""
    rows = [json.loads(line) for line in (REPO / "samples" / "questions.jsonl").read_text().splitlines() if line]
    chosen = [rows[0], rows[6], next(r for r in rows if r["kind"] == "unanswerable")]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "mesh.cli", "eval", "answers", "--questions", str(questions)]
    done = subprocess.run(
        [*command, "--tenant", TENANT, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "terms/ans" in done.stdout and "unanswerable" in done.stdout
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["n"] == 3 and summary["errors"] == 0
    assert [r["id"] for r in report["rows"]] == [r["id"] for r in chosen]
    # The evidence holds key terms, answers cite pages of the samples, and the figures are in range.
    assert summary["key_terms_in_top5_chunks"] > 0
    assert 0 <= summary["key_terms_in_answers"] <= 1 and summary["gold_cited"] is not None
    assert summary["unanswerable_declined"].endswith("/1") and summary["answerable_declined"].endswith("/2")
    answered = [r for r in report["rows"] if not r["declined"]]
    assert answered and all(r["cited_sources"] for r in answered)
    assert all("samples" in source for r in answered for source in r["cited_sources"])
    assert all(r["ttft_ms"] is None or 0 < r["ttft_ms"] <= r["total_ms"] for r in report["rows"])
    # Every sentence of an answer is counted as cited (with its support score) or uncited.
    for row in answered:
        assert row["cited_sentences"] + row["uncited_sentences"] >= 1
        assert len(row["sentence_support"]) == row["cited_sentences"]
        assert all(0 <= s <= 1 for s in row["sentence_support"])
    assert set(report["by_kind"]) == {"fact", "unanswerable"}
