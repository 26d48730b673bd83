from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path
from typing import Any

import pytest

from svc_inference.config import MODELS_DIR
from svc_inference.domain.model import GenerateRequest, Sampling
from svc_inference.domain.model_config import load_profile
from svc_inference.domain.plan import make_plan
from svc_inference.domain.vllm_backend import (
    VLLM_UNENFORCEABLE,
    VLLMNotAvailable,
    engine_kwargs,
    import_vllm,
    sampling_kwargs,
)

PRODUCTION = {m.name: m for m in load_profile(MODELS_DIR, "production").llms}


class FakeParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def _fake_sampling_module(*, structured: bool) -> types.SimpleNamespace:
    module = types.SimpleNamespace(RequestOutputKind=types.SimpleNamespace(DELTA="delta"))
    if structured:
        module.StructuredOutputsParams = FakeParams
    else:
        module.GuidedDecodingParams = FakeParams
    return module


def test_engine_arguments_of_the_70b_config() -> None:
    kwargs = engine_kwargs(PRODUCTION["llama3-70b-instruct"], Path("/models/llama-3-70b-instruct-awq"))
    assert kwargs["tensor_parallel_size"] == 4
    assert kwargs["quantization"] == "awq"
    assert kwargs["max_model_len"] == 8192
    assert kwargs["distributed_executor_backend"] == "ray"
    assert kwargs["model"] == kwargs["tokenizer"] == "/models/llama-3-70b-instruct-awq"
    small = engine_kwargs(PRODUCTION["llama3-8b-instruct"], Path("/m"))
    assert small["tensor_parallel_size"] == 1 and "quantization" not in small


@pytest.mark.parametrize("structured", [True, False])
def test_sampling_arguments_include_guided_decoding(structured: bool) -> None:
    config = PRODUCTION["llama3-8b-instruct"]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    plan = make_plan(
        config,
        GenerateRequest(prompt="x", json_schema=json.dumps(schema), sampling=Sampling(seed=7, max_tokens=99)),
        unenforceable=VLLM_UNENFORCEABLE,
        backend="vllm",
    )
    kwargs = sampling_kwargs(plan, 50, config.stop_token_ids, _fake_sampling_module(structured=structured))
    key = "structured_outputs" if structured else "guided_decoding"
    assert kwargs[key].kwargs == {"json": schema}
    assert kwargs["max_tokens"] == 50 and kwargs["seed"] == 7
    assert kwargs["top_k"] == -1  # top_k 0 in the config means off
    assert kwargs["stop_token_ids"] == [128001, 128009]
    assert kwargs["output_kind"] == "delta"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_a_missing_vllm_says_why() -> None:
    with pytest.raises(VLLMNotAvailable, match="needs the vllm package and a CUDA GPU"):
        import_vllm()
