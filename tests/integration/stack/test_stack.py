"""``ragmesh up/status/down`` on real processes: PostgreSQL, redis, the rate limit service, Neo4j, Ray and Envoy.

The heavy parts start once per module in a throwaway home on free ports; the
tests then check readiness, idempotence, selective restarts and the errors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from mesh.stack import NotReady, PortInUse, StackConfig, Supervisor, parts
from mesh.stack.layout import StackLayout
from mesh.stack.parts import ServicePart
from mesh.stack.probes import http_get, redis_ping
from mesh.stack.service_env import store_env

pytestmark = pytest.mark.integration

INFRA = ("postgres", "redis", "ratelimit", "neo4j", "ray", "envoy")
THROWAWAY_SERVICE = Path(__file__).with_name("throwaway_service.py")


def _cli(config: StackConfig, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **config.env_vars()}
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _pids(supervisor: Supervisor) -> dict[str, int | None]:
    return {s.name: s.pid for s in supervisor.status()}


@pytest.fixture(scope="module")
def stack(
    system_parts: None, new_home: Callable[[], Path], make_stack_config: Callable[..., StackConfig]
) -> Iterator[Supervisor]:
    config = make_stack_config(new_home(), parts=INFRA)
    supervisor = Supervisor(config, say=print)
    started = time.monotonic()
    try:
        results = supervisor.up()
        timings = ", ".join(f"{r.name} {r.ready_s:.1f}s" for r in results)
        print(f"\nstack up in {time.monotonic() - started:.1f}s: {timings}")
        yield supervisor
    finally:
        for result in supervisor.down(purge=True):
            print(f"down: {result.name} {result.action} {result.stop_s:.1f}s")


def test_up_brings_every_part_up_healthy(stack: Supervisor) -> None:
    statuses = stack.status()
    assert [s.name for s in statuses] == list(INFRA)
    for status in statuses:
        assert status.healthy, f"{status.name}: {status.detail}"
        assert status.pid is not None
        assert Path(f"/proc/{status.pid}").exists()
        assert status.log_file.is_file()


def test_status_json_shape(stack: Supervisor) -> None:
    done = _cli(stack.config, "status", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [p["name"] for p in doc["parts"]] == list(INFRA)
    for part in doc["parts"]:
        assert {"name", "healthy", "address", "pid", "log_file"} <= part.keys()
        assert part["healthy"] is True
        assert isinstance(part["pid"], int)
    metrics = {p["name"]: p["metrics_url"] for p in doc["parts"]}
    config = stack.config
    assert metrics["envoy"] == f"http://{config.host}:{config.envoy_admin_port}/stats/prometheus"
    assert metrics["ratelimit"] == f"http://{config.host}:{config.ratelimit_metrics_port}/metrics"
    assert metrics["redis"] == ""
    assert doc["global_rate_limit"]["state"] == "enforcing", doc["global_rate_limit"]
    table = _cli(stack.config, "status")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["NAME", "HEALTHY", "ADDRESS", "PID", "RESTARTS", "METRICS", "LOG"]


def test_up_again_is_a_no_op(stack: Supervisor) -> None:
    before = _pids(stack)
    results = stack.up()
    assert {r.action for r in results} == {"kept"}
    assert _pids(stack) == before
    done = _cli(stack.config, "up")
    assert done.returncode == 0, done.stderr
    assert "nothing to start" in done.stdout
    assert _pids(stack) == before


def test_a_killed_part_is_restarted_alone(stack: Supervisor) -> None:
    before = _pids(stack)
    redis_pid = before["redis"]
    assert redis_pid is not None
    os.killpg(redis_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while stack.status(["redis"])[0].state != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.status(["redis"])[0].healthy is False
    done = _cli(stack.config, "status", "--json")
    assert done.returncode == 1
    assert {p["name"]: p["healthy"] for p in json.loads(done.stdout)["parts"]}["redis"] is False

    results = {r.name: r.action for r in stack.up()}
    # The rate limit service holds a pool of Redis connections that notices a lost Redis only
    # lazily: it is restarted with the Redis under it, and nothing else is.
    assert results == {name: "kept" for name in INFRA} | {"redis": "restarted", "ratelimit": "restarted"}
    after = _pids(stack)
    assert after["redis"] not in (None, redis_pid)
    moved = {"redis", "ratelimit"}
    assert {k: v for k, v in after.items() if k not in moved} == {k: v for k, v in before.items() if k not in moved}
    assert redis_ping(stack.config.host, stack.config.redis_port).ok
    assert all(s.healthy for s in stack.status())
    # Status shows the restarts and why.
    shown = {s.name: s for s in stack.status()}
    redis_restart, ratelimit_restart = shown["redis"].last_restart, shown["ratelimit"].last_restart
    assert shown["redis"].restarts >= 1 and redis_restart is not None
    assert redis_restart.reason == f"it was not running (pid {redis_pid} had exited)"
    assert redis_restart.pid == after["redis"]
    assert ratelimit_restart is not None and ratelimit_restart.reason == "redis restarted under it"
    assert shown["postgres"].restarts == 0 and shown["postgres"].last_restart is None
    table = _cli(stack.config, "status").stdout
    assert f"redis: restarted {shown['redis'].restarts}x by ragmesh up, last at {redis_restart.at}:" in table


def test_an_unhealthy_part_is_stopped_and_restarted(stack: Supervisor) -> None:
    before = _pids(stack)
    envoy_pid = before["envoy"]
    assert envoy_pid is not None
    os.kill(envoy_pid, signal.SIGSTOP)  # alive, but answers nothing
    try:
        status = stack.status(["envoy"])[0]
        assert (status.state, status.healthy) == ("unhealthy", False)
        results = {r.name: r.action for r in stack.up()}
    finally:
        if Path(f"/proc/{envoy_pid}").exists():
            os.kill(envoy_pid, signal.SIGCONT)
    assert results["envoy"] == "restarted"
    assert all(action == "kept" for name, action in results.items() if name != "envoy")
    last = stack.status(["envoy"])[0].last_restart
    assert last is not None and last.reason.startswith("it was running but unhealthy")
    after = _pids(stack)
    assert after["envoy"] != envoy_pid
    assert not Path(f"/proc/{envoy_pid}").exists() or "Z" in Path(f"/proc/{envoy_pid}/stat").read_text().split()[2]


def test_a_changed_configuration_restarts_only_that_part(stack: Supervisor) -> None:
    before = _pids(stack)
    changed = Supervisor(dataclasses.replace(stack.config, edge_rate_limit_max_tokens=999))
    results = {r.name: r.action for r in changed.up()}
    assert results == {name: "kept" for name in INFRA} | {"envoy": "restarted"}
    assert "max_tokens: 999" in changed.layout.envoy_config_file.read_text()
    last = changed.status(["envoy"])[0].last_restart
    assert last is not None and last.reason == "its command or configuration changed"
    after = _pids(stack)
    assert after["envoy"] != before["envoy"]
    assert {k: v for k, v in after.items() if k != "envoy"} == {k: v for k, v in before.items() if k != "envoy"}
    assert {r.name: r.action for r in stack.up()}["envoy"] == "restarted"  # back to the module's config


def test_postgres_has_the_ragmesh_role_and_database(stack: Supervisor) -> None:
    config = stack.config
    psql = str(config.postgres_bin_dir / "psql")
    base = [psql, "-X", "-h", config.host, "-p", str(config.postgres_port), "-U", "ragmesh", "-d", "ragmesh", "-tAc"]
    ok = subprocess.run(
        [*base, "SELECT current_user || '@' || current_database()"],
        env={**os.environ, "PGPASSWORD": "ragmesh"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.stdout.strip() == "ragmesh@ragmesh", ok.stderr
    wrong = subprocess.run(
        [*base, "SELECT 1"], env={**os.environ, "PGPASSWORD": "wrong"}, capture_output=True, text=True, check=False
    )
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr


def test_redis_keeps_an_append_only_file(stack: Supervisor) -> None:
    with socket.create_connection((stack.config.host, stack.config.redis_port), timeout=2) as sock:
        sock.sendall(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$10\r\nappendonly\r\n")
        reply = sock.recv(256)
    assert b"yes" in reply
    assert (StackLayout(stack.config.home).data("redis")).is_dir()


def test_neo4j_answers_with_auth_and_has_fulltext_indexes(stack: Supervisor) -> None:
    import neo4j

    config = stack.config
    uri = f"bolt://{config.host}:{config.neo4j_bolt_port}"
    with neo4j.GraphDatabase.driver(uri, auth=(config.neo4j_user, config.neo4j_password)) as driver:
        driver.execute_query(
            "CREATE FULLTEXT INDEX entity_names IF NOT EXISTS FOR (e:Entity) ON EACH [e.name]", database_="neo4j"
        )
        driver.execute_query("MERGE (:Entity {name: 'kube-scheduler', tenant: 't1'})", database_="neo4j")
        driver.execute_query("CALL db.awaitIndexes(60)", database_="neo4j")
        records, _, _ = driver.execute_query(
            "CALL db.index.fulltext.queryNodes('entity_names', 'scheduler') YIELD node RETURN node.name AS name",
            database_="neo4j",
        )
        assert [r["name"] for r in records] == ["kube-scheduler"]
    with (
        neo4j.GraphDatabase.driver(uri, auth=(config.neo4j_user, "wrong")) as driver,
        pytest.raises(neo4j.exceptions.AuthError),
    ):
        driver.verify_connectivity()


def test_ray_needs_the_token_and_clients_get_it_from_the_environment(stack: Supervisor) -> None:
    config = stack.config
    with grpc.insecure_channel(f"{config.host}:{config.ray_gcs_port}") as channel:
        call = channel.unary_unary(
            "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # What a service gets from the stack; a token another Ray instance of this session left behind is not it.
    inherited = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN"}
    env = {**inherited, **store_env(config, StackLayout(config.home))}
    script = "import ray; ray.init(log_to_driver=False); print(int(ray.cluster_resources()['CPU'])); ray.shutdown()"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(config.ray_num_cpus)


def test_envoy_admin_exports_prometheus_stats(stack: Supervisor) -> None:
    status, body = http_get(f"http://{stack.config.host}:{stack.config.envoy_admin_port}/stats/prometheus")
    assert status == 200
    assert "envoy_cluster_upstream_cx_total" in body
    assert 'envoy_cluster_name="svc_agent"' in body


def test_a_service_part_is_supervised_like_the_rest(stack: Supervisor, tmp_path: Path) -> None:
    env_dump = tmp_path / "env.json"

    class ThrowawayAgent(ServicePart):
        def ensure_installed(self, say: Callable[[str], None]) -> None:
            pass

        def launch(self):  # type: ignore[no-untyped-def]
            launch = super().launch()
            launch.argv[1:] = [str(THROWAWAY_SERVICE), str(env_dump)]
            return launch

    stack.parts["svc_agent"] = ThrowawayAgent("svc_agent", stack.config, stack.layout)
    try:
        before = _pids(stack)
        results = {r.name: r.action for r in stack.up(["svc_agent"])}
        assert results == {"postgres": "kept", "redis": "kept", "neo4j": "kept", "ray": "kept", "svc_agent": "started"}
        (status,) = stack.status(["svc_agent"])
        assert status.healthy, status.detail
        assert {k: v for k, v in _pids(stack).items() if k in before} == before
        got = json.loads(env_dump.read_text())
        assert got["RAGMESH_AGENT_PORT"] == str(stack.config.svc_agent_port)
        assert got["RAGMESH_NEO4J_URI"] == f"bolt://{stack.config.host}:{stack.config.neo4j_bolt_port}"
        assert got["RAY_AUTH_MODE"] == "token"
        assert stack.up(["svc_agent"])[-1].action == "kept"
    finally:
        (down,) = stack.down(["svc_agent"])
    assert down.action == "stopped"
    assert "throwaway service: stopped" in stack.parts["svc_agent"].log_file.read_text()
    assert stack.status(["svc_agent"])[0].state == "stopped"


def test_a_port_held_by_a_foreign_socket_is_reported(
    system_parts: None, scratch_home: Path, make_stack_config: Callable[..., StackConfig]
) -> None:
    config = make_stack_config(scratch_home, parts=("redis",))
    with socket.socket() as holder:
        holder.bind((config.host, config.redis_port))
        holder.listen()
        with pytest.raises(PortInUse) as caught:
            Supervisor(config).up()
        text = str(caught.value)
        assert text.startswith(f"redis: port {config.host}:{config.redis_port} is already in use by pid {os.getpid()}")
        assert "RAGMESH_REDIS_PORT=<port>" in text
        done = _cli(config, "up")
        assert done.returncode == 1
        assert f"redis: port {config.host}:{config.redis_port} is already in use" in done.stderr
    assert not (scratch_home / "run" / "redis.pid").exists()


def test_a_part_that_cannot_start_shows_its_log(
    system_parts: None, scratch_home: Path, make_stack_config: Callable[..., StackConfig]
) -> None:
    config = make_stack_config(scratch_home, parts=("neo4j",), neo4j_heap_mb=64 * 1024 * 1024)
    supervisor = Supervisor(config)
    with pytest.raises(NotReady) as caught:
        supervisor.up()
    text = str(caught.value)
    assert text.startswith("neo4j: exited with code 1 before it was ready")
    assert f"log: {scratch_home / 'logs' / 'neo4j.log'}" in text
    assert "last " in text and "heap" in text.lower()
    assert supervisor.status()[0].state == "stopped"


def _zombie(cwd: Path | None = None, user: str | None = None) -> subprocess.Popen[bytes]:
    """A child that has exited and is not reaped yet: its pid still answers a signal (from ``user``)."""
    child = subprocess.Popen(["true"], cwd=cwd, user=user)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return child


def test_postgres_starts_again_over_the_lock_files_of_a_postmaster_nobody_has_reaped(
    system_parts: None, scratch_home: Path, make_stack_config: Callable[..., StackConfig]
) -> None:
    # A killed postmaster whose parent had exited stays a zombie until init reaps it, and PostgreSQL
    # refused to start while the pid in its lock files answered a signal ("lock file already exists").
    config = make_stack_config(scratch_home, parts=("postgres",))
    supervisor = Supervisor(config)
    supervisor.up()
    data, sockets = scratch_home / "data" / "postgres", scratch_home / "run" / "postgres"
    contents = (data / "postmaster.pid").read_text().splitlines()
    supervisor.down()
    # The postmaster's own user: PostgreSQL takes a pid it may not signal for someone else's.
    zombie = _zombie(user=config.postgres_os_user if os.geteuid() == 0 else None)
    try:
        stale = "\n".join([str(zombie.pid), *contents[1:]]) + "\n"
        (data / "postmaster.pid").write_text(stale)
        (sockets / f".s.PGSQL.{config.postgres_port}.lock").write_text(stale)
        assert [r.action for r in supervisor.up()] == ["started"]
        assert supervisor.status()[0].healthy
        assert (data / "postmaster.pid").read_text().split()[0] != str(zombie.pid)
    finally:
        zombie.wait()
        supervisor.down(purge=True)


def test_a_live_process_in_the_data_directory_keeps_its_lock_files(tmp_path: Path) -> None:
    held = subprocess.Popen(["sleep", "30"], cwd=tmp_path)
    try:
        assert parts._runs_in(tmp_path, "sleep")
    finally:
        held.kill()
        held.wait()
    assert not parts._runs_in(tmp_path, "sleep")
    zombie = _zombie(tmp_path)
    try:
        assert not parts._runs_in(tmp_path, "sleep")
    finally:
        zombie.wait()
    assert not parts._runs_in(tmp_path, "postgres")


def _redis(config: StackConfig, *command: str) -> bytes:
    parts = [f"${len(arg)}\r\n{arg}\r\n" for arg in command]
    with socket.create_connection((config.host, config.redis_port), timeout=2) as sock:
        sock.sendall(f"*{len(command)}\r\n{''.join(parts)}".encode())
        return sock.recv(256)


def test_down_keeps_data_and_purge_deletes_it(
    system_parts: None, scratch_home: Path, make_stack_config: Callable[..., StackConfig]
) -> None:
    config = make_stack_config(scratch_home, parts=("redis",))
    supervisor = Supervisor(config)
    supervisor.up()
    assert _redis(config, "SET", "k", "v") == b"+OK\r\n"
    assert [r.action for r in supervisor.down() if r.name == "redis"] == ["stopped"]
    assert (scratch_home / "data" / "redis").is_dir()
    assert [r.action for r in supervisor.up()] == ["started"]  # a clean down leaves no pid file
    assert _redis(config, "GET", "k") == b"$1\r\nv\r\n"
    supervisor.down(purge=True)
    assert not (scratch_home / "data").exists()
    assert (scratch_home / "logs" / "redis.log").is_file()  # logs stay
    supervisor.up()
    assert _redis(config, "GET", "k") == b"$-1\r\n"
    supervisor.down(purge=True)


def test_neo4j_with_a_changed_password_fails_fast_and_says_why(stack: Supervisor) -> None:
    wrong = Supervisor(dataclasses.replace(stack.config, neo4j_password="not-the-first-one"))
    (status,) = wrong.status(["neo4j"])
    assert status.state == "unhealthy"
    assert "Unauthorized" in status.detail or "authentication" in status.detail.lower()
    assert "down --only neo4j --purge" in status.detail
