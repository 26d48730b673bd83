"""The events the answer loop emits, one StreamChat message each."""

from __future__ import annotations

import dataclasses

from svc_agent.domain.model import CacheHit, Citation, Latency, Step, StepStatus, Usage


@dataclasses.dataclass(frozen=True)
class StepEvent:
    """A step started, finished or failed."""

    step: Step
    status: StepStatus
    detail: str = ""
    duration_ms: float = 0.0


@dataclasses.dataclass(frozen=True)
class TokenEvent:
    """A piece of answer text."""

    text: str


@dataclasses.dataclass(frozen=True)
class ToolCallEvent:
    """The agent called a tool."""

    call_id: str
    tool: str
    arguments_json: str


@dataclasses.dataclass(frozen=True)
class ToolResultEvent:
    """What a tool returned."""

    call_id: str
    tool: str
    output: str
    is_error: bool


@dataclasses.dataclass(frozen=True)
class CitationsEvent:
    """The sources the answer uses."""

    citations: tuple[Citation, ...]


@dataclasses.dataclass(frozen=True)
class FinalEvent:
    """The last event: the whole answer with its sources, usage and timings."""

    answer: str
    citations: tuple[Citation, ...]
    usage: Usage
    latency: Latency
    cache_hit: CacheHit
    answered_from_documents: bool
    rewritten_query: str


AgentEvent = StepEvent | TokenEvent | ToolCallEvent | ToolResultEvent | CitationsEvent | FinalEvent


@dataclasses.dataclass(frozen=True)
class Envelope:
    """An event with the ids and sequence number of the stream it belongs to."""

    session_id: str
    message_id: str
    sequence: int
    event: AgentEvent
