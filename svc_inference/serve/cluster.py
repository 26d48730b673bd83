"""Joining Ray: the local head when it is up, else a private lean instance; token auth decided on purpose.

Ray 2.60 turns token authentication on by default for clusters that ``ray.init()``
starts and writes ``~/.ray/auth_token`` when none exists; ``ray start --head``
turns it on only when such a token already exists; a client joining an explicit
address never turns it on by itself. So the service decides:

- joining a head: follow RAY_AUTH_MODE / RAY_AUTH_TOKEN_PATH when the local
  stack set them; otherwise use a token when one is configured or
  ``~/.ray/auth_token`` exists (the rule ``ray start`` itself follows), and none
  when there is none;
- starting a private instance: token auth with a fresh random token held only
  in this process's environment (its Ray children inherit it). Nothing is
  written to ``~/.ray``, so this never flips later ``ray start`` runs on the
  machine into token mode.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Any

from mesh.config import ConfigError
from svc_inference.config import Config, RayEnvironment

log = logging.getLogger(__name__)

DEFAULT_TOKEN_PATH = Path.home() / ".ray" / "auth_token"
_LOCAL_START_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class RaySetup:
    """How to reach Ray."""

    address: str
    namespace: str = "ragmesh"
    start_local: bool = True
    local_num_cpus: int = 0
    auth: str = "auto"
    auth_token_path: Path | None = None
    connect_timeout_s: float = 2.0
    environment: RayEnvironment = dataclasses.field(default_factory=lambda: RayEnvironment("", None, False))

    @classmethod
    def from_config(cls, config: Config, address: str, environment: RayEnvironment) -> RaySetup:
        """The setup a service config and the mesh's Ray address describe."""
        return cls(
            address=address,
            namespace=config.ray_namespace,
            start_local=config.ray_start_local,
            local_num_cpus=config.ray_local_num_cpus,
            auth=config.ray_auth,
            auth_token_path=config.ray_auth_token_path,
            connect_timeout_s=config.ray_connect_timeout_s,
            environment=environment,
        )


@dataclasses.dataclass
class RayConnection:
    """This process's tie to Ray; ``close`` ends what ``connect`` began."""

    address: str
    started_local: bool
    owned: bool
    """Whether this process called ray.init (and so shuts it down)."""

    def close(self) -> None:
        """Disconnects; a private instance this process started goes away with it."""
        if self.owned:
            import ray

            ray.shutdown()
            self.owned = False


def prepare_process() -> None:
    """Environment every Ray driver of the mesh needs, set before Ray starts any worker."""
    # A driver started with `uv run` would otherwise make Ray rebuild a uv environment (without
    # the project) for every worker; workers must use the interpreter and packages of the head.
    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray reads that switch once, when it is imported; a process that imported Ray already
    # (a test session, a notebook) needs the module's copy turned off too.
    constants: Any = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False


def connect(setup: RaySetup) -> RayConnection:
    """Joins the head at ``setup.address`` if it answers, else starts a private instance (if allowed)."""
    prepare_process()
    import ray

    if ray.is_initialized():
        return RayConnection(address="(already connected)", started_local=False, owned=False)
    if head_reachable(setup.address, setup.connect_timeout_s):
        configure_join_auth(setup)
        ray.init(
            address=setup.address,
            namespace=setup.namespace,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        log.info("joined the Ray head", extra={"fields": {"ray_address": setup.address}})
        return RayConnection(address=setup.address, started_local=False, owned=True)
    if not setup.start_local:
        raise ConnectionError(
            f"the Ray head at {setup.address} is not reachable and starting a private instance is off "
            "(RAGMESH_INFERENCE_RAY_START_LOCAL=false)"
        )
    log.warning(
        "the Ray head is not reachable; starting a private Ray instance",
        extra={"fields": {"ray_address": setup.address}},
    )
    return start_local(setup.local_num_cpus or os.cpu_count() or 1, setup.namespace)


def start_local(num_cpus: int, namespace: str = "ragmesh", *, log_to_driver: bool = False) -> RayConnection:
    """Starts a private Ray instance in this process: no dashboard, token auth with an in-memory token."""
    prepare_process()
    import ray

    # Ray starts workers at niceness 15; this instance exists to serve models, whose replicas are
    # the latency-critical processes here (see serve.deployments.serve_at_normal_priority).
    os.environ.setdefault("RAY_worker_niceness", "0")
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    _reload_auth_settings()
    for attempt in range(1, _LOCAL_START_ATTEMPTS + 1):
        try:
            context: Any = ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                namespace=namespace,
                log_to_driver=log_to_driver,
                logging_level=logging.WARNING,
            )
            break
        except Exception as exc:
            # Ray gives its raylet a fixed 30 s to register; on a 2-core machine under load that is
            # sometimes not enough, and a second try usually is.
            if "timed out during startup" not in str(exc) or attempt == _LOCAL_START_ATTEMPTS:
                raise
            log.warning("the private Ray instance did not start in time (attempt %d); retrying", attempt)
            ray.shutdown()
    return RayConnection(address=str(context.address_info.get("gcs_address", "local")), started_local=True, owned=True)


def configure_join_auth(setup: RaySetup) -> None:
    """Sets RAY_AUTH_MODE (and the token path) for joining an existing head, per ``setup.auth``."""
    env = setup.environment
    if setup.auth == "disabled":
        os.environ["RAY_AUTH_MODE"] = "disabled"
        _reload_auth_settings()
        return
    path = setup.auth_token_path or env.auth_token_path
    if setup.auth == "auto":
        if setup.auth_token_path is None and env.auth_mode:
            return  # whoever started us said what to do (the local stack sets token mode and the path)
        if path is None and not env.has_token_value:
            if not DEFAULT_TOKEN_PATH.is_file():
                return  # no token anywhere: the head cannot be using one that we could present
            path = DEFAULT_TOKEN_PATH
    if path is not None and not path.is_file():
        raise ConfigError(f"Ray token authentication: token file {path} does not exist")
    if path is None and not env.has_token_value:
        if not DEFAULT_TOKEN_PATH.is_file():
            raise ConfigError(
                "ray_auth is token but no token was found: set RAGMESH_INFERENCE_RAY_AUTH_TOKEN_PATH, "
                "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN"
            )
        path = DEFAULT_TOKEN_PATH
    os.environ["RAY_AUTH_MODE"] = "token"
    if path is not None:
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
    _reload_auth_settings()


def _reload_auth_settings() -> None:
    # Ray reads RAY_AUTH_MODE and the token into C++ caches when it is imported; after changing
    # them it must re-read both, as Ray itself does when it turns token auth on by default.
    raylet: Any = importlib.import_module("ray._raylet")
    raylet.Config.initialize("")
    raylet.AuthenticationTokenLoader.instance().reset_cache()


def head_reachable(address: str, timeout_s: float) -> bool:
    """Whether something accepts connections at the head's GCS ``host:port``."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False
