"""Plain values the inference domain passes around (no grpc, no model libraries).

These cross the Ray boundary between the service and its Serve replicas, so
they are small frozen dataclasses that pickle cheaply; dense vectors travel as
one float32 numpy array per call, not as lists of Python floats.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
import numpy.typing as npt


class ModelRole(enum.Enum):
    """What a model is for."""

    LLM = "llm"
    EMBEDDER = "embedder"
    RERANKER = "reranker"


class Priority(enum.Enum):
    """Whether a person is waiting on a model call (interactive) or it is bulk work that may wait (batch)."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


class ChatRole(enum.Enum):
    """Who said a chat message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclasses.dataclass(frozen=True)
class ChatMessage:
    """One turn of a chat."""

    role: ChatRole
    content: str


@dataclasses.dataclass(frozen=True)
class Sampling:
    """Sampling settings of one request; None means the model config's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    repeat_penalty: float | None = None
    stop: tuple[str, ...] = ()
    """Stop sequences added to the model's own."""
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class GenerateRequest:
    """A generation request: exactly one of ``prompt`` and ``messages`` is set."""

    model: str = ""
    prompt: str = ""
    messages: tuple[ChatMessage, ...] = ()
    sampling: Sampling = dataclasses.field(default_factory=Sampling)
    json_schema: str = ""
    """JSON Schema text the output must match; empty for free text."""
    timeout_s: float | None = None
    """Seconds the caller still waits; the backend stops generating when they run out."""
    priority: Priority = Priority.INTERACTIVE
    """A waiting interactive generation gets the model before any waiting batch one."""


class FinishReason(enum.Enum):
    """Why generation stopped."""

    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"


@dataclasses.dataclass(frozen=True)
class GenerationSummary:
    """Usage and timings of a finished generation, measured in the backend."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason
    time_to_first_token_ms: float
    tokens_per_second: float
    total_ms: float


@dataclasses.dataclass(frozen=True)
class GenerationChunk:
    """One streamed piece: text produced since the previous chunk, and the summary on the last one."""

    delta: str = ""
    summary: GenerationSummary | None = None


@dataclasses.dataclass(frozen=True)
class GenerationStats:
    """Counters of one LLM backend since it started (one replica, when served by Ray Serve)."""

    started: int = 0
    """Generations that got a model slot and began."""
    completed: int = 0
    """Generations that ended by themselves (stop or length)."""
    cancelled: int = 0
    """Generations stopped because the caller cancelled or its deadline passed."""
    failed: int = 0
    """Generations that ended with an error."""
    tokens_generated: int = 0
    """Completion tokens produced."""
    active: int = 0
    """Generations running right now (0 or 1 for llama.cpp)."""
    waiting: int = 0
    """Requests waiting for a model slot."""


class EmbedMode(enum.Enum):
    """Whether texts are search queries or passages to be found."""

    QUERY = "query"
    DOCUMENT = "document"


@dataclasses.dataclass(frozen=True)
class EmbedRequest:
    """Texts to embed in one mode."""

    texts: tuple[str, ...]
    model: str = ""
    mode: EmbedMode = EmbedMode.DOCUMENT
    include_sparse: bool = False
    priority: Priority = Priority.INTERACTIVE
    """Batch work is run in slices and only while no interactive request waits."""


@dataclasses.dataclass(frozen=True)
class SparseVector:
    """Sparse term weights: unique ascending term ids and one weight each."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class EmbedResult:
    """The embeddings of one request."""

    model: str
    dense: npt.NDArray[np.float32]
    """Unit-length vectors, shape (len(texts), dimensions)."""
    sparse: tuple[SparseVector, ...] | None
    """One sparse vector per text when asked for and the model has them."""
    batch_size: int
    """Texts in the backend batch this request was computed in (for the batch-size metric)."""

    @property
    def dimensions(self) -> int:
        """Length of each dense vector."""
        return int(self.dense.shape[1])


@dataclasses.dataclass(frozen=True)
class RerankRequest:
    """Documents to score against a query."""

    query: str
    documents: tuple[str, ...]
    model: str = ""
    top_n: int = 0
    """Return only the best top_n; 0 means all."""


@dataclasses.dataclass(frozen=True)
class ScoredDocument:
    """One document's position in the request and its relevance score."""

    index: int
    score: float


@dataclasses.dataclass(frozen=True)
class RerankResult:
    """Documents best first."""

    model: str
    method: str
    """"cross-encoder" or "embedding-cosine"."""
    results: tuple[ScoredDocument, ...]
    batch_size: int
    """Query-document pairs in the backend batch this request was scored in."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """A served model, as ListModels reports it."""

    name: str
    role: ModelRole
    backend: str
    hosting: str
    context_length: int
    dimensions: int = 0
    is_default: bool = False
    description: str = ""
