"""svc_agent's config: environment, validation, and the loop settings it builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.config import ConfigError
from svc_agent.config import Config
from svc_agent.domain.settings import AnswerMode, PlannerMode


def test_defaults_build_loop_settings() -> None:
    config = Config.from_env({})
    settings = config.settings
    assert config.port == 50055
    assert settings.planner_mode is PlannerMode.AUTO
    assert settings.thresholds.min_relevance == 0.3
    assert config.semantic_cache_dir(Path("/h")) == Path("/h/data/svc_agent/semantic_cache")


def test_environment_overrides() -> None:
    config = Config.from_env(
        {
            "RAGMESH_AGENT_PLANNER_MODE": "model",
            "RAGMESH_AGENT_SEMANTIC_CACHE_PATH": "/tmp/sc",
            "RAGMESH_AGENT_EXACT_CACHE_ENABLED": "false",
            "RAGMESH_AGENT_MIN_RELEVANCE": "0.25",
        }
    )
    assert config.settings.planner_mode is PlannerMode.MODEL
    assert config.semantic_cache_dir(Path("/h")) == Path("/tmp/sc")
    assert not config.exact_cache_enabled and config.settings.thresholds.min_relevance == 0.25


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAGMESH_AGENT_PLANNER_MODE": "magic"}, "PLANNER_MODE"),
        ({"RAGMESH_AGENT_SEMANTIC_CACHE_BACKEND": "redis"}, "SEMANTIC_CACHE_BACKEND"),
        ({"RAGMESH_AGENT_SEMANTIC_CACHE_BACKEND": "qdrant"}, "SEMANTIC_CACHE_URL"),
        ({"RAGMESH_AGENT_REPEAT_PENALTY": "3"}, "REPEAT_PENALTY"),
        ({"RAGMESH_AGENT_MIN_RELEVANCE": "0.9"}, "MIN_RELEVANCE"),
        ({"RAGMESH_AGENT_GRAPH_DEPTH": "5"}, "GRAPH_DEPTH"),
        ({"RAGMESH_AGENT_ANSWER_MAX_TOKENS": "0"}, "ANSWER_MAX_TOKENS"),
    ],
)
def test_bad_values_are_refused_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_the_answer_mode_defaults_to_stitch_and_is_read_from_the_environment() -> None:
    assert Config.from_env({}).settings.answer_mode is AnswerMode.STITCH
    assert Config.from_env({"RAGMESH_AGENT_ANSWER_MODE": "generate"}).settings.answer_mode is AnswerMode.GENERATE
    with pytest.raises(ConfigError, match="ANSWER_MODE"):
        Config.from_env({"RAGMESH_AGENT_ANSWER_MODE": "paraphrase"})
