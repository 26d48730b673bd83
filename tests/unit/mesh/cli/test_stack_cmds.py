from __future__ import annotations

from pathlib import Path

import pytest

from mesh.cli import build_parser, main
from mesh.stack import StackConfig, render_envoy_config


def test_commands_are_registered() -> None:
    parser = build_parser()
    for command in ("up", "status", "down", "envoy-config"):
        args = parser.parse_args([command])
        assert callable(args.func)


def test_only_takes_a_comma_separated_list() -> None:
    args = build_parser().parse_args(["up", "--only", "postgres, redis", "--no-deps"])
    assert args.only == ["postgres", "redis"]
    assert args.no_deps is True


def test_only_rejects_unknown_parts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--only", "postgres,mysql"])
    assert "unknown part(s) mysql" in capsys.readouterr().err


def test_envoy_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "envoy.yaml"
    assert main(["envoy-config", "--defaults", "--output", str(target)]) == 0
    assert target.read_text() == render_envoy_config(StackConfig())
    assert main(["envoy-config", "--defaults", "--check", str(target)]) == 0
    target.write_text("stale")
    assert main(["envoy-config", "--defaults", "--check", str(target)]) == 1
    assert "regenerate with" in capsys.readouterr().err


def test_bad_environment_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RAGMESH_REDIS_PORT", "not-a-port")
    assert main(["status"]) == 2
    assert "RAGMESH_REDIS_PORT" in capsys.readouterr().err


def test_status_of_an_empty_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGMESH_HOME", str(tmp_path))
    monkeypatch.setenv("RAGMESH_PARTS", "redis,envoy")
    assert main(["status", "--json"]) == 1
    import json

    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["parts"]] == ["redis", "envoy"]
    assert all(p["healthy"] is False and p["pid"] is None and p["state"] == "stopped" for p in doc["parts"])
    assert doc["parts"][0]["log_file"] == str(tmp_path / "logs" / "redis.log")


def test_missing_binary_stops_up_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGMESH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAGMESH_POSTGRES_BIN_DIR", str(tmp_path / "no-postgres"))
    assert main(["up", "--only", "postgres"]) == 1
    err = capsys.readouterr().err
    assert "postgres: needs" in err
    assert "scripts/install-system-deps.sh" in err
    assert not (tmp_path / "home" / "run" / "postgres.pid").exists()


def test_every_part_is_checked_before_the_first_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGMESH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAGMESH_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setenv("RAGMESH_NEO4J_AUTO_FETCH", "false")
    assert main(["up", "--only", "redis,neo4j"]) == 1
    err = capsys.readouterr().err
    assert "neo4j: the Neo4j" in err and "fetch-neo4j.sh" in err
    assert not (tmp_path / "home" / "run" / "redis.pid").exists()
