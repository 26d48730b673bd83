"""Configuration of svc_agent: the only module that reads its environment (prefix ``RAGMESH_AGENT``).

Addresses of the other services and of the stores come from
``mesh.settings.MeshSettings`` (prefix ``RAGMESH``); this holds the agent's own
server, models and stores, and nests the loop's settings (``domain/settings.py``),
which keep their flat names: ``RAGMESH_AGENT_DEFAULT_TOP_K`` sets ``settings.default_top_k``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mesh.config import ConfigError
from mesh.server import ServerConfig
from svc_agent.domain.settings import AgentSettings

SEMANTIC_CACHE_BACKENDS = ("edge", "qdrant", "off")


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_agent; env prefix ``RAGMESH_AGENT``."""

    env_prefix = "RAGMESH_AGENT"

    port: int = 50055
    """Port of the gRPC server."""
    settings: AgentSettings = dataclasses.field(default_factory=AgentSettings)
    """How the loop plans, searches, answers and caches (``domain/settings.py``); each of its
    fields, and each field of its ``thresholds``, is read as ``RAGMESH_AGENT_<FIELD>``."""
    llm_model: str = ""
    """LLM to generate with, as InferenceService lists it; empty means its default."""
    embed_model: str = ""
    """Embedding model for the semantic cache and attribution; empty means the default."""
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
        loop = self.settings
        if self.semantic_cache_backend not in SEMANTIC_CACHE_BACKENDS:
            raise ConfigError(
                f"RAGMESH_AGENT_SEMANTIC_CACHE_BACKEND must be one of {', '.join(SEMANTIC_CACHE_BACKENDS)}, "
                f"not {self.semantic_cache_backend!r}"
            )
        if self.semantic_cache_backend == "qdrant" and not self.semantic_cache_url:
            raise ConfigError("RAGMESH_AGENT_SEMANTIC_CACHE_URL is required when the semantic cache backend is qdrant")
        if not 1.0 <= loop.repeat_penalty <= 2.0:
            raise ConfigError("RAGMESH_AGENT_REPEAT_PENALTY must be between 1 and 2")
        if not 0.0 <= loop.temperature <= 2.0:
            raise ConfigError("RAGMESH_AGENT_TEMPERATURE must be between 0 and 2")
        if not 1 <= loop.graph_depth <= 3 or not 1 <= loop.graph_max_nodes <= 200:
            raise ConfigError("RAGMESH_AGENT_GRAPH_DEPTH must be 1-3 and RAGMESH_AGENT_GRAPH_MAX_NODES 1-200")
        if not 1 <= loop.default_top_k <= 20 or loop.max_prompt_sources < 1:
            raise ConfigError("RAGMESH_AGENT_DEFAULT_TOP_K must be 1-20 and RAGMESH_AGENT_MAX_PROMPT_SOURCES >= 1")
        if not loop.thresholds.min_relevance <= loop.thresholds.strong_relevance:
            raise ConfigError("RAGMESH_AGENT_MIN_RELEVANCE must not exceed RAGMESH_AGENT_STRONG_RELEVANCE")
        for name in ("answer_max_tokens", "planner_max_tokens", "rewrite_max_tokens", "hyde_max_tokens"):
            if not 1 <= getattr(loop, name) <= 8192:
                raise ConfigError(f"RAGMESH_AGENT_{name.upper()} must be 1-8192")

    def semantic_cache_dir(self, home: Path) -> Path:
        """Where the embedded semantic cache shard lives."""
        return self.semantic_cache_path or home / "data" / "svc_agent" / "semantic_cache"
