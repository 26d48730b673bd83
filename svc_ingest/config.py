"""Configuration of svc_ingest: the only module that reads its environment."""

from __future__ import annotations

import dataclasses

from mesh.server import ServerConfig


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_ingest; env prefix ``RAGMESH_INGEST``."""

    env_prefix = "RAGMESH_INGEST"

    port: int = 50053
    """Port of the gRPC server."""
