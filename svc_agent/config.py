"""Configuration of svc_agent: the only module that reads its environment (prefix ``RAGMESH_AGENT``).

Addresses of the other services and of the stores come from
``mesh.settings.MeshSettings`` (prefix ``RAGMESH``); this holds how the agent
itself plans, answers and caches.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mesh.config import ConfigError
from mesh.server import ServerConfig
from svc_agent.domain.evidence import Thresholds
from svc_agent.domain.settings import AgentSettings, PlannerMode

SEMANTIC_CACHE_BACKENDS = ("edge", "qdrant", "off")


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_agent; env prefix ``RAGMESH_AGENT``."""

    env_prefix = "RAGMESH_AGENT"

    port: int = 50055
    """Port of the gRPC server."""
    llm_model: str = ""
    """LLM to generate with, as InferenceService lists it; empty means its default."""
    embed_model: str = ""
    """Embedding model for the semantic cache and attribution; empty means the default."""
    default_top_k: int = 4
    """Sources retrieved and shown to the model when a request does not say."""
    max_prompt_sources: int = 8
    """Most sources put in the responder prompt, whatever a request asks."""
    source_chars: int = 600
    """Characters of each source in the responder prompt."""
    history_messages: int = 6
    """Messages of the session the rewrite step reads."""
    answer_max_tokens: int = 160
    """Most tokens of an answer."""
    temperature: float = 0.0
    """Sampling temperature of the responder (0 is greedy)."""
    repeat_penalty: float = 1.3
    """Repeat penalty of every generation (1 is none, at most 2)."""
    planner_mode: str = "auto"
    """When the planner asks the model: rules, auto (when the rules are unsure) or model (always)."""
    planner_max_tokens: int = 64
    """Most tokens of the model's plan."""
    rewrite_with_model: bool = True
    """Also ask the model to rewrite follow-ups that need resolving (its rewrite is checked before use)."""
    rewrite_max_tokens: int = 48
    """Most tokens of the model's rewrite."""
    hyde_max_tokens: int = 96
    """Most tokens of a HyDE passage."""
    min_relevance: float = 0.3
    """Best question-source cosine below which the agent declines."""
    strong_relevance: float = 0.5
    """Best question-source cosine from which no corrective search is needed."""
    min_coverage: float = 0.6
    """Share of the question's specific terms the corpus must mention, or the agent declines."""
    corrective_max_attempts: int = 2
    """Most extra searches when the evidence is weak."""
    attribution_min_similarity: float = 0.4
    """Least sentence-source cosine for post-hoc attribution to cite a source."""
    attribution_standing_weight: float = 1.0
    """Weight of a source's standing in retrieval's order beside its similarity to the sentence, in attribution."""
    attribution_standing_decay: float = 0.5
    """How fast standing falls with rank in attribution: the i-th source (from 0) stands at 1 / (1 + decay * i)."""
    attribution_min_own_similarity: float = 0.25
    """Least similarity of an answer sentence to some source before attribution credits it at all."""
    attribution_lexical_weight: float = 0.5
    """Weight of the share of an answer sentence's own words and numbers a source contains, in attribution."""
    attribution_tie_band: float = 0.05
    """Sources whose support of an answer sentence is within this of the best one's are cited too."""
    attribution_short_claim_words: int = 8
    """Answer sentences shorter than this (in words) are embedded with the question for attribution."""
    max_term_lookups: int = 4
    """Most specific terms looked up in the corpus when the retrieved sources do not mention them."""
    attribution_source_chars: int = 1500
    """Characters of each source embedded for attribution."""
    graph_depth: int = 1
    """Hops of graph exploration (1 to 3)."""
    graph_max_nodes: int = 25
    """Most nodes one graph exploration returns (at most 200)."""
    tool_output_chars: int = 2000
    """Characters of a tool's output kept in the answer."""
    exact_cache_enabled: bool = True
    """Whether the exact-match answer cache (Redis) is used."""
    exact_cache_ttl_s: int = 86_400
    """Seconds an exact-match entry lives."""
    semantic_cache_backend: str = "edge"
    """Semantic cache: edge (embedded Qdrant Edge shard), qdrant (a Qdrant server) or off."""
    semantic_cache_path: Path | None = None
    """Directory of the embedded shard; empty means <RAGMESH_HOME>/data/svc_agent/semantic_cache."""
    semantic_cache_url: str = ""
    """URL of the Qdrant server when the backend is qdrant."""
    semantic_cache_collection: str = "agent_semantic_cache"
    """Collection name when the backend is qdrant."""
    semantic_cache_min_similarity: float = 0.92
    """Least question-question cosine for the semantic cache to answer."""
    semantic_cache_ttl_s: int = 86_400
    """Seconds a semantic cache entry lives."""
    postgres_pool_min_size: int = 1
    """Connections the chat-memory pool keeps open."""
    postgres_pool_max_size: int = 10
    """Most connections of the chat-memory pool."""
    store_timeout_s: float = 5.0
    """Longest a Postgres call may take (less when the request's deadline is nearer)."""
    apply_migrations: bool = True
    """Apply the project's pending Postgres migrations at start (idempotent; ``ragmesh up`` also does)."""

    def __post_init__(self) -> None:
        if self.planner_mode not in {m.value for m in PlannerMode}:
            raise ConfigError(f"RAGMESH_AGENT_PLANNER_MODE must be rules, auto or model, not {self.planner_mode!r}")
        if self.semantic_cache_backend not in SEMANTIC_CACHE_BACKENDS:
            raise ConfigError(
                f"RAGMESH_AGENT_SEMANTIC_CACHE_BACKEND must be one of {', '.join(SEMANTIC_CACHE_BACKENDS)}, "
                f"not {self.semantic_cache_backend!r}"
            )
        if self.semantic_cache_backend == "qdrant" and not self.semantic_cache_url:
            raise ConfigError("RAGMESH_AGENT_SEMANTIC_CACHE_URL is required when the semantic cache backend is qdrant")
        if not 1.0 <= self.repeat_penalty <= 2.0:
            raise ConfigError("RAGMESH_AGENT_REPEAT_PENALTY must be between 1 and 2")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError("RAGMESH_AGENT_TEMPERATURE must be between 0 and 2")
        if not 1 <= self.graph_depth <= 3 or not 1 <= self.graph_max_nodes <= 200:
            raise ConfigError("RAGMESH_AGENT_GRAPH_DEPTH must be 1-3 and RAGMESH_AGENT_GRAPH_MAX_NODES 1-200")
        if not 1 <= self.default_top_k <= 20 or self.max_prompt_sources < 1:
            raise ConfigError("RAGMESH_AGENT_DEFAULT_TOP_K must be 1-20 and RAGMESH_AGENT_MAX_PROMPT_SOURCES >= 1")
        if not self.min_relevance <= self.strong_relevance:
            raise ConfigError("RAGMESH_AGENT_MIN_RELEVANCE must not exceed RAGMESH_AGENT_STRONG_RELEVANCE")
        for name in ("answer_max_tokens", "planner_max_tokens", "rewrite_max_tokens", "hyde_max_tokens"):
            if not 1 <= getattr(self, name) <= 8192:
                raise ConfigError(f"RAGMESH_AGENT_{name.upper()} must be 1-8192")

    def agent_settings(self) -> AgentSettings:
        """The loop's settings."""
        return AgentSettings(
            default_top_k=self.default_top_k,
            max_prompt_sources=self.max_prompt_sources,
            source_chars=self.source_chars,
            history_messages=self.history_messages,
            answer_max_tokens=self.answer_max_tokens,
            temperature=self.temperature,
            repeat_penalty=self.repeat_penalty,
            planner_mode=PlannerMode(self.planner_mode),
            planner_max_tokens=self.planner_max_tokens,
            rewrite_with_model=self.rewrite_with_model,
            rewrite_max_tokens=self.rewrite_max_tokens,
            hyde_max_tokens=self.hyde_max_tokens,
            thresholds=Thresholds(self.min_relevance, self.strong_relevance, self.min_coverage),
            corrective_max_attempts=self.corrective_max_attempts,
            attribution_min_similarity=self.attribution_min_similarity,
            attribution_source_chars=self.attribution_source_chars,
            attribution_standing_weight=self.attribution_standing_weight,
            attribution_standing_decay=self.attribution_standing_decay,
            attribution_min_own_similarity=self.attribution_min_own_similarity,
            attribution_tie_band=self.attribution_tie_band,
            attribution_lexical_weight=self.attribution_lexical_weight,
            attribution_short_claim_words=self.attribution_short_claim_words,
            max_term_lookups=self.max_term_lookups,
            semantic_cache_min_similarity=self.semantic_cache_min_similarity,
            graph_depth=self.graph_depth,
            graph_max_nodes=self.graph_max_nodes,
            tool_output_chars=self.tool_output_chars,
        )

    def semantic_cache_dir(self, home: Path) -> Path:
        """Where the embedded semantic cache shard lives."""
        return self.semantic_cache_path or home / "data" / "svc_agent" / "semantic_cache"
