"""Configuration of svc_sandbox: the only module that reads its environment."""

from __future__ import annotations

import dataclasses

from mesh.server import ServerConfig


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_sandbox; env prefix ``RAGMESH_SANDBOX``."""

    env_prefix = "RAGMESH_SANDBOX"

    port: int = 50054
    """Port of the gRPC server."""
