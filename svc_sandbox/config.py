"""Configuration of svc_sandbox: the only module that reads its environment (prefix ``RAGMESH_SANDBOX``).

``Config`` holds the gRPC server's settings and nests the sandbox's own
(``domain/settings.py``), which keep their flat names:
``RAGMESH_SANDBOX_MAX_WALL_TIMEOUT_MS`` sets ``settings.max_wall_timeout_ms``.
"""

from __future__ import annotations

import dataclasses

from mesh.config import ConfigError
from mesh.server import ServerConfig
from svc_sandbox.domain.settings import SandboxSettings


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_sandbox; env prefix ``RAGMESH_SANDBOX``."""

    env_prefix = "RAGMESH_SANDBOX"

    port: int = 50054
    """Port of the gRPC server."""
    settings: SandboxSettings = dataclasses.field(default_factory=SandboxSettings)
    """Isolation, per-execution limits and fair use (``domain/settings.py``); each field is
    read as ``RAGMESH_SANDBOX_<FIELD>``."""

    def __post_init__(self) -> None:
        """Reject sandbox settings that contradict each other, so a bad deploy fails at startup."""
        sandbox = self.settings
        pairs = (
            ("default_wall_timeout_ms", "max_wall_timeout_ms"),
            ("default_cpu_time_ms", "max_cpu_time_ms"),
            ("default_memory_bytes", "max_memory_bytes"),
            ("min_memory_bytes", "default_memory_bytes"),
            ("default_output_bytes", "max_output_bytes"),
            ("max_input_file_bytes", "max_input_total_bytes"),
        )
        for low, high in pairs:
            if getattr(sandbox, low) > getattr(sandbox, high):
                raise ConfigError(f"{self.env_prefix}_{low.upper()} must not exceed {self.env_prefix}_{high.upper()}")
        positive = (
            "default_wall_timeout_ms",
            "default_cpu_time_ms",
            "min_memory_bytes",
            "default_output_bytes",
            "max_code_bytes",
            "work_dir_bytes",
            "scratch_dir_bytes",
            "max_file_size_bytes",
            "max_processes",
            "max_open_files",
            "max_executions_per_tenant",
            "queue_timeout_s",
        )
        for name in positive:
            if getattr(sandbox, name) <= 0:
                raise ConfigError(f"{self.env_prefix}_{name.upper()} must be positive")
        for name in ("max_concurrent_executions", "max_queued_executions", "max_input_files"):
            if getattr(sandbox, name) < 0:
                raise ConfigError(f"{self.env_prefix}_{name.upper()} must not be negative")
