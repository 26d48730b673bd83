"""Configuration of svc_agent: the only module that reads its environment."""

from __future__ import annotations

import dataclasses

from mesh.server import ServerConfig


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_agent; env prefix ``RAGMESH_AGENT``."""

    env_prefix = "RAGMESH_AGENT"

    port: int = 50055
    """Port of the gRPC server."""
