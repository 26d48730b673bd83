"""The SDK's clients against a fake edge (a real in-process gRPC server with scripted answers).

Both clients run every case: ``AsyncClient`` (grpclib) and ``Client`` (grpcio).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import ragmesh_client
from mesh.errors import Code as MeshCode
from mesh.errors import FieldViolation as MeshFieldViolation
from mesh.errors import InvalidArgument as MeshInvalidArgument
from mesh.errors import MeshError
from mesh.errors import NotFound as MeshNotFound
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.common.v1 import common_pb2
from ragmesh.ingest.v1 import ingest_service_pb2 as ipb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.sandbox.v1 import sandbox_service_pb2 as spb
from ragmesh_client import errors, events
from tests.unit.sdk.fakes import FakeMesh, Stream

SEARCH = "/ragmesh.retrieval.v1.RetrievalService/Search"
STREAM_CHAT = "/ragmesh.agent.v1.AgentService/StreamChat"


def _unavailable() -> MeshError:
    return MeshError("the index is restarting", reason="BACKEND_RESTARTING", code=MeshCode.UNAVAILABLE)


def _hit(chunk_id: str) -> rpb.SearchResponse:
    return rpb.SearchResponse(
        hits=[rpb.SearchHit(chunk=common_pb2.Chunk(chunk_id=chunk_id, text="pods"), fused_score=0.5)],
        corpus_version=7,
    )


@pytest.fixture
def fake() -> Iterator[FakeMesh]:
    mesh = FakeMesh().start()
    yield mesh
    mesh.stop()


class Runner:
    """Runs one SDK call on either client, so each test covers both transports."""

    def __init__(self, kind: str, address: str) -> None:
        self.kind = kind
        self.address = address

    def call(self, token: ragmesh_client.TokenSource | None, use: Callable[[Any], Any], **client_kw: Any) -> Any:
        """``use(client)``: a coroutine (async) or a value; a returned (async) iterator is drained into a list."""
        if self.kind == "sync":
            with ragmesh_client.Client(self.address, token, **client_kw) as client:
                result = use(client)
                return list(result) if isinstance(result, Iterator) else result

        async def run() -> Any:
            async with ragmesh_client.AsyncClient(self.address, token, **client_kw) as client:
                result = use(client)
                if hasattr(result, "__aiter__"):
                    return [item async for item in result]
                return await result

        return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest, fake: FakeMesh) -> Runner:
    return Runner(request.param, fake.address)


def test_search_returns_typed_messages_and_sends_the_bearer_token(run: Runner, fake: FakeMesh) -> None:
    fake.script(SEARCH, _hit("c1"))
    response = run.call("tok-1", lambda c: c.search("pods", top_k=3, legs=["dense", "graph"]))
    assert isinstance(response, ragmesh_client.retrieval.SearchResponse)
    assert [h.chunk.chunk_id for h in response.hits] == ["c1"]
    assert response.corpus_version == 7
    (call,) = fake.calls
    assert call.metadata["authorization"] == "Bearer tok-1"
    assert call.request.query == "pods" and call.request.top_k == 3
    assert list(call.request.legs) == [common_pb2.RETRIEVAL_LEG_DENSE, common_pb2.RETRIEVAL_LEG_GRAPH]


def _configured_timeout_s(method: str) -> float:
    """RetrievalService's deadline for ``method`` in the service config beside its protos."""
    root = Path(__file__).resolve().parents[3]
    config = json.loads((root / "proto/ragmesh/retrieval/v1/service_config.json").read_text())
    for entry in config["methodConfig"]:
        if any(name.get("method") == method for name in entry["name"]):
            return float(entry["timeout"].removesuffix("s"))
    raise AssertionError(f"no deadline configured for {method}")


def test_each_call_carries_a_deadline_from_the_service_config_unless_given(run: Runner, fake: FakeMesh) -> None:
    fake.script(SEARCH, _hit("c1"), _hit("c2"))
    run.call("t", lambda c: c.search("pods"))
    run.call("t", lambda c: c.search("pods", timeout_s=2.5))
    configured, given = fake.calls_to(SEARCH)
    search_s = _configured_timeout_s("Search")
    # grpc-timeout travels rounded up to whole units: a little slack above.
    assert configured.timeout_s is not None and search_s - 2 < configured.timeout_s <= search_s + 0.5
    assert given.timeout_s is not None and 0.5 < given.timeout_s <= 3.0


def test_invalid_argument_carries_reason_and_field_violations(run: Runner, fake: FakeMesh) -> None:
    fake.script(
        SEARCH,
        MeshInvalidArgument(
            "query must not be empty",
            reason="VALIDATION_FAILED",
            violations=[MeshFieldViolation("query", "value length must be at least 1 characters")],
        ),
    )
    with pytest.raises(ragmesh_client.InvalidArgument) as caught:
        run.call("t", lambda c: c.search(""))
    err = caught.value
    assert err.code is errors.Code.INVALID_ARGUMENT
    assert err.message == "query must not be empty"
    assert err.reason == "VALIDATION_FAILED"
    assert err.details.domain == "ragmesh.dev"
    assert err.field_violations == (
        ragmesh_client.FieldViolation("query", "value length must be at least 1 characters"),
    )
    assert err.details.status is not None and err.details.status.code == 3
    assert len(fake.calls) == 1, "INVALID_ARGUMENT is never retried"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MeshNotFound("no such session", reason="SESSION_NOT_FOUND"), errors.NotFound),
        (MeshError("denied", reason="ROLE_REQUIRED", code=MeshCode.PERMISSION_DENIED), errors.PermissionDenied),
        (MeshError("slow down", reason="RATE_LIMITED", code=MeshCode.RESOURCE_EXHAUSTED), errors.ResourceExhausted),
        (MeshError("bad token", reason="TOKEN_INVALID", code=MeshCode.UNAUTHENTICATED), errors.Unauthenticated),
        (MeshError("bug", reason="INTERNAL", code=MeshCode.INTERNAL), errors.Internal),
    ],
)
def test_each_code_raises_its_own_exception_and_only_once(
    run: Runner, fake: FakeMesh, error: MeshError, expected: type[errors.RagmeshError]
) -> None:
    fake.script(SEARCH, error)
    with pytest.raises(expected) as caught:
        run.call("t", lambda c: c.search("pods"))
    assert isinstance(caught.value, ragmesh_client.RagmeshError)
    assert caught.value.reason == error.reason
    assert len(fake.calls) == 1, f"{expected.__name__} must not be retried"


def test_unavailable_is_retried_up_to_the_policy(run: Runner, fake: FakeMesh) -> None:
    fake.script(SEARCH, _unavailable(), _unavailable(), _hit("after-retries"))
    response = run.call("t", lambda c: c.search("pods"))
    assert [h.chunk.chunk_id for h in response.hits] == ["after-retries"]
    assert len(fake.calls_to(SEARCH)) == 3


def test_unavailable_past_the_attempts_raises_unavailable(run: Runner, fake: FakeMesh) -> None:
    fake.script(SEARCH, _unavailable(), _unavailable(), _hit("never"))
    with pytest.raises(ragmesh_client.Unavailable) as caught:
        run.call("t", lambda c: c.search("pods"), max_attempts=2)
    assert caught.value.reason == "BACKEND_RESTARTING"
    assert len(fake.calls_to(SEARCH)) == 2


def test_a_stream_is_retried_before_its_first_message_only(run: Runner, fake: FakeMesh) -> None:
    token = apb.StreamChatResponse(session_id="s", message_id="m", sequence=1, token=apb.TokenDelta(text="Hi"))
    fake.script(STREAM_CHAT, _unavailable(), Stream([token], error=_unavailable()))
    seen: list[events.ChatEvent] = []

    def ask(c: Any) -> Any:
        if isinstance(c, ragmesh_client.Client):
            return _collect_sync(c.ask("q"), seen)
        return _collect_async(c.ask("q"), seen)

    with pytest.raises(ragmesh_client.Unavailable):
        run.call("t", ask)
    # The first attempt failed before any message and was retried; the second failed after one: raised.
    assert len(fake.calls_to(STREAM_CHAT)) == 2
    assert [e.text for e in seen if isinstance(e, events.Token)] == ["Hi"]


def _collect_sync(it: Iterator[events.ChatEvent], into: list[events.ChatEvent]) -> None:
    for event in it:
        into.append(event)


async def _collect_async(it: Any, into: list[events.ChatEvent]) -> None:
    async for event in it:
        into.append(event)


def test_the_token_hook_is_asked_before_every_call(run: Runner, fake: FakeMesh) -> None:
    issued = iter(["t1", "t2"])
    fake.script(SEARCH, _hit("a"))
    fake.script("/ragmesh.agent.v1.AgentService/ListSessions", apb.ListSessionsResponse())

    async def both_async(c: Any) -> None:
        await c.search("pods")
        await c.sessions.list()

    def both(c: Any) -> Any:
        if isinstance(c, ragmesh_client.Client):
            c.search("pods")
            return c.sessions.list()
        return both_async(c)

    run.call(lambda: next(issued), both)
    assert [c.metadata["authorization"] for c in fake.calls] == ["Bearer t1", "Bearer t2"]


def test_unauthenticated_is_tried_once_more_with_a_refreshed_token(run: Runner, fake: FakeMesh) -> None:
    tokens = iter(["expired", "fresh", "fresh", "fresh"])
    fake.script(SEARCH, MeshError("token expired", reason="TOKEN_EXPIRED", code=MeshCode.UNAUTHENTICATED), _hit("ok"))
    response = run.call(lambda: next(tokens), lambda c: c.search("pods"))
    assert [h.chunk.chunk_id for h in response.hits] == ["ok"]
    assert [c.metadata["authorization"] for c in fake.calls] == ["Bearer expired", "Bearer fresh"]


def test_unauthenticated_with_a_fixed_token_is_raised_at_once(run: Runner, fake: FakeMesh) -> None:
    fake.script(SEARCH, MeshError("token expired", reason="TOKEN_EXPIRED", code=MeshCode.UNAUTHENTICATED))
    with pytest.raises(ragmesh_client.Unauthenticated) as caught:
        run.call("old", lambda c: c.search("pods"))
    assert caught.value.reason == "TOKEN_EXPIRED"
    assert len(fake.calls) == 1


def _chat_stream() -> Stream:
    def msg(seq: int, **event: Any) -> apb.StreamChatResponse:
        return apb.StreamChatResponse(session_id="s1", message_id="m1", sequence=seq, **event)

    citation = apb.Citation(marker=1, chunk_id="c1", source_uri="file:///d.md", title="D", snippet="x", score=0.9)
    return Stream(
        [
            msg(1, step=apb.StepEvent(step=apb.STEP_RETRIEVE, status=apb.STEP_STATUS_FINISHED, duration_ms=3.5)),
            msg(2, tool_call=apb.ToolCall(call_id="k", tool="calculator", arguments_json='{"expression": "2+2"}')),
            msg(3, tool_result=apb.ToolResult(call_id="k", tool="calculator", output="4")),
            msg(4, token=apb.TokenDelta(text="Four")),
            msg(5, token=apb.TokenDelta(text=" [1]")),
            msg(6, citations=apb.CitationsEvent(citations=[citation])),
            msg(
                7,
                final=apb.FinalAnswer(
                    answer="Four [1]",
                    citations=[citation],
                    usage=common_pb2.Usage(prompt_tokens=10, completion_tokens=2),
                    latency=apb.LatencyBreakdown(total_ms=12.0),
                    cache_hit=apb.CACHE_HIT_NONE,
                    answered_from_documents=True,
                ),
            ),
        ]
    )


def test_ask_yields_one_typed_event_per_message(run: Runner, fake: FakeMesh) -> None:
    fake.script(STREAM_CHAT, _chat_stream())
    got = run.call("t", lambda c: c.ask("what is 2+2?", session_id="s1", top_k=4, bypass_cache=True))
    assert [type(e) for e in got] == [
        events.Step,
        events.ToolCall,
        events.ToolResult,
        events.Token,
        events.Token,
        events.Citations,
        events.Final,
    ]
    step, call, result, first, second, cites, final = got
    assert step.step is ragmesh_client.agent.Step.RETRIEVE
    assert step.status is ragmesh_client.agent.StepStatus.FINISHED and step.duration_ms == 3.5
    assert call.tool == "calculator" and call.arguments == {"expression": "2+2"}
    assert result.output == "4" and not result.is_error
    assert (first.text, second.text) == ("Four", " [1]")
    assert [c.chunk_id for c in cites.citations] == ["c1"]
    assert final.answer == "Four [1]" and final.citations[0].source_uri == "file:///d.md"
    assert final.usage.completion_tokens == 2 and final.latency.total_ms == 12.0
    assert final.cache_hit is ragmesh_client.agent.CacheHit.NONE
    assert all(e.session_id == "s1" and e.message_id == "m1" for e in got)
    assert [e.sequence for e in got] == list(range(1, 8))
    (sent,) = fake.calls
    assert sent.request.message == "what is 2+2?" and sent.request.session_id == "s1"
    assert sent.request.options.top_k == 4 and sent.request.options.bypass_cache


def test_ingest_creates_the_job_then_follows_its_progress(run: Runner, fake: FakeMesh, tmp_path: Any) -> None:
    job = ipb.IngestJob(job_id="job-1", state=ipb.JOB_STATE_RUNNING)
    done = ipb.IngestJob(job_id="job-1", state=ipb.JOB_STATE_SUCCEEDED)
    fake.script("/ragmesh.ingest.v1.IngestService/CreateIngestJob", ipb.CreateIngestJobResponse(job=job))
    fake.script(
        "/ragmesh.ingest.v1.IngestService/StreamIngestJob",
        Stream(
            [
                ipb.StreamIngestJobResponse(type=ipb.INGEST_EVENT_TYPE_PROGRESS, job=job, files_per_second=2.0),
                ipb.StreamIngestJobResponse(type=ipb.INGEST_EVENT_TYPE_FINISHED, job=done),
            ]
        ),
    )
    got = run.call("t", lambda c: c.ingest([tmp_path], skip_graph=True))
    assert [e.type for e in got] == [
        ragmesh_client.ingest.IngestEventType.PROGRESS,
        ragmesh_client.ingest.IngestEventType.FINISHED,
    ]
    assert got[-1].job.state is ragmesh_client.ingest.JobState.SUCCEEDED
    create, follow = fake.calls
    assert list(create.request.sources) == [str(tmp_path)] and create.request.options.skip_graph
    assert follow.request.job_id == "job-1"


def test_sessions_feedback_and_sandbox(run: Runner, fake: FakeMesh) -> None:
    fake.script(
        "/ragmesh.agent.v1.AgentService/GetSession", apb.GetSessionResponse(session=apb.Session(session_id="s1"))
    )
    fake.script("/ragmesh.agent.v1.AgentService/DeleteSession", apb.DeleteSessionResponse())
    fake.script("/ragmesh.agent.v1.AgentService/SubmitFeedback", apb.SubmitFeedbackResponse(feedback_id="f1"))
    fake.script(
        "/ragmesh.sandbox.v1.SandboxService/Execute",
        spb.ExecuteResponse(result=spb.ExecutionResult(stdout="4\n", stop_reason=spb.STOP_REASON_COMPLETED)),
    )

    async def all_async(c: Any) -> tuple[Any, ...]:
        session = await c.sessions.get("s1")
        await c.sessions.delete("s1")
        feedback_id = await c.feedback("s1", "m1", "up", "good")
        result = await c.sandbox.run("print(2+2)", files={"a.txt": b"x"})
        return session, feedback_id, result

    if run.kind == "sync":
        with ragmesh_client.Client(fake.address, "t") as client:
            session = client.sessions.get("s1")
            client.sessions.delete("s1")
            feedback_id = client.feedback("s1", "m1", "up", "good")
            result = client.sandbox.run("print(2+2)", files={"a.txt": b"x"})
    else:
        session, feedback_id, result = run.call("t", all_async)
    assert session.session_id == "s1"
    assert feedback_id == "f1"
    assert result.stdout == "4\n" and result.stop_reason is ragmesh_client.sandbox.StopReason.COMPLETED
    feedback = fake.calls_to("/ragmesh.agent.v1.AgentService/SubmitFeedback")[0].request
    assert feedback.rating == apb.RATING_UP and feedback.comment == "good"
    execute = fake.calls_to("/ragmesh.sandbox.v1.SandboxService/Execute")[0].request
    assert [(f.name, f.content) for f in execute.files] == [("a.txt", b"x")]


def test_an_edge_that_is_down_raises_unavailable_after_the_retries(run: Runner) -> None:
    closed = FakeMesh().start()
    address = closed.address
    closed.stop()
    with pytest.raises(ragmesh_client.Unavailable):
        Runner(run.kind, address).call("t", lambda c: c.search("pods"), max_attempts=2)


def test_documents_cancel_and_streamed_sandbox_output(run: Runner, fake: FakeMesh) -> None:
    fake.script(
        "/ragmesh.ingest.v1.IngestService/ListDocuments",
        ipb.ListDocumentsResponse(documents=[ipb.DocumentInfo(doc_id="d1", source_uri="file:///a.md")]),
    )
    fake.script("/ragmesh.ingest.v1.IngestService/DeleteDocument", ipb.DeleteDocumentResponse(points_deleted=3))
    fake.script(
        "/ragmesh.ingest.v1.IngestService/CancelIngestJob",
        ipb.CancelIngestJobResponse(job=ipb.IngestJob(job_id="j1", state=ipb.JOB_STATE_CANCELLED)),
    )
    fake.script(
        "/ragmesh.sandbox.v1.SandboxService/StreamExecute",
        Stream(
            [
                spb.StreamExecuteResponse(output=spb.OutputChunk(stream=spb.OUTPUT_STREAM_STDOUT, data=b"4\n")),
                spb.StreamExecuteResponse(result=spb.ExecutionResult(stop_reason=spb.STOP_REASON_COMPLETED)),
            ]
        ),
    )
    fake.script(
        "/ragmesh.retrieval.v1.RetrievalService/GetChunk",
        rpb.GetChunkResponse(chunk=common_pb2.Chunk(chunk_id="c1", text="full text")),
    )
    chunk = run.call("t", lambda c: c.get_chunk("c1"))
    assert (chunk.chunk_id, chunk.text) == ("c1", "full text")
    listed = run.call("t", lambda c: c.documents.list(source_prefix="file:///"))
    deleted = run.call("t", lambda c: c.documents.delete("d1"))
    job = run.call("t", lambda c: c.cancel_job("j1"))
    events = run.call("t", lambda c: c.sandbox.stream("print(2+2)"))
    assert [d.doc_id for d in listed.documents] == ["d1"] and deleted.points_deleted == 3
    assert job.state is ragmesh_client.ingest.JobState.CANCELLED
    assert events[0].output.data == b"4\n"
    assert events[-1].result.stop_reason is ragmesh_client.sandbox.StopReason.COMPLETED
    assert fake.calls_to("/ragmesh.ingest.v1.IngestService/ListDocuments")[0].request.source_prefix == "file:///"
    assert fake.calls_to("/ragmesh.ingest.v1.IngestService/DeleteDocument")[0].request.doc_id == "d1"
