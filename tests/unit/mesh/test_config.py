from __future__ import annotations

import dataclasses
import enum
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


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@dataclasses.dataclass(frozen=True)
class Inner:
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class Tuning:
    mode: Mode = Mode.FAST
    depth: int = 2
    band: Inner = dataclasses.field(default_factory=lambda: Inner(0.1, 0.9))


@dataclasses.dataclass(frozen=True)
class NestedConfig(EnvConfig):
    env_prefix = "N"

    port: int = 1
    tuning: Tuning = dataclasses.field(default_factory=Tuning)


def test_nested_settings_read_flat_names_under_the_same_prefix() -> None:
    cfg = NestedConfig.from_env({"N_PORT": "2", "N_MODE": "slow", "N_HIGH": "0.5"}, depth=7)
    assert cfg == NestedConfig(port=2, tuning=Tuning(mode=Mode.SLOW, depth=7, band=Inner(0.1, 0.5)))
    assert NestedConfig.env_names() == ["N_PORT", "N_MODE", "N_DEPTH", "N_LOW", "N_HIGH"]
    assert NestedConfig.from_env(cfg.env_vars()) == cfg


def test_a_bad_enum_value_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match="N_MODE must be one of fast, slow"):
        NestedConfig.from_env({"N_MODE": "medium"})
