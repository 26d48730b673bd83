"""The vLLM backend on a real GPU: runs only where CUDA, vLLM and a local model directory are present.

Point RAGMESH_TEST_VLLM_MODEL at a local Llama 3 Instruct directory (weights are
never downloaded); the test deploys it with the production 8B config on Ray
Serve and streams a chat and a schema-constrained answer through gRPC.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio

from ragmesh.inference.v1 import inference_service_pb2 as pb
from svc_inference.app import open_runtime
from svc_inference.config import MODELS_DIR, Config
from svc_inference.domain.model_config import ModelSource, load_profile
from tests.integration.inference.support import generate
from tests.support.inference import Stack, open_stack


def _skip_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (the GPU backend needs vllm and a CUDA device)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device on this machine"
    model = os.environ.get("RAGMESH_TEST_VLLM_MODEL", "")
    if not model or not Path(model).is_dir():
        return "RAGMESH_TEST_VLLM_MODEL does not name a local model directory (weights are never downloaded)"
    return None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.gpu,
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
    pytest.mark.asyncio(loop_scope="session"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def vllm_stack(ray_cluster: None) -> AsyncIterator[Stack]:
    production = load_profile(MODELS_DIR, "production")
    small = next(m for m in production.llms if m.name == "llama3-8b-instruct")
    assert small.vllm is not None
    llm = dataclasses.replace(
        small,
        source=ModelSource(kind="path", path=os.environ["RAGMESH_TEST_VLLM_MODEL"]),
        vllm=dataclasses.replace(small.vllm, max_model_len=4096, gpu_memory_utilization=0.8),
        context_length=4096,
    )
    local = load_profile(MODELS_DIR, "local")
    profile = dataclasses.replace(local, llms=(llm,), default_llm=llm.name)
    runtime = await open_runtime(
        Config(hosting="serve", serve_app_prefix="ragmesh-gpu-it", serve_deploy="always"),
        "127.0.0.1:1",
        profile=profile,
    )
    stack = await open_stack("serve", runtime)
    yield stack
    await stack.close()


async def test_vllm_streams_a_chat(vllm_stack: Stack) -> None:
    received = await generate(
        vllm_stack.stub,
        pb.StreamGenerateRequest(
            messages=[pb.ChatMessage(role=pb.ROLE_USER, content="Name three Kubernetes objects.")],
            sampling=pb.SamplingParams(max_tokens=64, temperature=0.0),
        ),
    )
    assert len(received.deltas) >= 2
    assert received.summary.usage.completion_tokens > 0
    assert received.summary.finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)


async def test_vllm_guided_decoding_validates(vllm_stack: Stack) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 80}, "confident": {"type": "boolean"}},
        "required": ["answer", "confident"],
    }
    received = await generate(
        vllm_stack.stub,
        pb.StreamGenerateRequest(
            messages=[pb.ChatMessage(role=pb.ROLE_USER, content="What is a Pod? Answer as JSON.")],
            json_schema=json.dumps(schema),
            sampling=pb.SamplingParams(max_tokens=128, temperature=0.0),
        ),
    )
    jsonschema.validate(json.loads(received.text), schema)
