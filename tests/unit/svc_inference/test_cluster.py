from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mesh.config import ConfigError
from svc_inference.config import RayEnvironment
from svc_inference.serve import cluster
from svc_inference.serve.cluster import RaySetup, configure_join_auth, head_reachable

AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN")


@pytest.fixture(autouse=True)
def _isolated_auth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in AUTH_VARS:
        # setenv first records the original state, so whatever the code under test sets is undone afterwards.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(cluster, "DEFAULT_TOKEN_PATH", tmp_path / "no-default-token")
    monkeypatch.setattr(cluster, "_reload_auth_settings", lambda: None)


def _setup(auth: str = "auto", path: Path | None = None, env: RayEnvironment | None = None) -> RaySetup:
    return RaySetup(
        address="127.0.0.1:1", auth=auth, auth_token_path=path, environment=env or RayEnvironment("", None, False)
    )


def _mode() -> tuple[str | None, str | None]:
    import os

    return os.environ.get("RAY_AUTH_MODE"), os.environ.get("RAY_AUTH_TOKEN_PATH")


def test_auto_without_any_token_sends_none() -> None:
    configure_join_auth(_setup())
    assert _mode() == (None, None)


def test_auto_follows_what_the_stack_set() -> None:
    configure_join_auth(_setup(env=RayEnvironment("token", Path("/stack/ray-auth-token"), False)))
    assert _mode() == (None, None)  # left to Ray, which reads the same variables


def test_auto_uses_the_default_token_like_ray_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "auth_token"
    token.write_text("secret")
    monkeypatch.setattr(cluster, "DEFAULT_TOKEN_PATH", token)
    configure_join_auth(_setup())
    assert _mode() == ("token", str(token))


def test_a_configured_token_path_wins(tmp_path: Path) -> None:
    token = tmp_path / "configured"
    token.write_text("secret")
    configure_join_auth(_setup(path=token, env=RayEnvironment("disabled", None, False)))
    assert _mode() == ("token", str(token))


def test_token_mode_without_a_token_fails_clearly() -> None:
    with pytest.raises(ConfigError, match="no token was found"):
        configure_join_auth(_setup(auth="token"))
    with pytest.raises(ConfigError, match="does not exist"):
        configure_join_auth(_setup(auth="token", path=Path("/nonexistent/token")))


def test_disabled_sends_none() -> None:
    configure_join_auth(_setup(auth="disabled"))
    assert _mode() == ("disabled", None)


def test_ray_environment_reads_only_presence_of_the_token() -> None:
    env = RayEnvironment.from_env({"RAY_AUTH_MODE": "Token", "RAY_AUTH_TOKEN_PATH": "~/t", "RAY_AUTH_TOKEN": "x"})
    assert env.auth_mode == "token" and env.has_token_value
    assert env.auth_token_path == Path.home() / "t"


def test_head_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert head_reachable(f"127.0.0.1:{port}", 1.0)
    assert not head_reachable(f"127.0.0.1:{port}", 0.5)
    assert not head_reachable("not-an-address", 0.5)
