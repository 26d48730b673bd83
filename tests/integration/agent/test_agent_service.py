"""AgentService over gRPC with its real neighbours: answers, citations, follow-ups, caches, errors, cancellation.

The agent, svc_retrieval (Qdrant Edge + Neo4j), the models, Postgres and Redis
are all real and in-process or local (see ``harness``); the sample pages are
indexed for one tenant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import pytest

from mesh import status
from ragmesh.agent.v1 import agent_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2 as infpb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_inference import convert as inference_convert
from svc_inference.domain.model import GenerateRequest, GenerationStats
from svc_inference.domain.runtime import ModelRuntime
from tests.integration.agent.harness import AgentMesh
from tests.support.tenants import new_tenant

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

GC_QUESTION = "How often does the kubelet garbage-collect unused images and dead containers?"


async def chat(mesh: AgentMesh, message: str, **kwargs: object) -> list[pb.StreamChatResponse]:
    options = kwargs.pop("options", None)
    request = pb.StreamChatRequest(message=message, options=options, **kwargs)  # type: ignore[arg-type]
    return [m async for m in mesh.agent.StreamChat(request, metadata=mesh.md(), timeout=120)]


def final_of(messages: Sequence[pb.StreamChatResponse]) -> pb.FinalAnswer:
    assert messages[-1].WhichOneof("event") == "final"
    return messages[-1].final


def of_kind(messages: Sequence[pb.StreamChatResponse], kind: str) -> list[pb.StreamChatResponse]:
    return [m for m in messages if m.WhichOneof("event") == kind]


def step_details(messages: Sequence[pb.StreamChatResponse], step: int) -> list[str]:
    return [m.step.detail for m in of_kind(messages, "step") if m.step.step == step]


async def test_an_answer_streams_in_deltas_with_citations_of_retrieved_chunks(agent_mesh: AgentMesh) -> None:
    messages = await chat(agent_mesh, GC_QUESTION, options=pb.ChatOptions(bypass_cache=True))
    final = final_of(messages)
    assert [m.sequence for m in messages] == list(range(1, len(messages) + 1))
    assert len(of_kind(messages, "token")) >= 2
    assert "".join(m.token.text for m in of_kind(messages, "token")).strip() == final.answer
    assert final.answered_from_documents
    assert final.citations, f"no citations for {final.answer!r}: {step_details(messages, pb.STEP_RESPOND)}"
    for citation in final.citations:
        found = await agent_mesh.retrieval.GetChunk(
            rpb.GetChunkRequest(chunk_id=citation.chunk_id), metadata=agent_mesh.md()
        )
        assert found.chunk.doc_id == citation.doc_id and found.chunk.source_uri == citation.source_uri
        assert citation.snippet
    assert any("garbage-collection" in c.source_uri for c in final.citations)
    latency = final.latency
    assert latency.retrieval_ms > 0 and latency.time_to_first_token_ms > 0 and latency.total_ms > 0
    assert latency.time_to_first_token_ms <= latency.total_ms
    assert final.usage.prompt_tokens > 0 and final.usage.completion_tokens > 0
    assert final.cache_hit == pb.CACHE_HIT_NONE


async def test_a_follow_up_pronoun_is_resolved_from_the_session(agent_mesh: AgentMesh) -> None:
    first = await chat(agent_mesh, "What is a CronJob?")
    session_id = first[0].session_id
    follow = await chat(agent_mesh, "How many finished Jobs does it keep by default?", session_id=session_id)
    assert {m.session_id for m in follow} == {session_id}
    assert "CronJob" in final_of(follow).rewritten_query
    assert any("'it' -> 'CronJob'" in d for d in step_details(follow, pb.STEP_REWRITE))

    session = await agent_mesh.agent.GetSession(pb.GetSessionRequest(session_id=session_id), metadata=agent_mesh.md())
    roles = [m.role for m in session.session.messages]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert session.session.messages[3].message_id == follow[0].message_id
    assert list(session.session.messages[3].citations) == list(final_of(follow).citations)


async def test_asking_again_hits_the_cache_and_a_reingest_makes_it_miss(agent_mesh: AgentMesh) -> None:
    question = "Which namespaces does a new Kubernetes cluster start with?"
    first = final_of(await chat(agent_mesh, question))
    assert first.cache_hit == pb.CACHE_HIT_NONE
    if not first.citations:
        pytest.fail(f"the first answer has no citations, so it was not cached: {first.answer!r}")

    again = await chat(agent_mesh, question)
    hit = final_of(again)
    assert hit.cache_hit == pb.CACHE_HIT_EXACT and hit.answer == first.answer
    assert list(hit.citations) == list(first.citations)
    assert len(of_kind(again, "token")) >= 2 and of_kind(again, "citations")

    # A changed document is re-ingested: the corpus version moves on and the cached answer is stale.
    version = await agent_mesh.index_document(
        "k8s/concepts/overview/working-with-objects/namespaces.md", version=2, extra="Namespaces: an added note."
    )
    after = await chat(agent_mesh, question)
    assert final_of(after).cache_hit == pb.CACHE_HIT_NONE
    assert any(f"corpus version {version}" in d for d in step_details(after, pb.STEP_CACHE_LOOKUP))


async def test_an_out_of_corpus_question_is_declined(agent_mesh: AgentMesh) -> None:
    final = final_of(await chat(agent_mesh, "What is the recommended way to run a Postgres operator on GPUs?"))
    assert not final.answered_from_documents and not final.citations
    assert "not find the answer in the documents" in final.answer


async def test_a_calculator_question_uses_the_tool(agent_mesh: AgentMesh) -> None:
    messages = await chat(agent_mesh, "What is 12 * (3 + 4)?")
    (call,) = of_kind(messages, "tool_call")
    (result,) = of_kind(messages, "tool_result")
    assert call.tool_call.tool == "calculator" and result.tool_result.output == "84"
    assert final_of(messages).answer == "12 * (3 + 4) = 84"
    assert final_of(messages).latency.tools_ms > 0


async def _rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if hasattr(call, "__aiter__"):
            async for _ in call:  # type: ignore[attr-defined]
                pass
        else:
            await call  # type: ignore[misc]
    return info.value


async def test_bad_input_gets_clear_codes(agent_mesh: AgentMesh) -> None:
    empty = await _rpc_error(agent_mesh.agent.StreamChat(pb.StreamChatRequest(message=""), metadata=agent_mesh.md()))
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT
    decoded = status.status_from_metadata(empty.trailing_metadata())
    bad = status.bad_request(decoded) if decoded else None
    assert bad is not None and [v.field for v in bad.field_violations] == ["message"]

    too_many = await _rpc_error(
        agent_mesh.agent.StreamChat(
            pb.StreamChatRequest(message="hi", options=pb.ChatOptions(top_k=21)), metadata=agent_mesh.md()
        )
    )
    assert too_many.code() == grpc.StatusCode.INVALID_ARGUMENT

    unknown = await _rpc_error(
        agent_mesh.agent.StreamChat(pb.StreamChatRequest(message="hi", session_id="nope"), metadata=agent_mesh.md())
    )
    assert unknown.code() == grpc.StatusCode.NOT_FOUND

    anonymous = await _rpc_error(agent_mesh.agent.StreamChat(pb.StreamChatRequest(message="hi")))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED

    feedback = await _rpc_error(
        agent_mesh.agent.SubmitFeedback(
            pb.SubmitFeedbackRequest(session_id="s", message_id="m", rating=pb.RATING_UNSPECIFIED),
            metadata=agent_mesh.md(),
        )
    )
    assert feedback.code() == grpc.StatusCode.INVALID_ARGUMENT

    token = await _rpc_error(
        agent_mesh.agent.ListSessions(pb.ListSessionsRequest(page_token="garbage"), metadata=agent_mesh.md())
    )
    assert token.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_sessions_feedback_and_deletion_over_grpc(agent_mesh: AgentMesh) -> None:
    tenant = new_tenant()
    md = agent_mesh.md(tenant)
    call = agent_mesh.agent.StreamChat(pb.StreamChatRequest(message="What is 2 + 2?"), metadata=md)
    messages = [m async for m in call]
    session_id, message_id = messages[0].session_id, messages[0].message_id
    listed = await agent_mesh.agent.ListSessions(pb.ListSessionsRequest(), metadata=md)
    assert [s.session_id for s in listed.sessions] == [session_id]
    assert listed.sessions[0].title == "What is 2 + 2?" and listed.sessions[0].message_count == 2
    assert (await agent_mesh.agent.ListSessions(pb.ListSessionsRequest(), metadata=agent_mesh.md())).sessions != []

    first = await agent_mesh.agent.SubmitFeedback(
        pb.SubmitFeedbackRequest(session_id=session_id, message_id=message_id, rating=pb.RATING_UP), metadata=md
    )
    again = await agent_mesh.agent.SubmitFeedback(
        pb.SubmitFeedbackRequest(session_id=session_id, message_id=message_id, rating=pb.RATING_DOWN, comment="x"),
        metadata=md,
    )
    assert first.feedback_id == again.feedback_id

    other_tenant = await _rpc_error(
        agent_mesh.agent.GetSession(pb.GetSessionRequest(session_id=session_id), metadata=agent_mesh.md())
    )
    assert other_tenant.code() == grpc.StatusCode.NOT_FOUND

    await agent_mesh.agent.DeleteSession(pb.DeleteSessionRequest(session_id=session_id), metadata=md)
    gone = await _rpc_error(agent_mesh.agent.GetSession(pb.GetSessionRequest(session_id=session_id), metadata=md))
    assert gone.code() == grpc.StatusCode.NOT_FOUND


async def _wait_for_stats(
    models: ModelRuntime, done: Callable[[GenerationStats], bool], timeout_s: float = 30.0
) -> GenerationStats:
    """The LLM backend's counters once ``done`` holds for them; fails when they never settle."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = await models.stats()
        if done(stats):
            return stats
        assert time.monotonic() < deadline, f"the backend's counters never settled: {stats}"
        await asyncio.sleep(0.05)


async def test_a_client_that_goes_away_stops_the_generation(agent_mesh: AgentMesh) -> None:
    models = agent_mesh.models
    if models is None:
        pytest.skip("an external svc_inference serves the models; its cancellation is its own test")
    before = await models.stats()
    call = agent_mesh.agent.StreamChat(
        pb.StreamChatRequest(message=GC_QUESTION, options=pb.ChatOptions(bypass_cache=True)), metadata=agent_mesh.md()
    )
    async for message in call:
        if message.WhichOneof("event") == "token":
            break
    call.cancel()
    await _wait_for_stats(models, lambda s: s.cancelled > before.cancelled and s.active == 0)


async def test_the_callers_deadline_reaches_the_generation(
    agent_mesh: AgentMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    if agent_mesh.models is None:
        pytest.skip("an external svc_inference serves the models; its deadline handling is its own test")
    # svc_inference's servicer hands the deadline its caller sent to the backend here; a spy notes each one.
    remaining: list[float | None] = []
    generate_request = inference_convert.generate_request

    def noting(request: infpb.StreamGenerateRequest, timeout_s: float | None, **kwargs: Any) -> GenerateRequest:
        remaining.append(timeout_s)
        return generate_request(request, timeout_s, **kwargs)

    monkeypatch.setattr(inference_convert, "generate_request", noting)
    messages = [
        m
        async for m in agent_mesh.agent.StreamChat(
            pb.StreamChatRequest(message=GC_QUESTION, options=pb.ChatOptions(bypass_cache=True)),
            metadata=agent_mesh.md(),
            timeout=150,
        )
    ]
    assert final_of(messages).answered_from_documents
    # Without propagation the generation would get InferenceService's own 300 s (or no deadline at all);
    # gRPC rounds a timeout up when it puts it on the wire, hence the second of slack.
    assert remaining and all(r is not None and 0 < r <= 151.5 for r in remaining), remaining


async def test_a_passed_deadline_is_deadline_exceeded(agent_mesh: AgentMesh) -> None:
    call = agent_mesh.agent.StreamChat(
        pb.StreamChatRequest(message=GC_QUESTION, options=pb.ChatOptions(bypass_cache=True)),
        metadata=agent_mesh.md(),
        timeout=0.05,
    )
    assert (await _rpc_error(call)).code() == grpc.StatusCode.DEADLINE_EXCEEDED
