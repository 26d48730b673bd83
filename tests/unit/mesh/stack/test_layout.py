from __future__ import annotations

from pathlib import Path

from mesh.stack.layout import UNIX_SOCKET_PATH_MAX, StackLayout


def test_files_live_under_the_home(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path)
    assert layout.log_file("redis") == tmp_path / "logs" / "redis.log"
    assert layout.pid_file("redis") == tmp_path / "run" / "redis.pid"
    assert layout.data("postgres") == tmp_path / "data" / "postgres"
    assert layout.envoy_config_file == tmp_path / "envoy" / "envoy.yaml"
    assert layout.ray_token_file.parent == tmp_path / "secrets"


def test_short_home_keeps_sockets_inside() -> None:
    layout = StackLayout(Path("/tmp/rm"))
    assert layout.ray_temp_dir == Path("/tmp/rm/ray")
    assert layout.postgres_socket_dir == Path("/tmp/rm/run/postgres")


def test_long_home_falls_back_to_short_tmp_dirs() -> None:
    home = Path("/tmp") / ("x" * 80)
    layout = StackLayout(home)
    assert layout.ray_temp_dir.parent == Path("/tmp")
    assert layout.ray_temp_dir.name.startswith("ragmesh-ray-")
    assert len(str(layout.postgres_socket_dir)) + len("/.s.PGSQL.65535.lock") <= UNIX_SOCKET_PATH_MAX
    assert layout.ray_temp_dir in layout.short_fallback_dirs()
    # Stable per home, different between homes.
    assert StackLayout(home).ray_temp_dir == layout.ray_temp_dir
    assert StackLayout(Path("/tmp") / ("y" * 80)).ray_temp_dir != layout.ray_temp_dir
