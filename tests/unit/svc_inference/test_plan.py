from __future__ import annotations

import json

import pytest

from mesh.errors import InvalidArgument
from svc_inference.config import MODELS_DIR
from svc_inference.domain.model import ChatMessage, ChatRole, GenerateRequest, Sampling
from svc_inference.domain.model_config import load_profile
from svc_inference.domain.plan import make_plan
from svc_inference.domain.structured import LLAMACPP_UNENFORCEABLE

GEMMA = load_profile(MODELS_DIR, "local").llms[0]


def _plan(request: GenerateRequest):  # type: ignore[no-untyped-def]
    return make_plan(GEMMA, request, unenforceable=LLAMACPP_UNENFORCEABLE, backend="llamacpp")


def test_defaults_fill_what_the_request_leaves_unset() -> None:
    plan = _plan(GenerateRequest(prompt="hi", sampling=Sampling(temperature=0.0, stop=("END",))))
    assert plan.temperature == 0.0
    assert plan.top_p == GEMMA.sampling.top_p and plan.max_tokens == GEMMA.sampling.max_tokens
    assert plan.repeat_penalty == GEMMA.sampling.repeat_penalty
    assert plan.stop == (*GEMMA.stop, "END")
    assert plan.deadline_monotonic is None and not plan.is_chat


def test_with_a_schema_only_the_requests_stops_apply() -> None:
    schema = json.dumps({"type": "object", "properties": {"a": {"type": "string"}}})
    plan = _plan(GenerateRequest(prompt="hi", json_schema=schema, sampling=Sampling(stop=("X",))))
    assert plan.stop == ("X",)
    assert plan.schema is not None


def test_chats_are_rendered_and_deadlines_kept() -> None:
    plan = _plan(GenerateRequest(messages=(ChatMessage(ChatRole.USER, "hi"),), timeout_s=5.0))
    assert plan.is_chat and plan.segments[0].text == "<start_of_turn>user\n"
    assert plan.deadline_monotonic is not None


def test_bad_input_raises() -> None:
    with pytest.raises(InvalidArgument):
        _plan(GenerateRequest(prompt=" "))
    with pytest.raises(InvalidArgument):
        _plan(GenerateRequest(prompt="x", json_schema='{"type": "number", "exclusiveMaximum": 1}'))
