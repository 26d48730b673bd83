"""Proto <-> domain mapping of svc_agent."""

from __future__ import annotations

import datetime as dt

from ragmesh.agent.v1 import agent_service_pb2 as pb
from svc_agent import convert
from svc_agent.domain.events import (
    CitationsEvent,
    Envelope,
    FinalEvent,
    StepEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from svc_agent.domain.model import CacheHit, Citation, Latency, Role, Step, StepStatus, Usage
from svc_agent.domain.ports import SessionInfo, StoredMessage

CITATION = Citation(1, "c1", "d1", "file:///a.md", "A", "snippet", 0.5)


def wrap(event: object) -> pb.StreamChatResponse:
    return convert.envelope_to_proto(Envelope("s1", "m1", 7, event))  # type: ignore[arg-type]


def test_request_carries_the_caller_tenant_and_options() -> None:
    request = pb.StreamChatRequest(
        message="hi", session_id="s", options=pb.ChatOptions(bypass_cache=True, hyde=True, top_k=3)
    )
    chat = convert.chat_request(request, "acme", "alice")
    assert (chat.tenant, chat.subject, chat.message, chat.session_id) == ("acme", "alice", "hi", "s")
    assert (chat.options.bypass_cache, chat.options.hyde, chat.options.top_k) == (True, True, 3)


def test_every_event_maps_to_its_oneof_field() -> None:
    step = wrap(StepEvent(Step.RETRIEVE, StepStatus.FINISHED, "4 sources", 12.5))
    assert (step.session_id, step.message_id, step.sequence) == ("s1", "m1", 7)
    assert step.WhichOneof("event") == "step"
    assert (step.step.step, step.step.status, step.step.detail, step.step.duration_ms) == (
        pb.STEP_RETRIEVE,
        pb.STEP_STATUS_FINISHED,
        "4 sources",
        12.5,
    )
    assert wrap(TokenEvent("Po")).token.text == "Po"
    call = wrap(ToolCallEvent("c", "calculator", '{"expression": "1+1"}'))
    assert (call.tool_call.tool, call.tool_call.arguments_json) == ("calculator", '{"expression": "1+1"}')
    result = wrap(ToolResultEvent("c", "calculator", "2", False))
    assert (result.tool_result.output, result.tool_result.is_error) == ("2", False)
    cites = wrap(CitationsEvent((CITATION,)))
    assert [c.chunk_id for c in cites.citations.citations] == ["c1"]


def test_final_event() -> None:
    final = wrap(
        FinalEvent(
            answer="A [1].",
            citations=(CITATION,),
            usage=Usage(10, 5),
            latency=Latency(1.0, 2.0, 0.0, 3.0, 4.0),
            cache_hit=CacheHit.SEMANTIC,
            answered_from_documents=True,
            rewritten_query="q",
        )
    ).final
    assert final.answer == "A [1]." and final.citations[0].source_uri == "file:///a.md"
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (10, 5)
    assert (final.latency.retrieval_ms, final.latency.time_to_first_token_ms, final.latency.total_ms) == (2, 3, 4)
    assert final.cache_hit == pb.CACHE_HIT_SEMANTIC and final.answered_from_documents
    assert final.rewritten_query == "q"


def test_session_with_messages() -> None:
    at = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    session = convert.session_to_proto(
        SessionInfo("s1", "title", at, at, 2, (StoredMessage("m1", Role.ASSISTANT, "A", (CITATION,), at),))
    )
    assert session.create_time.ToDatetime(dt.UTC) == at
    assert session.messages[0].role == "assistant" and session.messages[0].citations[0].marker == 1


def test_a_message_carries_the_readers_own_rating() -> None:
    at = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    rated = convert.message_to_proto(StoredMessage("m1", Role.ASSISTANT, "A", (), at, rating="up", rating_comment="ok"))
    unrated = convert.message_to_proto(StoredMessage("m2", Role.USER, "Q", (), at))
    assert (rated.rating, rated.rating_comment) == (pb.RATING_UP, "ok")
    assert unrated.rating == pb.RATING_UNSPECIFIED
