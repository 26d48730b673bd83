from __future__ import annotations

from pathlib import Path

from mesh.stack.errors import MissingBinary, NotReady, PortInUse, StackError


def test_stack_error_names_part_log_and_fix() -> None:
    error = StackError("redis", "it broke", fix="do this", log_file=Path("/x/logs/redis.log"))
    text = str(error)
    assert text.startswith("redis: it broke")
    assert "log: /x/logs/redis.log" in text
    assert "fix: do this" in text


def test_missing_binary_says_how_to_install() -> None:
    text = str(MissingBinary("neo4j", "java", "apt-get install openjdk-17-jre-headless"))
    assert "neo4j" in text and "'java'" in text and "openjdk-17-jre-headless" in text


def test_port_in_use_names_holder_and_setting() -> None:
    error = PortInUse("redis", "127.0.0.1", 56379, "pid 42 (nc -l 56379)", "RAGMESH_REDIS_PORT")
    text = str(error)
    assert "redis: port 127.0.0.1:56379 is already in use by pid 42 (nc -l 56379)" in text
    assert "RAGMESH_REDIS_PORT=<port>" in text
    assert error.port == 56379


def test_not_ready_shows_the_log_tail() -> None:
    lines = [f"line {i}" for i in range(20)]
    text = str(NotReady("neo4j", "not ready after 120s", Path("/h/logs/neo4j.log"), lines, fix="check java"))
    assert "neo4j: not ready after 120s" in text
    assert "log: /h/logs/neo4j.log" in text
    assert "last 20 lines of the log" in text
    assert "| line 0" in text and "| line 19" in text
    assert "fix: check java" in text


def test_not_ready_with_empty_log() -> None:
    assert "(the log is empty)" in str(NotReady("ray", "exited", Path("/l"), []))
