"""Where the mesh's parts are: addresses every service may need.

The local stack supervisor sets these for the processes it starts; on
Kubernetes they come from the ConfigMap. Env prefix ``RAGMESH``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mesh.config import EnvConfig


@dataclasses.dataclass(frozen=True)
class MeshSettings(EnvConfig):
    """Addresses of the services and stores of one mesh."""

    env_prefix = "RAGMESH"

    home: Path = Path(".ragmesh")
    """Data and run directory of the local stack."""
    inference_addr: str = "127.0.0.1:50051"
    """host:port of svc_inference."""
    retrieval_addr: str = "127.0.0.1:50052"
    """host:port of svc_retrieval (RetrievalService and IndexService)."""
    ingest_addr: str = "127.0.0.1:50053"
    """host:port of svc_ingest."""
    sandbox_addr: str = "127.0.0.1:50054"
    """host:port of svc_sandbox."""
    agent_addr: str = "127.0.0.1:50055"
    """host:port of svc_agent."""
    edge_addr: str = "127.0.0.1:8080"
    """host:port of the Envoy edge listener."""
    postgres_dsn: str = "postgresql://ragmesh:ragmesh@127.0.0.1:55432/ragmesh"
    """PostgreSQL connection string."""
    redis_url: str = "redis://127.0.0.1:56379/0"
    """Redis URL."""
    neo4j_uri: str = "bolt://127.0.0.1:57687"
    """Neo4j Bolt URI."""
    neo4j_user: str = "neo4j"
    """Neo4j user."""
    neo4j_password: str = "ragmesh-dev"
    """Neo4j password."""
    ray_address: str = "127.0.0.1:56380"
    """Ray GCS address of the head node."""
    auth_jwks_file: Path | None = None
    """JWKS (public keys) every caller's token is verified against; services refuse to start without it."""
    auth_issuer: str = "ragmesh-local"
    """The ``iss`` every token must carry."""
    auth_audience: str = "ragmesh"
    """The ``aud`` of tokens for people and programs (the only audience the edge accepts)."""
    auth_internal_audience: str = "ragmesh-internal"
    """The ``aud`` of the mesh services' own tokens (accepted by services, never by the edge)."""
    auth_clock_skew_s: float = 30.0
    """Clock skew allowed when checking ``exp`` and ``nbf``, in seconds."""
