"""Configuration of svc_inference: the only module that reads its environment."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from mesh.config import ConfigError
from mesh.server import ServerConfig

MODELS_DIR = Path(__file__).resolve().parent / "models"
"""Where the model config YAML files that ship with the service live."""

HOSTINGS = ("serve", "inprocess")
DEPLOY_MODES = ("auto", "always", "never")
RAY_AUTH_MODES = ("auto", "token", "disabled")


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "ragmesh" / "models"


@dataclasses.dataclass(frozen=True)
class RayEnvironment:
    """What Ray's own environment variables say about joining a cluster (read here, used by serve.cluster)."""

    auth_mode: str
    """RAY_AUTH_MODE as set by whoever started us (the local stack sets "token"); empty when unset."""
    auth_token_path: Path | None
    """RAY_AUTH_TOKEN_PATH, when set."""
    has_token_value: bool
    """Whether RAY_AUTH_TOKEN carries a token directly."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RayEnvironment:
        """Reads RAY_AUTH_MODE, RAY_AUTH_TOKEN_PATH and RAY_AUTH_TOKEN (its presence only)."""
        env = os.environ if environ is None else environ
        path = env.get("RAY_AUTH_TOKEN_PATH", "")
        return cls(
            auth_mode=env.get("RAY_AUTH_MODE", "").strip().lower(),
            auth_token_path=Path(path).expanduser() if path else None,
            has_token_value=bool(env.get("RAY_AUTH_TOKEN", "")),
        )


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_inference; env prefix ``RAGMESH_INFERENCE``.

    The Ray head's address is not here: it comes from ``MeshSettings.ray_address``.
    """

    env_prefix = "RAGMESH_INFERENCE"

    port: int = 50051
    """Port of the gRPC server."""
    profile: str = "local"
    """Model profile, a ``<profile>.yaml`` in models_dir: ``local`` (the packaged CPU models) or ``production``
    (vLLM Llama 3, bge-m3, bge-reranker-v2-m3)."""
    hosting: str = "serve"
    """Where models run: ``serve`` (Ray Serve deployments) or ``inprocess`` (inside this process)."""
    models_dir: Path = MODELS_DIR
    """Directory holding the profile and model YAML files."""
    model_root: Path = Path("/models")
    """Base directory of model weights named by relative ``path`` sources (production mounts them here)."""
    cache_dir: Path = dataclasses.field(default_factory=_default_cache_dir)
    """Where files assembled from packages (the GGUF) are cached between starts."""
    serve_app_prefix: str = "ragmesh-inference"
    """Ray Serve application names are ``<prefix>-<model name>``."""
    serve_deploy: str = "auto"
    """``auto``: deploy unless the running app was built from the same config and code; ``always``; ``never``
    (attach to apps someone else deployed, for example a KubeRay RayService)."""
    ray_namespace: str = "ragmesh"
    """Ray namespace this service's driver joins."""
    ray_start_local: bool = True
    """Start a private, lean Ray instance (no dashboard) when the head at ray_address is not reachable."""
    ray_local_num_cpus: int = 0
    """CPUs of that private instance; 0 means the machine's count."""
    ray_auth: str = "auto"
    """Ray token authentication when joining the head: ``auto`` follows RAY_AUTH_MODE / RAY_AUTH_TOKEN_PATH (as the
    local stack sets them) and otherwise uses a token when ~/.ray/auth_token exists (the rule ``ray start`` uses);
    ``token`` requires one; ``disabled`` sends none."""
    ray_auth_token_path: Path | None = None
    """Token file for ``ray_auth``; overrides RAY_AUTH_TOKEN_PATH."""
    ray_connect_timeout_s: float = 2.0
    """Seconds to wait for the head's GCS port before deciding it is not up."""
    startup_timeout_s: float = 900.0
    """Seconds deployments (or in-process models) get to become ready at start."""

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("hosting", self.hosting, HOSTINGS),
            ("serve_deploy", self.serve_deploy, DEPLOY_MODES),
            ("ray_auth", self.ray_auth, RAY_AUTH_MODES),
        ):
            if value not in allowed:
                raise ConfigError(f"{self.env_prefix}_{name.upper()}: expected one of {allowed}, got {value!r}")
        if self.startup_timeout_s <= 0 or self.ray_connect_timeout_s <= 0:
            raise ConfigError("timeouts must be positive")
        if self.ray_local_num_cpus < 0:
            raise ConfigError(f"{self.env_prefix}_RAY_LOCAL_NUM_CPUS must be >= 0")
