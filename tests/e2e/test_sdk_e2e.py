"""The Python SDK (ragmesh_client) through the Envoy edge against the running stack.

Both clients run here: ``AsyncClient`` (betterproto2 over grpclib) for the
streaming calls and ``Client`` (betterproto2 over grpcio) for the unary ones,
with tokens minted from the stack's own key (a token hook, as applications use
one). A small corpus of the SDK tests' own is ingested for their tenant first
(tests/support/sdk_corpus.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import ragmesh_client
from mesh.settings import MeshSettings
from ragmesh_client import events
from tests.support.sdk_corpus import DOCS, Corpus, token

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTION = "How many replicas does each Quillfeather rollout wave replace?"


@pytest.fixture(scope="module")
def ingested(sdk_corpus: Corpus) -> list[ragmesh_client.ingest.StreamIngestJobResponse]:
    """The SDK tests' corpus, ingested through the SDK; the job's progress events, in order."""
    return sdk_corpus.events


@pytest.fixture
def client(settings: MeshSettings) -> Iterator[ragmesh_client.Client]:
    with ragmesh_client.Client(settings.edge_addr, token) as c:
        yield c


def test_ingest_follows_the_job_with_progress_events_to_its_end(
    ingested: list[ragmesh_client.ingest.StreamIngestJobResponse],
) -> None:
    kinds = [event.type for event in ingested]
    assert kinds[-1] is ragmesh_client.ingest.IngestEventType.FINISHED
    assert ragmesh_client.ingest.IngestEventType.PROGRESS in kinds[:-1], kinds
    assert ragmesh_client.ingest.IngestEventType.FILE_FAILED not in kinds
    processed = [event.job.counts.files_processed for event in ingested]
    assert processed == sorted(processed), "files_processed went backwards"
    job = ingested[-1].job
    assert job.state is ragmesh_client.ingest.JobState.SUCCEEDED, job.failure
    assert job.counts.files_discovered == len(DOCS)
    assert job.counts.documents_ingested + job.counts.documents_unchanged == len(DOCS)
    assert len({event.job.job_id for event in ingested}) == 1


def test_search_finds_the_ingested_document(
    ingested: list[ragmesh_client.ingest.StreamIngestJobResponse], client: ragmesh_client.Client
) -> None:
    response = client.search("Quillfeather namespace replica quota", top_k=3)
    assert isinstance(response, ragmesh_client.retrieval.SearchResponse)
    assert response.hits, "no hits"
    top = response.hits[0].chunk
    assert top is not None and top.source_uri.endswith("quillfeather-quotas.md")
    assert "twelve replicas" in top.text
    dense_only = client.search("Quillfeather namespace replica quota", top_k=3, legs=["dense"], skip_rerank=True)
    assert all(
        [score.leg for score in hit.leg_scores] == [ragmesh_client.common.RetrievalLeg.DENSE] for hit in dense_only.hits
    )


def test_ask_streams_tokens_one_by_one_then_a_final_answer_with_citations(
    ingested: list[ragmesh_client.ingest.StreamIngestJobResponse], settings: MeshSettings
) -> None:
    async def run() -> list[tuple[float, events.ChatEvent]]:
        async with ragmesh_client.AsyncClient(settings.edge_addr, token) as client:
            return [(time.monotonic(), e) async for e in client.ask(QUESTION, bypass_cache=True, timeout_s=300)]

    timed = asyncio.run(run())
    got = [event for _, event in timed]
    final = got[-1]
    assert isinstance(final, events.Final), [type(e).__name__ for e in got]
    assert sum(isinstance(e, events.Final) for e in got) == 1
    token_times = [at for at, e in timed if isinstance(e, events.Token)]
    texts = [e.text for e in got if isinstance(e, events.Token)]
    assert len(texts) >= 2, "the answer did not stream"
    # One by one: the tokens did not all arrive in one read at the end.
    assert token_times[-1] > token_times[0]
    assert "".join(texts).strip() == final.answer
    assert final.answered_from_documents and final.citations
    assert any(c.source_uri.endswith("quillfeather-rollouts.md") for c in final.citations)
    assert all(c.snippet and c.chunk_id for c in final.citations)
    assert final.latency.total_ms >= final.latency.time_to_first_token_ms > 0
    steps = {(e.step, e.status) for e in got if isinstance(e, events.Step)}
    assert (ragmesh_client.agent.Step.RETRIEVE, ragmesh_client.agent.StepStatus.FINISHED) in steps
    assert all(e.session_id == final.session_id for e in got)
    assert [e.sequence for e in got] == sorted(e.sequence for e in got)


def test_a_tool_call_and_its_result_arrive_as_typed_events(settings: MeshSettings) -> None:
    with ragmesh_client.Client(settings.edge_addr, token) as client:
        got = list(client.ask("What is 1,250 * 4 + 17?", timeout_s=300))
    calls = [e for e in got if isinstance(e, events.ToolCall)]
    results = [e for e in got if isinstance(e, events.ToolResult)]
    assert [c.tool for c in calls] == ["calculator"] and isinstance(calls[0].arguments, dict)
    assert results[0].call_id == calls[0].call_id and results[0].output == "5017"
    final = got[-1]
    assert isinstance(final, events.Final) and "5017" in final.answer


def test_sessions_and_feedback(settings: MeshSettings) -> None:
    with ragmesh_client.Client(settings.edge_addr, token) as client:
        final = list(client.ask("What is 6 * 7?", timeout_s=300))[-1]
        assert isinstance(final, events.Final)
        assert client.feedback(final.session_id, final.message_id, "up", "right")
        session = client.sessions.get(final.session_id)
        assert session.session_id == final.session_id and session.messages
        listed = client.sessions.list(page_size=50)
        assert final.session_id in {s.session_id for s in listed.sessions}
        client.sessions.delete(final.session_id)
        with pytest.raises(ragmesh_client.NotFound):
            client.sessions.get(final.session_id)


def test_sandbox_run(client: ragmesh_client.Client) -> None:
    result = client.sandbox.run("print(sum(range(10)))")
    assert result.stdout == "45\n" and result.exit_code == 0
    assert result.stop_reason is ragmesh_client.sandbox.StopReason.COMPLETED


def test_invalid_argument_carries_the_reason_and_field_violations(client: ragmesh_client.Client) -> None:
    with pytest.raises(ragmesh_client.InvalidArgument) as caught:
        client.search("", top_k=3)
    err = caught.value
    assert err.reason == "VALIDATION_FAILED"
    assert [v.field for v in err.field_violations] == ["query"]
    assert err.field_violations[0].description


def test_invalid_argument_over_the_async_client_too(settings: MeshSettings) -> None:
    async def run() -> ragmesh_client.InvalidArgument:
        async with ragmesh_client.AsyncClient(settings.edge_addr, token) as client:
            with pytest.raises(ragmesh_client.InvalidArgument) as caught:
                await client.sandbox.run("")
            return caught.value

    err = asyncio.run(run())
    assert err.reason == "VALIDATION_FAILED" and [v.field for v in err.field_violations] == ["code"]


@pytest.mark.parametrize(("bad", "reason"), [("not-a-jwt", "TOKEN_MALFORMED"), ("", "TOKEN_MISSING")])
def test_a_bad_or_missing_token_is_unauthenticated_and_not_retried(
    settings: MeshSettings, bad: str, reason: str
) -> None:
    with (
        ragmesh_client.Client(settings.edge_addr, bad) as client,
        pytest.raises(ragmesh_client.Unauthenticated) as caught,
    ):
        client.search("pods")
    assert caught.value.message, "the edge says what is wrong"
    # The edge's refusal carries the same ErrorInfo reason a service gives for that fault.
    assert caught.value.reason == reason

    async def run() -> ragmesh_client.Unauthenticated:
        async with ragmesh_client.AsyncClient(settings.edge_addr, bad) as client:
            with pytest.raises(ragmesh_client.Unauthenticated) as caught:
                await client.search("pods")
            return caught.value

    refused = asyncio.run(run())
    assert refused.message and refused.reason == reason
