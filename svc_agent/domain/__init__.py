"""The answer loop in plain Python (no transport types): plan, rewrite, retrieve, use tools, respond, cite."""

from svc_agent.domain.events import (
    AgentEvent,
    CitationsEvent,
    Envelope,
    FinalEvent,
    StepEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from svc_agent.domain.loop import TRANSITIONS, Agent, Dependencies, State
from svc_agent.domain.settings import AgentSettings, AnswerMode, PlannerMode
from svc_agent.domain.stitch import StitchParams

__all__ = [
    "TRANSITIONS",
    "Agent",
    "AgentEvent",
    "AgentSettings",
    "AnswerMode",
    "CitationsEvent",
    "Dependencies",
    "Envelope",
    "FinalEvent",
    "PlannerMode",
    "State",
    "StepEvent",
    "StitchParams",
    "TokenEvent",
    "ToolCallEvent",
    "ToolResultEvent",
]
