"""Where the stack keeps its files under the home directory."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

# A unix socket path may hold at most 107 bytes on Linux (sun_path is 108 with the NUL).
UNIX_SOCKET_PATH_MAX = 107

# Longest path Ray puts under its temp dir for a socket:
# "/session_2026-11-26_04-09-41_659825_4194304/sockets/plasma_store" plus some slack.
_RAY_SOCKET_SUFFIX_LEN = 72

# PostgreSQL's socket file name, ".s.PGSQL.<port>", plus its ".lock" twin and the slash.
_PG_SOCKET_SUFFIX_LEN = len("/.s.PGSQL.65535.lock")


@dataclasses.dataclass(frozen=True)
class StackLayout:
    """The directories and files of one stack home."""

    home: Path

    @property
    def data_dir(self) -> Path:
        """Everything the stores persist; ``ragmesh down --purge`` deletes it."""
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    def data(self, part: str) -> Path:
        return self.data_dir / part

    def log_file(self, part: str) -> Path:
        """stdout and stderr of the part's process."""
        return self.logs_dir / f"{part}.log"

    def pid_file(self, part: str) -> Path:
        return self.run_dir / f"{part}.pid"

    def restarts_file(self, part: str) -> Path:
        """How often ``up`` has restarted the part since it was last started from stopped, and why."""
        return self.run_dir / f"{part}.restarts.json"

    def part_dir(self, part: str) -> Path:
        """The part's own configuration and scratch files (not data)."""
        return self.home / part

    @property
    def envoy_config_file(self) -> Path:
        return self.part_dir("envoy") / "envoy.yaml"

    @property
    def ray_token_file(self) -> Path:
        return self.secrets_dir / "ray-auth-token"

    @property
    def signing_key_file(self) -> Path:
        """The private key that signs the stack's tokens (0600)."""
        return self.secrets_dir / "jwt-signing-key.pem"

    @property
    def jwks_file(self) -> Path:
        """The public keys Envoy and the services verify tokens with."""
        return self.secrets_dir / "jwks.json"

    def service_token_file(self, service: str) -> Path:
        """The service token ``ragmesh up`` mints for ``service`` (0600)."""
        return self.secrets_dir / "tokens" / f"{service}.jwt"

    def _short_fallback(self, kind: str) -> Path:
        digest = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
        return Path("/tmp") / f"ragmesh-{kind}-{digest}"

    @property
    def ray_temp_dir(self) -> Path:
        """Ray's temp dir: under the home unless its socket paths would be too long."""
        preferred = self.part_dir("ray")
        if len(str(preferred.resolve())) + _RAY_SOCKET_SUFFIX_LEN <= UNIX_SOCKET_PATH_MAX:
            return preferred
        return self._short_fallback("ray")

    def ray_worker_temp_dir(self, part: str) -> Path:
        """A Ray worker node's own temp dir (its sockets, logs and spilled objects), like ``ray_temp_dir``."""
        preferred = self.part_dir(part)
        if len(str(preferred.resolve())) + _RAY_SOCKET_SUFFIX_LEN <= UNIX_SOCKET_PATH_MAX:
            return preferred
        return self._short_fallback(part.replace("_", "-"))

    @property
    def postgres_socket_dir(self) -> Path:
        """PostgreSQL's unix socket dir: under run/ unless the socket path would be too long."""
        preferred = self.run_dir / "postgres"
        if len(str(preferred.resolve())) + _PG_SOCKET_SUFFIX_LEN <= UNIX_SOCKET_PATH_MAX:
            return preferred
        return self._short_fallback("pg")

    def short_fallback_dirs(self) -> tuple[Path, ...]:
        """Directories outside the home this layout may use (removed by ``down --purge``)."""
        return (self._short_fallback("ray"), self._short_fallback("pg"))
