"""Real models behind real servers for the inference integration tests.

A private Ray instance started here (2 CPUs, no dashboard, token auth with an
in-memory token: a developer's stack and ~/.ray are never touched), the Ray
Serve applications of the local profile plus two test variants, and for each
hosting (``serve`` and ``inprocess``) a mesh gRPC server in-process on port 0.
Models are the packaged ones: the Gemma 3 270M GGUF on llama.cpp and
all-MiniLM-L6-v2. The variants: ``gemma3-270m-tight`` (one request running,
one queued, small context) for overload and crash tests, and a tiny
cross-encoder this file builds and saves itself (random weights, a vocabulary
of a few hundred words), so the CrossEncoder path runs without a download.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from mesh.server import MeshServer, ServerConfig, start_server
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from svc_inference.__main__ import bindings
from svc_inference.app import open_runtime
from svc_inference.config import MODELS_DIR, Config
from svc_inference.domain.model_config import ModelSource, Profile, RerankerConfig, ServingConfig, load_profile
from svc_inference.domain.runtime import ModelRuntime
from tests.support.auth import auth_settings, service_channel

TIGHT = "gemma3-270m-tight"
TIGHT_CONTEXT = 1024
CROSS = "tiny-cross-encoder"
APP_PREFIX = "ragmesh-it"

_VOCABULARY = (
    "the a an of to in on for is are was be and or not with as by at from it this that what which who how "
    "kubernetes pod pods node nodes cluster container containers deployment service services volume volumes "
    "secret secrets config map namespace label labels selector scheduler kubelet api server controller replica "
    "set sets job jobs cron daemon stateful ingress network policy storage class persistent claim image "
    "restart probe liveness readiness resource limits requests cpu memory gpu run runs running create delete "
    "update scale scaling rollout rollback log logs event events error errors cat cats dog dogs pasta recipe "
    "tomato sauce football match goal weather rain sun music guitar song piano paris france capital city "
    "smallest unit deploy deployable manage group groups share shared storage network ip address port"
)


def build_tiny_cross_encoder(directory: Path) -> Path:
    """A BERT cross-encoder with random weights and a small word vocabulary, saved to ``directory``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *dict.fromkeys(_VOCABULARY.split()),
        *"abcdefghijklmnopqrstuvwxyz",
    ]
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
    tokenizer.save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    return directory


def profile_for_tests(cross_encoder: Path) -> Profile:
    """The local profile plus the tight LLM variant and the tiny cross-encoder."""
    local = load_profile(MODELS_DIR, "local")
    gemma = local.llms[0]
    tight = dataclasses.replace(
        gemma,
        name=TIGHT,
        context_length=TIGHT_CONTEXT,
        serving=dataclasses.replace(
            gemma.serving,
            max_ongoing_requests=1,
            max_queued_requests=1,
            num_cpus=0.25,
            health_check_period_s=2.0,
        ),
    )
    cross = RerankerConfig(
        name=CROSS,
        backend="cross-encoder",
        source=ModelSource(kind="path", path=str(cross_encoder)),
        max_tokens=128,
        description="A tiny cross-encoder with random weights, built by the tests.",
        serving=ServingConfig(num_cpus=0.25, max_ongoing_requests=8, max_batch_size=4, batch_wait_timeout_s=0.002),
    )
    return local.with_models(tight, cross)


@dataclasses.dataclass
class Stack:
    """One hosting of the service: its runtime, its gRPC server and a stub to it."""

    hosting: str
    runtime: ModelRuntime
    server: MeshServer
    channel: grpc.aio.Channel
    stub: pb_grpc.InferenceServiceStub

    async def close(self) -> None:
        await self.channel.close()
        await self.server.stop(None)
        await self.runtime.close()


async def _serve(hosting: str, runtime: ModelRuntime) -> Stack:
    server = await start_server(bindings(runtime), ServerConfig(port=0), auth=auth_settings())
    channel = service_channel(f"127.0.0.1:{server.port}")
    return Stack(hosting, runtime, server, channel, pb_grpc.InferenceServiceStub(channel))  # type: ignore[no-untyped-call]


@pytest.fixture(scope="package")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny cross-encoder's directory."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[None]:
    """A private Ray instance for these tests (or the one this process already joined), shut down after them."""
    import ray

    from svc_inference.serve.cluster import start_local

    if ray.is_initialized():
        yield
        return
    connection = start_local(2)
    try:
        yield
    finally:
        connection.close()


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def serve_stack(ray_cluster: None, tiny_cross_encoder: Path) -> AsyncIterator[Stack]:
    """The service on Ray Serve: the test profile deployed as Serve applications."""
    config = Config(hosting="serve", serve_app_prefix=APP_PREFIX, serve_deploy="always")
    runtime = await open_runtime(config, "127.0.0.1:1", profile=profile_for_tests(tiny_cross_encoder))
    stack = await _serve("serve", runtime)
    yield stack
    await stack.close()


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def inprocess_stack(tiny_cross_encoder: Path) -> AsyncIterator[Stack]:
    """The service with every model of the test profile loaded into this process."""
    config = Config(hosting="inprocess")
    runtime = await open_runtime(config, "127.0.0.1:1", profile=profile_for_tests(tiny_cross_encoder))
    stack = await _serve("inprocess", runtime)
    yield stack
    await stack.close()


@pytest.fixture(params=["serve", "inprocess"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """Each hosting in turn."""
    value: Stack = request.getfixturevalue(f"{request.param}_stack")
    return value
