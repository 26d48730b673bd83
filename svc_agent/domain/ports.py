"""What the answer loop needs from the world, as protocols.

``svc_agent.clients`` implements them over gRPC, Postgres, Redis and the vector
engine; unit tests implement them with fakes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from svc_agent.domain.model import CachedAnswer, Citation, Role, Source, Turn, Usage


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """One call to the LLM: a raw prompt and the sampling that keeps a small model on track."""

    prompt: str
    max_tokens: int
    temperature: float = 0.0
    repeat_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    json_schema: str = ""
    """JSON Schema the output must match; empty for free text."""
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class GenerationChunk:
    """A piece of generated text; the last chunk of a call carries usage and the backend's timings."""

    text: str
    usage: Usage | None = None
    backend_ttft_ms: float | None = None
    finish_reason: str = ""


class Generator(Protocol):
    """Streams text from the LLM; closing the iterator early cancels the generation."""

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        """Streams the completion of ``request``."""
        ...


class Embedder(Protocol):
    """Dense embeddings (unit length) from the embedding model."""

    async def embed(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        """One vector per text; ``query`` selects query mode over document mode."""
        ...

    async def max_input_chars(self) -> int:
        """The longest text, in characters, the embedder is sure to accept (it refuses longer ones)."""
        ...


@dataclasses.dataclass(frozen=True)
class SearchOutcome:
    """What one search returned."""

    sources: tuple[Source, ...]
    corpus_version: int
    """The tenant's corpus version the search ran against; 0 when retrieval could not tell."""
    degraded_legs: tuple[str, ...] = ()
    total_ms: float = 0.0


@dataclasses.dataclass(frozen=True)
class GraphNode:
    """A node of the knowledge graph."""

    node_id: str
    kind: str
    label: str
    name: str
    source_uri: str = ""


@dataclasses.dataclass(frozen=True)
class GraphEdge:
    """An edge of the knowledge graph."""

    source_id: str
    target_id: str
    type: str


@dataclasses.dataclass(frozen=True)
class Neighbourhood:
    """An entity's neighbourhood in the graph, the start entity first."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    truncated: bool = False


class Retriever(Protocol):
    """Search and graph exploration, scoped to the caller's tenant."""

    async def search(self, query: str, top_k: int, *, lexical: bool = False) -> SearchOutcome:
        """Hybrid search of the caller's corpus; ``lexical`` runs only the sparse leg, unreranked (a term lookup)."""
        ...

    async def explore_graph(self, entity: str, depth: int, max_nodes: int) -> Neighbourhood:
        """The entity's neighbourhood; an empty one when the graph does not know it."""
        ...


@dataclasses.dataclass(frozen=True)
class CodeResult:
    """The outcome of running code in the sandbox."""

    stdout: str
    stderr: str
    exit_code: int
    stop_reason: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the program completed with exit status 0."""
        return self.stop_reason == "completed" and self.exit_code == 0


class CodeRunner(Protocol):
    """Runs untrusted Python in the sandbox."""

    async def run_python(self, code: str) -> CodeResult:
        """Runs ``code`` to completion under the sandbox's default limits."""
        ...


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    """A session message as stored."""

    message_id: str
    role: Role
    content: str
    citations: tuple[Citation, ...]
    created_at: dt.datetime
    rewritten_query: str = ""
    #: The reading subject's own rating of this answer ("up" or "down"), "" when none.
    rating: str = ""
    #: The comment given with that rating.
    rating_comment: str = ""


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """A session without or with its messages."""

    session_id: str
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime
    message_count: int
    messages: tuple[StoredMessage, ...] = ()


@dataclasses.dataclass(frozen=True)
class CompletedTurn:
    """A question and its answer, written to the session together."""

    tenant: str
    subject: str
    """Who asked: the session belongs to (tenant, subject)."""
    session_id: str
    new_session: bool
    user_message_id: str
    question: str
    rewritten_query: str
    answer_message_id: str
    answer: str
    citations: tuple[Citation, ...]
    answered_from_documents: bool
    cache_hit: str


@dataclasses.dataclass(frozen=True)
class SessionPage:
    """One page of ListSessions."""

    sessions: tuple[SessionInfo, ...]
    next_page_token: str


class ChatMemory(Protocol):
    """Sessions, messages and feedback; a session belongs to one (tenant, subject).

    Reading, continuing or deleting another subject's session raises PermissionDenied.
    """

    async def history(self, tenant: str, subject: str, session_id: str, max_turns: int) -> list[Turn]:
        """The last ``max_turns`` messages of the session, oldest first; NotFound if it does not exist."""
        ...

    async def record_turn(self, turn: CompletedTurn) -> None:
        """Writes the question and the answer (and the session if new) in one transaction."""
        ...

    async def get_session(self, tenant: str, subject: str, session_id: str) -> SessionInfo:
        """The session with its messages; NotFound if it does not exist."""
        ...

    async def list_sessions(self, tenant: str, subject: str, page_size: int, page_token: str) -> SessionPage:
        """The subject's sessions in the tenant, most recently updated first."""
        ...

    async def delete_session(self, tenant: str, subject: str, session_id: str) -> None:
        """Deletes the session, its messages and their feedback; NotFound if it does not exist."""
        ...

    async def submit_feedback(
        self, tenant: str, session_id: str, message_id: str, subject: str, rating: str, comment: str
    ) -> str:
        """Stores (or replaces) the subject's feedback on an answer; returns the feedback id."""
        ...


@dataclasses.dataclass(frozen=True)
class CacheScope:
    """What a cached answer is valid for: a tenant's corpus at one version, asked with the same options."""

    tenant: str
    corpus_version: int
    variant: str
    """The request options that change an answer (sources, HyDE), as a short string."""


class AnswerCache(Protocol):
    """The exact-match answer cache."""

    async def get(self, scope: CacheScope, normalized_question: str) -> CachedAnswer | None:
        """The answer cached for exactly this question in ``scope``, if any."""
        ...

    async def put(self, scope: CacheScope, normalized_question: str, answer: CachedAnswer) -> None:
        """Caches ``answer`` for the question in ``scope``."""
        ...


@dataclasses.dataclass(frozen=True)
class SemanticHit:
    """A semantic cache hit and how similar its question was."""

    answer: CachedAnswer
    similarity: float
    question: str


class SemanticCache(Protocol):
    """Answers of earlier questions, found by the similarity of the question's embedding."""

    async def lookup(self, scope: CacheScope, vector: Sequence[float], min_similarity: float) -> SemanticHit | None:
        """The closest cached answer in ``scope`` at or above ``min_similarity``."""
        ...

    async def store(self, scope: CacheScope, question: str, vector: Sequence[float], answer: CachedAnswer) -> None:
        """Caches ``answer`` for ``question`` in ``scope``; entries of the tenant's older corpus versions go."""
        ...
