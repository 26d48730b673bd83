"""Every proto <-> domain mapping of svc_agent, and nothing else."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from ragmesh.agent.v1 import agent_service_pb2 as pb
from ragmesh.common.v1 import common_pb2
from svc_agent.domain.events import (
    CitationsEvent,
    Envelope,
    FinalEvent,
    StepEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from svc_agent.domain.model import CacheHit, ChatOptions, ChatRequest, Citation, Step, StepStatus
from svc_agent.domain.ports import SessionInfo, StoredMessage

_STEPS = {
    Step.CACHE_LOOKUP: pb.STEP_CACHE_LOOKUP,
    Step.PLAN: pb.STEP_PLAN,
    Step.REWRITE: pb.STEP_REWRITE,
    Step.RETRIEVE: pb.STEP_RETRIEVE,
    Step.TOOL: pb.STEP_TOOL,
    Step.RESPOND: pb.STEP_RESPOND,
    Step.MEMORY: pb.STEP_MEMORY,
}
_STATUSES = {
    StepStatus.STARTED: pb.STEP_STATUS_STARTED,
    StepStatus.FINISHED: pb.STEP_STATUS_FINISHED,
    StepStatus.FAILED: pb.STEP_STATUS_FAILED,
}
_CACHE_HITS = {
    CacheHit.NONE: pb.CACHE_HIT_NONE,
    CacheHit.EXACT: pb.CACHE_HIT_EXACT,
    CacheHit.SEMANTIC: pb.CACHE_HIT_SEMANTIC,
}
RATINGS = {pb.RATING_UP: "up", pb.RATING_DOWN: "down"}
RATING_PROTOS = {stored: rating for rating, stored in RATINGS.items()}


def chat_request(request: pb.StreamChatRequest, tenant: str, subject: str) -> ChatRequest:
    """The domain request of a StreamChat call (the tenant comes from the caller's identity)."""
    options = request.options
    return ChatRequest(
        tenant=tenant,
        message=request.message,
        session_id=request.session_id,
        options=ChatOptions(bypass_cache=options.bypass_cache, hyde=options.hyde, top_k=options.top_k),
        subject=subject,
    )


def citation_to_proto(citation: Citation) -> pb.Citation:
    """A citation as its proto."""
    return pb.Citation(
        marker=citation.marker,
        chunk_id=citation.chunk_id,
        doc_id=citation.doc_id,
        source_uri=citation.source_uri,
        title=citation.title,
        snippet=citation.snippet,
        score=citation.score,
    )


def envelope_to_proto(envelope: Envelope) -> pb.StreamChatResponse:
    """One loop event as a StreamChat message."""
    out = pb.StreamChatResponse(
        session_id=envelope.session_id, message_id=envelope.message_id, sequence=envelope.sequence
    )
    event = envelope.event
    if isinstance(event, StepEvent):
        out.step.CopyFrom(
            pb.StepEvent(
                step=_STEPS[event.step],
                status=_STATUSES[event.status],
                detail=event.detail,
                duration_ms=event.duration_ms,
            )
        )
    elif isinstance(event, TokenEvent):
        out.token.text = event.text
    elif isinstance(event, ToolCallEvent):
        out.tool_call.CopyFrom(pb.ToolCall(call_id=event.call_id, tool=event.tool, arguments_json=event.arguments_json))
    elif isinstance(event, ToolResultEvent):
        out.tool_result.CopyFrom(
            pb.ToolResult(call_id=event.call_id, tool=event.tool, output=event.output, is_error=event.is_error)
        )
    elif isinstance(event, CitationsEvent):
        out.citations.citations.extend(citation_to_proto(c) for c in event.citations)
    elif isinstance(event, FinalEvent):
        out.final.CopyFrom(final_to_proto(event))
    return out


def final_to_proto(event: FinalEvent) -> pb.FinalAnswer:
    """The final event as its proto."""
    latency = event.latency
    return pb.FinalAnswer(
        answer=event.answer,
        citations=[citation_to_proto(c) for c in event.citations],
        usage=common_pb2.Usage(
            prompt_tokens=event.usage.prompt_tokens, completion_tokens=event.usage.completion_tokens
        ),
        latency=pb.LatencyBreakdown(
            planning_ms=latency.planning_ms,
            retrieval_ms=latency.retrieval_ms,
            tools_ms=latency.tools_ms,
            time_to_first_token_ms=latency.time_to_first_token_ms,
            total_ms=latency.total_ms,
        ),
        cache_hit=_CACHE_HITS[event.cache_hit],
        answered_from_documents=event.answered_from_documents,
        rewritten_query=event.rewritten_query,
    )


def _timestamp(value: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def message_to_proto(message: StoredMessage) -> pb.SessionMessage:
    """A stored session message as its proto."""
    return pb.SessionMessage(
        message_id=message.message_id,
        role=message.role.value,
        content=message.content,
        citations=[citation_to_proto(c) for c in message.citations],
        create_time=_timestamp(message.created_at),
        rating=RATING_PROTOS.get(message.rating, pb.RATING_UNSPECIFIED),
        rating_comment=message.rating_comment,
    )


def session_to_proto(session: SessionInfo) -> pb.Session:
    """A session (with its messages, when loaded) as its proto."""
    return pb.Session(
        session_id=session.session_id,
        title=session.title,
        create_time=_timestamp(session.created_at),
        update_time=_timestamp(session.updated_at),
        message_count=session.message_count,
        messages=[message_to_proto(m) for m in session.messages],
    )
