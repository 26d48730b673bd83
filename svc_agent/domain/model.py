"""Values of the answer loop: questions, sources, citations, plans, usage and timings.

Plain frozen dataclasses and enums, no transport types: ``svc_agent.convert``
maps them to and from the protos.
"""

from __future__ import annotations

import dataclasses
import enum


class Step(enum.Enum):
    """A stage of the answer loop, as clients see it."""

    CACHE_LOOKUP = "cache_lookup"
    PLAN = "plan"
    REWRITE = "rewrite"
    RETRIEVE = "retrieve"
    TOOL = "tool"
    RESPOND = "respond"
    MEMORY = "memory"
    """Reading or saving the session's memory: emitted only when that fails (memory degraded)."""


class StepStatus(enum.Enum):
    """Where a step is."""

    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"


class Action(enum.Enum):
    """What the planner decided to do with a message."""

    ANSWER = "answer"
    RETRIEVE = "retrieve"
    CALCULATOR = "calculator"
    PYTHON = "python"
    GRAPH = "graph"


class CacheHit(enum.Enum):
    """Which answer cache answered, if any."""

    NONE = "none"
    EXACT = "exact"
    SEMANTIC = "semantic"


class Role(enum.Enum):
    """Who wrote a session message."""

    USER = "user"
    ASSISTANT = "assistant"


@dataclasses.dataclass(frozen=True)
class ChatOptions:
    """Per-request switches of the loop."""

    bypass_cache: bool = False
    hyde: bool = False
    top_k: int = 0
    """Sources to retrieve; 0 means the configured default."""


@dataclasses.dataclass(frozen=True)
class ChatRequest:
    """One user message to answer."""

    tenant: str
    message: str
    session_id: str = ""
    """Empty starts a new session."""
    options: ChatOptions = ChatOptions()
    subject: str = ""


@dataclasses.dataclass(frozen=True)
class Turn:
    """One message of the chat history, oldest first in a history list."""

    role: Role
    content: str
    rewritten_query: str = ""
    """For user turns: the standalone question retrieval used."""


@dataclasses.dataclass(frozen=True)
class Source:
    """A chunk retrieval returned, as the responder sees it."""

    chunk_id: str
    doc_id: str
    source_uri: str
    title: str
    text: str
    section: str = ""
    score: float = 0.0
    """The retrieval score clients see (rerank score when reranking ran, else the fused score)."""
    relevance: float | None = None
    """Cosine similarity of query and chunk from the dense leg; None when that leg did not find it."""


@dataclasses.dataclass(frozen=True)
class Citation:
    """A source the answer uses, under the marker it has in the answer."""

    marker: int
    chunk_id: str
    doc_id: str
    source_uri: str
    title: str
    snippet: str
    score: float


@dataclasses.dataclass(frozen=True)
class Usage:
    """Token counts; adds up over the model calls of one answer."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclasses.dataclass(frozen=True)
class Latency:
    """Milliseconds spent in each part of answering."""

    planning_ms: float = 0.0
    retrieval_ms: float = 0.0
    tools_ms: float = 0.0
    time_to_first_token_ms: float = 0.0
    total_ms: float = 0.0


@dataclasses.dataclass(frozen=True)
class Plan:
    """The planner's decision and where it came from."""

    action: Action
    tool_input: str = ""
    """The calculator expression, Python code or graph entity; empty for answer and retrieve."""
    decided_by: str = "rules"
    """"rules", "model", or "rules (model output unusable: ...)"."""
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class CachedAnswer:
    """An answer kept in a cache, enough to replay it."""

    answer: str
    citations: tuple[Citation, ...]
    rewritten_query: str
    answered_from_documents: bool
