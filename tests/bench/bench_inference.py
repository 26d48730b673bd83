"""Benchmark of svc_inference: the cost of gRPC and of Ray Serve over calling the models in-process.

In one run, for each hosting (``serve``: Ray Serve deployments; ``inprocess``:
models inside the service process), the service runs as its own process
(``python -m svc_inference``, a private Ray instance for ``serve`` unless
``--ray-address`` names a running head) and this process measures:

(a) embedding throughput, batches of 32 sentences: sentences/s through gRPC
    (one call at a time, and several in flight) against the same Embedder
    class called directly in this process;
(b) generation: time to first token and decode tokens/s through StreamGenerate
    against the same LLM class (llama.cpp) driven directly in this process, on
    the same prompts (a retrieval-sized prompt, and a short one).

Measurements of the two paths are interleaved round by round, so load from
other processes on the machine falls on both alike; figures are medians.
Every prompt is used once per backend, so llama.cpp's prompt cache never turns
a measurement into a cache hit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from svc_inference.config import MODELS_DIR, Config
from svc_inference.domain.embedder import Embedder
from svc_inference.domain.llm import LLM
from svc_inference.domain.model import EmbedRequest, GenerateRequest, Sampling
from svc_inference.domain.model_config import load_profile
from svc_inference.domain.sources import SourceSettings
from tests.bench.machine import machine
from tests.support import auth as test_auth

_REPO = Path(__file__).resolve().parents[2]
_SERVICE = "ragmesh.inference.v1.InferenceService"

_TOPICS = (
    "Pods",
    "Deployments",
    "Services",
    "ConfigMaps",
    "Secrets",
    "StatefulSets",
    "DaemonSets",
    "Jobs",
    "Ingress rules",
    "network policies",
    "persistent volumes",
    "the scheduler",
)
_CONTEXT = (
    "Kubernetes is an open-source system for automating deployment, scaling and management of containerized "
    "applications. A Pod is the smallest deployable unit: one or more containers that share storage and a network "
    "identity. A Deployment declares how many replicas of a Pod should run and replaces failed ones; a rolling "
    "update changes Pods a few at a time so the application stays available. A Service gives a stable virtual IP "
    "address and DNS name to a changing set of Pods selected by labels, and spreads traffic across them. "
    "ConfigMaps and Secrets hold configuration and credentials that Pods read as files or environment variables. "
    "The scheduler assigns each new Pod to a node with enough free CPU and memory, honouring affinity rules and "
    "taints. The kubelet on each node starts the containers and reports their health through liveness and "
    "readiness probes; a container that fails its liveness probe is restarted. Persistent volumes keep data "
    "beyond the life of a Pod, and a StatefulSet gives each replica a stable name and its own volume. "
)


def _sentences(count: int) -> list[str]:
    words = _CONTEXT.split()
    out = []
    for i in range(count):
        start = (i * 7) % (len(words) - 24)
        out.append(f"Note {i} about {_TOPICS[i % len(_TOPICS)]}: " + " ".join(words[start : start + 20 + i % 5]))
    return out


def _rag_prompts(count: int) -> list[str]:
    # A distinct opening line per prompt: no prompt shares a prefix with the one before it.
    return [
        f"Ticket {i * 7919 % 10007} about {_TOPICS[i % len(_TOPICS)]}.\n"
        f"Context:\n{_CONTEXT}\n{_CONTEXT}\n"
        f"Question: in two sentences, what do {_TOPICS[i % len(_TOPICS)]} do?\nAnswer:"
        for i in range(count)
    ]


def _short_prompts(count: int) -> list[str]:
    return [f"Fact {i * 104729 % 10007}: {_TOPICS[i % len(_TOPICS)]} are" for i in range(count)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """``python -m svc_inference`` with one hosting, on a free port."""

    def __init__(
        self, hosting: str, ray_address: str, startup_timeout_s: float, extra_env: dict[str, str] | None = None
    ) -> None:
        self.hosting = hosting
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "RAGMESH_INFERENCE_"))}
        env.update(
            {
                "RAGMESH_INFERENCE_HOSTING": hosting,
                "RAGMESH_INFERENCE_PORT": str(self.port),
                "RAGMESH_INFERENCE_SERVE_APP_PREFIX": "ragmesh-bench",
                "RAGMESH_INFERENCE_SERVE_DEPLOY": "always",
                "RAGMESH_INFERENCE_LOG_LEVEL": "warning",
                # An address nobody listens on makes the service start a private Ray instance.
                "RAGMESH_RAY_ADDRESS": ray_address or f"127.0.0.1:{_free_port()}",
                **(extra_env or {}),
            }
        )
        self._timeout_s = startup_timeout_s
        self._log = open(_REPO / ".bench" / f"inference-service-{hosting}.log", "w")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "svc_inference"], cwd=_REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    async def ready(self) -> float:
        """Waits for the health check to answer SERVING; returns the seconds it took."""
        started = time.perf_counter()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"svc_inference ({self.hosting}) exited; see {self._log.name}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    # Asked by name: a Ray process can hold this port for a moment before the service binds it,
                    # and its own gRPC server answers the overall ("") health check.
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=_SERVICE), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter() - started
                if time.perf_counter() - started > self._timeout_s:
                    raise TimeoutError(f"svc_inference ({self.hosting}) did not become ready")
                await asyncio.sleep(1.0)

    def stop(self) -> None:
        """SIGTERM, then wait (the service shuts its private Ray instance down with it)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()


async def _unary_rtt_ms(stub: pb_grpc.InferenceServiceStub, calls: int = 100) -> float:
    """Median round trip of ListModels: the bare cost of a gRPC call to the service, no model involved."""
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await stub.ListModels(pb.ListModelsRequest(), timeout=10)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000.0, 3)


async def _embed_direct(embedder: Embedder, batches: Sequence[Sequence[str]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        embedder.embed(EmbedRequest(texts=tuple(batch)))
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


async def _embed_grpc(stub: pb_grpc.InferenceServiceStub, batches: Sequence[Sequence[str]], concurrency: int) -> float:
    pending = list(batches)

    async def worker() -> None:
        while pending:
            batch = pending.pop()
            response = await stub.Embed(pb.EmbedRequest(texts=list(batch)), timeout=300)
            assert len(response.embeddings) == len(batch)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


def _timing(started: float, arrivals: list[float], completion_tokens: int) -> dict[str, float]:
    ttft = (arrivals[0] - started) * 1000.0
    decode_s = arrivals[-1] - arrivals[0]
    # Tokens after the first over the time they took (deltas may carry several tokens each).
    rate = (completion_tokens - 1) / decode_s if completion_tokens > 1 and decode_s > 0 else 0.0
    return {"ttft_ms": ttft, "decode_tokens_per_s": rate, "completion_tokens": float(completion_tokens)}


async def _generate_direct(llm: LLM, prompt: str, max_tokens: int) -> dict[str, float]:
    request = GenerateRequest(prompt=prompt, sampling=Sampling(temperature=0.0, max_tokens=max_tokens))
    started = time.perf_counter()
    arrivals: list[float] = []
    tokens = 0
    async for chunk in llm.generate(request):
        if chunk.delta:
            arrivals.append(time.perf_counter())
        if chunk.summary is not None:
            tokens = chunk.summary.completion_tokens
            prompt_tokens = chunk.summary.prompt_tokens
    return {**_timing(started, arrivals, tokens), "prompt_tokens": float(prompt_tokens)}


async def _generate_grpc(stub: pb_grpc.InferenceServiceStub, prompt: str, max_tokens: int) -> dict[str, float]:
    request = pb.StreamGenerateRequest(
        prompt=prompt, sampling=pb.SamplingParams(temperature=0.0, max_tokens=max_tokens)
    )
    started = time.perf_counter()
    arrivals: list[float] = []
    tokens = prompt_tokens = 0
    async for message in stub.StreamGenerate(request, timeout=300):
        if message.delta:
            arrivals.append(time.perf_counter())
        if message.HasField("summary"):
            tokens = message.summary.usage.completion_tokens
            prompt_tokens = message.summary.usage.prompt_tokens
    return {**_timing(started, arrivals, tokens), "prompt_tokens": float(prompt_tokens)}


def _median(samples: Sequence[dict[str, float]], key: str) -> float:
    return round(statistics.median(s[key] for s in samples), 2)


@contextlib.asynccontextmanager
async def _service(hosting: str, args: argparse.Namespace) -> AsyncIterator[tuple[pb_grpc.InferenceServiceStub, float]]:
    # The service verifies this process's own key, and every call carries a mesh service's token
    # (InferenceService is internal), as bench priority does; without it every call is UNAUTHENTICATED.
    env = {"RAGMESH_AUTH_JWKS_FILE": str(test_auth.auth_settings().jwks_file)}
    service = ServiceProcess(hosting, args.ray_address, args.startup_timeout_s, extra_env=env)
    try:
        startup_s = await service.ready()
        async with test_auth.service_channel(f"127.0.0.1:{service.port}") as channel:
            yield pb_grpc.InferenceServiceStub(channel), startup_s
    finally:
        service.stop()


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    (_REPO / ".bench").mkdir(exist_ok=True)
    profile = load_profile(MODELS_DIR, "local")
    config = Config()
    sources = SourceSettings(config.model_root, config.cache_dir)
    loaded = time.perf_counter()
    embedder = Embedder(profile.embedders[0], sources)
    llm = LLM(profile.llms[0], sources)
    load_s = time.perf_counter() - loaded

    sentences = _sentences(args.batch_size * args.batches)
    batches = [sentences[i : i + args.batch_size] for i in range(0, len(sentences), args.batch_size)]
    per_round = args.prompts
    total_prompts = per_round * args.rounds * len(args.hostings) + 4
    rag = _rag_prompts(total_prompts)
    short = _short_prompts(total_prompts)
    await _embed_direct(embedder, batches[:2])  # warm-up
    await _generate_direct(llm, "Warm-up:", 4)

    figures: dict[str, Any] = {
        "machine": {**machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "batch_size": args.batch_size,
            "batches_per_measurement": args.batches,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "prompts_per_round": per_round,
            "max_tokens": args.max_tokens,
            "in_process_model_load_s": round(load_s, 2),
        },
        "embedding": {},
        "generation": {},
    }
    prompt_at = 0
    for hosting in args.hostings:
        async with _service(hosting, args) as (stub, startup_s):
            await _embed_grpc(stub, batches[:2], 1)  # warm-up: handles, batching queues, first calls
            await _generate_grpc(stub, "Warm-up:", 4)
            direct_embed: list[float] = []
            grpc_embed: dict[int, list[float]] = {c: [] for c in args.concurrency}
            direct_gen: dict[str, list[dict[str, float]]] = {"rag": [], "short": []}
            grpc_gen: dict[str, list[dict[str, float]]] = {"rag": [], "short": []}
            for round_no in range(args.rounds):
                # Alternate which path goes first, so neither always runs right after the other's burst.
                if round_no % 2:
                    direct_embed.append(await _embed_direct(embedder, batches))
                for concurrency in args.concurrency:
                    grpc_embed[concurrency].append(await _embed_grpc(stub, batches, concurrency))
                if not round_no % 2:
                    direct_embed.append(await _embed_direct(embedder, batches))
                for i in range(per_round):
                    for kind, prompts in (("rag", rag), ("short", short)):
                        prompt = prompts[prompt_at]
                        if (round_no + i) % 2:
                            direct_gen[kind].append(await _generate_direct(llm, prompt, args.max_tokens))
                            grpc_gen[kind].append(await _generate_grpc(stub, prompt, args.max_tokens))
                        else:
                            grpc_gen[kind].append(await _generate_grpc(stub, prompt, args.max_tokens))
                            direct_gen[kind].append(await _generate_direct(llm, prompt, args.max_tokens))
                    prompt_at += 1
            direct_rate = statistics.median(direct_embed)
            figures["embedding"][hosting] = {
                "service_startup_s": round(startup_s, 1),
                "grpc_unary_round_trip_ms": await _unary_rtt_ms(stub),
                "in_process_sentences_per_s": round(direct_rate, 1),
                **{
                    f"grpc_concurrency_{c}_sentences_per_s": round(statistics.median(v), 1)
                    for c, v in grpc_embed.items()
                },
                **{
                    f"grpc_concurrency_{c}_vs_in_process": round(statistics.median(v) / direct_rate, 3)
                    for c, v in grpc_embed.items()
                },
            }
            generation: dict[str, Any] = {}
            for kind in ("rag", "short"):
                d, g = direct_gen[kind], grpc_gen[kind]
                d_ttft, g_ttft = _median(d, "ttft_ms"), _median(g, "ttft_ms")
                # Each prompt ran on both paths back to back: per-pair differences cancel slow load drift.
                paired = [b["ttft_ms"] - a["ttft_ms"] for a, b in zip(d, g, strict=True)]
                paired_pct = [100.0 * (b["ttft_ms"] - a["ttft_ms"]) / a["ttft_ms"] for a, b in zip(d, g, strict=True)]
                d_rate, g_rate = _median(d, "decode_tokens_per_s"), _median(g, "decode_tokens_per_s")
                generation[f"{kind}_prompt"] = {
                    "prompt_tokens": _median(d, "prompt_tokens"),
                    "completion_tokens_median": _median(d, "completion_tokens"),
                    "in_process_ttft_ms": d_ttft,
                    "grpc_ttft_ms": g_ttft,
                    "ttft_overhead_ms": round(g_ttft - d_ttft, 2),
                    "ttft_overhead_pct": round(100.0 * (g_ttft - d_ttft) / d_ttft, 2),
                    "ttft_overhead_ms_paired_median": round(statistics.median(paired), 2),
                    "ttft_overhead_pct_paired_median": round(statistics.median(paired_pct), 2),
                    "in_process_decode_tokens_per_s": d_rate,
                    "grpc_decode_tokens_per_s": g_rate,
                    "decode_grpc_vs_in_process": round(g_rate / d_rate, 3) if d_rate else 0.0,
                    "samples": len(d),
                }
            figures["generation"][hosting] = generation
    figures["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    llm.close()
    return figures


def run(argv: list[str]) -> dict[str, Any]:
    """Runs the benchmark; returns its figures (``ragmesh bench inference`` prints and saves them)."""
    parser = argparse.ArgumentParser(prog="ragmesh bench inference", description=__doc__.splitlines()[0])
    parser.add_argument("--hostings", default="serve,inprocess", help="comma-separated: serve, inprocess")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per Embed call")
    parser.add_argument("--batches", type=int, default=8, help="Embed calls per measurement")
    parser.add_argument("--concurrency", default="1,4", help="comma-separated Embed calls in flight")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds per hosting")
    parser.add_argument("--prompts", type=int, default=3, help="prompts of each kind per round")
    parser.add_argument("--max-tokens", type=int, default=48, help="tokens to generate per prompt")
    parser.add_argument("--ray-address", default="", help="join this Ray head instead of a private instance")
    parser.add_argument("--startup-timeout-s", type=float, default=900.0)
    args = parser.parse_args(argv)
    args.hostings = [h for h in args.hostings.split(",") if h]
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    return asyncio.run(_bench(args))
