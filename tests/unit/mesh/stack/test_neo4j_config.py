from __future__ import annotations

from pathlib import Path

from mesh.stack.config import StackConfig
from mesh.stack.layout import StackLayout
from mesh.stack.neo4j_config import render_neo4j_conf, server_argv, set_password_argv


def _settings(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_conf_binds_the_configured_ports_and_keeps_data_in_the_home(tmp_path: Path) -> None:
    config = StackConfig(neo4j_bolt_port=17687, neo4j_http_port=17474, neo4j_pagecache_mb=64)
    settings = _settings(render_neo4j_conf(config, StackLayout(tmp_path)))
    assert settings["server.bolt.listen_address"] == "127.0.0.1:17687"
    assert settings["server.http.listen_address"] == "127.0.0.1:17474"
    assert settings["server.directories.data"] == str(tmp_path / "data" / "neo4j")
    assert settings["dbms.security.auth_enabled"] == "true"
    assert settings["dbms.routing.enabled"] == "false"
    assert settings["server.memory.pagecache.size"] == "64m"


def test_server_runs_the_community_entry_point_with_a_small_heap(tmp_path: Path) -> None:
    config = StackConfig(neo4j_heap_mb=384, tools_dir=tmp_path / "tools")
    argv = server_argv(Path("/usr/bin/java"), config, StackLayout(tmp_path))
    assert argv[0] == "/usr/bin/java"
    assert "-Xmx384m" in argv and "-Xms384m" in argv
    assert f"{config.neo4j_lib_dir}/*" in argv
    assert "org.neo4j.server.CommunityEntryPoint" in argv
    assert "--console-mode" in argv


def test_initial_password_comes_from_the_config() -> None:
    argv = set_password_argv(Path("java"), StackConfig(neo4j_password="s3cret"))
    assert argv[-3:] == ["dbms", "set-initial-password", "s3cret"]
