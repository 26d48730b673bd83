"""The typed events ``ask()`` yields, one per StreamChat message.

Each StreamChat message carries exactly one event; the SDK turns it into one of
the frozen dataclasses below so callers can ``match`` on the type instead of
asking which oneof field is set. Every event names its session, the assistant
message it belongs to and its sequence number in the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from ragmesh_client._proto.ragmesh.agent import v1 as agent
from ragmesh_client._proto.ragmesh.common import v1 as common


@dataclass(frozen=True)
class Event:
    """What every event carries."""

    session_id: str
    message_id: str
    sequence: int


@dataclass(frozen=True)
class Step(Event):
    """A step of the agent's loop started, finished or failed."""

    step: agent.Step
    status: agent.StepStatus
    detail: str
    duration_ms: float


@dataclass(frozen=True)
class Token(Event):
    """The next piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class ToolCall(Event):
    """The agent called a tool (``arguments`` decoded from its JSON)."""

    call_id: str
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolResult(Event):
    """What a tool call returned."""

    call_id: str
    tool: str
    output: str
    is_error: bool


@dataclass(frozen=True)
class Citations(Event):
    """The sources the answer cites, as soon as they are known."""

    citations: tuple[agent.Citation, ...]


@dataclass(frozen=True)
class Final(Event):
    """The whole answer, its citations, usage and latency breakdown: the last event."""

    answer: str
    citations: tuple[agent.Citation, ...]
    usage: common.Usage
    latency: agent.LatencyBreakdown
    cache_hit: agent.CacheHit
    answered_from_documents: bool
    rewritten_query: str
    trace_id: str = ""
    """The request's id: its trace id and the request id in the services' logs (``ragmesh trace <id>``)."""


ChatEvent: TypeAlias = Step | Token | ToolCall | ToolResult | Citations | Final


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_value": value}


def from_message(message: agent.StreamChatResponse) -> ChatEvent | None:
    """The event a StreamChat message carries, or None for an event this SDK version does not know."""
    head = (message.session_id, message.message_id, message.sequence)
    if message.token is not None:
        return Token(*head, text=message.token.text)
    if message.step is not None:
        s = message.step
        return Step(*head, step=s.step, status=s.status, detail=s.detail, duration_ms=s.duration_ms)
    if message.tool_call is not None:
        c = message.tool_call
        return ToolCall(*head, call_id=c.call_id, tool=c.tool, arguments=_arguments(c.arguments_json))
    if message.tool_result is not None:
        r = message.tool_result
        return ToolResult(*head, call_id=r.call_id, tool=r.tool, output=r.output, is_error=r.is_error)
    if message.citations is not None:
        return Citations(*head, citations=tuple(message.citations.citations))
    if message.final is not None:
        f = message.final
        return Final(
            *head,
            answer=f.answer,
            citations=tuple(f.citations),
            usage=f.usage if f.usage is not None else common.Usage(),
            latency=f.latency if f.latency is not None else agent.LatencyBreakdown(),
            cache_hit=f.cache_hit,
            answered_from_documents=f.answered_from_documents,
            rewritten_query=f.rewritten_query,
            trace_id=f.trace_id,
        )
    return None
