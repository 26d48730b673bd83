"""Configuration of svc_retrieval: the only module that reads its environment."""

from __future__ import annotations

import dataclasses

from mesh.server import ServerConfig


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_retrieval; env prefix ``RAGMESH_RETRIEVAL``."""

    env_prefix = "RAGMESH_RETRIEVAL"

    port: int = 50052
    """Port of the gRPC server."""
