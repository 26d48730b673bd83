"""Configuration of svc_inference: the only module that reads its environment."""

from __future__ import annotations

import dataclasses

from mesh.server import ServerConfig


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_inference; env prefix ``RAGMESH_INFERENCE``."""

    env_prefix = "RAGMESH_INFERENCE"

    port: int = 50051
    """Port of the gRPC server."""
