from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mesh.config import ConfigError, EnvConfig


@dataclasses.dataclass(frozen=True)
class SampleConfig(EnvConfig):
    env_prefix = "T"

    port: int = 1
    ratio: float = 0.5
    enabled: bool = False
    name: str = "x"
    home: Path = Path("/tmp")
    tags: tuple[str, ...] = ()
    limit: int | None = None


def test_defaults_without_environment() -> None:
    assert SampleConfig.from_env({}) == SampleConfig()


def test_reads_and_converts_each_type() -> None:
    cfg = SampleConfig.from_env(
        {
            "T_PORT": "9",
            "T_RATIO": "2.5",
            "T_ENABLED": "yes",
            "T_NAME": "n",
            "T_HOME": "/a",
            "T_TAGS": "a, b",
            "T_LIMIT": "3",
        }
    )
    assert cfg == SampleConfig(port=9, ratio=2.5, enabled=True, name="n", home=Path("/a"), tags=("a", "b"), limit=3)


def test_overrides_win() -> None:
    assert SampleConfig.from_env({"T_PORT": "9"}, port=10).port == 10


@pytest.mark.parametrize(("key", "value"), [("T_PORT", "nine"), ("T_ENABLED", "maybe")])
def test_bad_values_name_the_variable(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        SampleConfig.from_env({key: value})


def test_env_vars_round_trip() -> None:
    cfg = SampleConfig(port=3, enabled=True, tags=("a", "b"))
    assert SampleConfig.from_env(cfg.env_vars()) == cfg
