"""Helpers of the inference integration tests (their fixtures are in tests/integration/inference/conftest.py).

The test profile: the local one plus a tight LLM variant and a tiny cross-encoder
built here (random weights, no download); and one hosting served in-process.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc

from mesh.server import MeshServer, ServerConfig, start_server
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from svc_inference.__main__ import bindings
from svc_inference.config import MODELS_DIR
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


async def open_stack(hosting: str, runtime: ModelRuntime) -> Stack:
    """Serves ``runtime`` on a mesh gRPC server on port 0, with a stub to it (``close()`` stops all)."""
    server = await start_server(bindings(runtime), ServerConfig(port=0), auth=auth_settings())
    channel = service_channel(f"127.0.0.1:{server.port}")
    return Stack(hosting, runtime, server, channel, pb_grpc.InferenceServiceStub(channel))  # type: ignore[no-untyped-call]
