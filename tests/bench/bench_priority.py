"""Benchmark: query embeddings while a document-embedding load runs, with and without priorities.

In one run, for each hosting, svc_inference runs as its own process (as in
``ragmesh bench inference``) and this process measures:

- Embed(query) latency with the embedder idle;
- a document load like an ingest's (``--workers`` callers, each sending
  ``--load-batch`` chunk-sized passages per Embed call back to back, backing off
  on RESOURCE_EXHAUSTED) marked batch, as svc_ingest sends it: its passages/s
  alone, then Embed(query) latency and passages/s while it runs;
- the same load sent unmarked (interactive, like any caller before priorities
  existed: whole requests merged into model calls, first come first served):
  passages/s alone, then Embed(query) latency while it runs.

``--schedulings slice8,slice4,slice8+thread`` repeats the marked measurements
with the embedder scheduling each way (a service start each): batch requests
in slices of N texts, and with ``+thread`` queries on a second model thread.

Queries are sent one at a time, ``--query-gap-s`` apart. Figures are medians
and 95th percentiles in milliseconds; rejected calls are counted, not hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import yaml

from mesh.priority import BATCH_METADATA
from ragmesh.inference.v1 import inference_service_pb2 as pb
from ragmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from svc_inference.config import MODELS_DIR
from tests.bench.bench_inference import _CONTEXT, _REPO, _TOPICS, ServiceProcess
from tests.bench.machine import machine
from tests.support import auth as test_auth

_WORDS = _CONTEXT.split()


def _passages(count: int, words: int) -> list[str]:
    """Chunk-sized passages (about ``words`` words, ~1.3 tokens each), all different."""
    out = []
    for i in range(count):
        start = (i * 11) % (len(_WORDS) - 1)
        body = [_WORDS[(start + j) % len(_WORDS)] for j in range(words)]
        out.append(f"Section {i} on {_TOPICS[i % len(_TOPICS)]}. " + " ".join(body))
    return out


def _queries(count: int) -> list[str]:
    return [f"How do {_TOPICS[i % len(_TOPICS)]} behave in case {i}?" for i in range(count)]


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(samples_ms: Sequence[float], rejected: int) -> dict[str, float]:
    if not samples_ms:
        return {"answered": 0, "rejected": rejected}
    return {
        "p50_ms": round(statistics.median(samples_ms), 2),
        "p95_ms": round(_percentile(samples_ms, 0.95), 2),
        "max_ms": round(max(samples_ms), 2),
        "answered": len(samples_ms),
        "rejected": rejected,
    }


class DocumentLoad:
    """``workers`` callers embedding passages back to back until stopped; counts passages and refusals."""

    def __init__(self, stub: pb_grpc.InferenceServiceStub, passages: list[str], batch: int, *, marked: bool) -> None:
        self._stub = stub
        self._batches = [passages[i : i + batch] for i in range(0, len(passages), batch)]
        self._metadata = BATCH_METADATA if marked else ()
        self._stop = asyncio.Event()
        self.embedded = 0
        self.rejected = 0
        self._next = 0

    async def _worker(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            texts = self._batches[self._next % len(self._batches)]
            self._next += 1
            try:
                response = await self._stub.Embed(
                    pb.EmbedRequest(texts=texts, mode=pb.EMBED_MODE_DOCUMENT), timeout=300, metadata=self._metadata
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                self.rejected += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self.embedded += len(response.embeddings)

    @contextlib.asynccontextmanager
    async def running(self, workers: int) -> AsyncIterator[DocumentLoad]:
        """Runs the load for the block; the call in flight finishes before the block is left."""
        tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)


async def _query_latencies(
    stub: pb_grpc.InferenceServiceStub, queries: Sequence[str], gap_s: float
) -> tuple[list[float], int]:
    samples: list[float] = []
    rejected = 0
    for text in queries:
        started = time.perf_counter()
        try:
            await stub.Embed(pb.EmbedRequest(texts=[text], mode=pb.EMBED_MODE_QUERY), timeout=60)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            rejected += 1
        else:
            samples.append((time.perf_counter() - started) * 1000.0)
        await asyncio.sleep(gap_s)
    return samples, rejected


async def _load_alone(
    stub: pb_grpc.InferenceServiceStub, passages: list[str], args: argparse.Namespace, *, marked: bool
) -> dict[str, Any]:
    load = DocumentLoad(stub, passages, args.load_batch, marked=marked)
    async with load.running(args.workers):
        await asyncio.sleep(args.warmup_s)
        before, started = load.embedded, time.perf_counter()
        await asyncio.sleep(args.load_s)
        done, elapsed = load.embedded - before, time.perf_counter() - started
    return {"passages_per_s": round(done / elapsed, 1), "rejected_calls": load.rejected}


async def _load_with_queries(
    stub: pb_grpc.InferenceServiceStub,
    passages: list[str],
    queries: Sequence[str],
    args: argparse.Namespace,
    *,
    marked: bool,
) -> dict[str, Any]:
    load = DocumentLoad(stub, passages, args.load_batch, marked=marked)
    async with load.running(args.workers):
        await asyncio.sleep(args.warmup_s)
        before, started = load.embedded, time.perf_counter()
        samples, rejected = await _query_latencies(stub, queries, args.query_gap_s)
        done, elapsed = load.embedded - before, time.perf_counter() - started
    return {
        "query_embed": _summary(samples, rejected),
        "passages_per_s": round(done / elapsed, 1),
        "load_rejected_calls": load.rejected,
    }


def _scheduling(variant: str) -> dict[str, Any]:
    """``slice<N>`` (and ``+thread``) as embedder ``scheduling`` settings."""
    settings: dict[str, Any] = {"interactive_thread": False}
    for part in variant.split("+"):
        if part == "thread":
            settings["interactive_thread"] = True
        elif part.startswith("slice") and part[5:].isdigit():
            settings["document_slice_texts"] = int(part[5:])
        else:
            raise SystemExit(f"--schedulings: {part!r} is neither slice<N> nor thread")
    return settings


def _models_with(directory: Path, scheduling: dict[str, Any]) -> Path:
    """A copy of the shipped model configs whose embedders schedule as ``scheduling`` says."""
    shutil.copytree(MODELS_DIR, directory)
    for path in (directory / "embedder").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data.setdefault("scheduling", {}).update(scheduling)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


async def _measure(
    stub: pb_grpc.InferenceServiceStub,
    passages: list[str],
    queries: list[str],
    args: argparse.Namespace,
    *,
    unmarked: bool,
) -> dict[str, Any]:
    await _query_latencies(stub, queries[:5], 0.0)  # warm-up
    at = 0

    def next_queries() -> list[str]:
        nonlocal at
        at += args.queries
        return queries[at - args.queries : at]

    idle, idle_rejected = await _query_latencies(stub, next_queries(), args.query_gap_s)
    result: dict[str, Any] = {"idle": {"query_embed": _summary(idle, idle_rejected)}}
    result["batch_marked"] = {
        "alone": await _load_alone(stub, passages, args, marked=True),
        "with_queries": await _load_with_queries(stub, passages, next_queries(), args, marked=True),
    }
    modes = ["batch_marked"]
    if unmarked:
        modes.append("unmarked_as_before")
        result["unmarked_as_before"] = {
            "alone": await _load_alone(stub, passages, args, marked=False),
            "with_queries": await _load_with_queries(stub, passages, next_queries(), args, marked=False),
        }
        unmarked_rate = result["unmarked_as_before"]["alone"]["passages_per_s"]
        if unmarked_rate:
            result["batch_marked_throughput_vs_unmarked"] = round(
                result["batch_marked"]["alone"]["passages_per_s"] / unmarked_rate, 3
            )
    idle_p50 = result["idle"]["query_embed"].get("p50_ms", 0.0)
    for mode in modes:
        during = result[mode]["with_queries"]["query_embed"].get("p50_ms", 0.0)
        result[mode]["query_p50_vs_idle"] = round(during / idle_p50, 2) if idle_p50 else 0.0
    return result


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    (_REPO / ".bench").mkdir(exist_ok=True)
    passages = _passages(args.load_batch * 16, args.passage_words)
    queries = _queries(args.queries * 8)
    figures: dict[str, Any] = {
        "machine": {**machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "workers": args.workers,
            "load_batch": args.load_batch,
            "passage_words": args.passage_words,
            "queries_per_measurement": args.queries,
            "query_gap_s": args.query_gap_s,
            "load_s": args.load_s,
            "schedulings": args.schedulings,
        },
    }
    with tempfile.TemporaryDirectory(prefix="ragmesh-bench-priority-") as tmp:
        for hosting in args.hostings:
            figures[hosting] = {}
            for i, variant in enumerate(args.schedulings):
                models_dir = _models_with(Path(tmp) / f"models-{i}", _scheduling(variant))
                env = {
                    "RAGMESH_INFERENCE_MODELS_DIR": str(models_dir),
                    # The service verifies this process's own key (a mesh service's token on every call).
                    "RAGMESH_AUTH_JWKS_FILE": str(test_auth.auth_settings().jwks_file),
                }
                service = ServiceProcess(hosting, args.ray_address, args.startup_timeout_s, extra_env=env)
                try:
                    await service.ready()
                    async with test_auth.service_channel(f"127.0.0.1:{service.port}") as channel:
                        stub = pb_grpc.InferenceServiceStub(channel)
                        # The unprioritised load is the same whatever the slice size: measured once.
                        figures[hosting][variant] = await _measure(stub, passages, queries, args, unmarked=i == 0)
                finally:
                    service.stop()
    figures["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def run(argv: list[str]) -> dict[str, Any]:
    """Runs the benchmark; returns its figures (``ragmesh bench priority`` prints and saves them)."""
    parser = argparse.ArgumentParser(prog="ragmesh bench priority", description=__doc__.splitlines()[0])
    parser.add_argument("--hostings", default="serve", help="comma-separated: serve, inprocess")
    parser.add_argument("--workers", type=int, default=2, help="document callers (svc_ingest runs 2 embed actors)")
    parser.add_argument("--load-batch", type=int, default=64, help="passages per document Embed call (ingest: 64)")
    parser.add_argument("--passage-words", type=int, default=120, help="words per passage (chunks are ~180 tokens)")
    parser.add_argument("--queries", type=int, default=40, help="query embeddings per measurement")
    parser.add_argument("--query-gap-s", type=float, default=0.1, help="pause between queries")
    parser.add_argument("--load-s", type=float, default=30.0, help="seconds of load alone per throughput figure")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument(
        "--schedulings",
        default="slice8+thread,slice8",
        help="comma-separated embedder schedulings to compare: slice<N> (document_slice_texts), +thread "
        "(interactive_thread), e.g. slice8,slice4,slice8+thread",
    )
    parser.add_argument("--ray-address", default="", help="join this Ray head instead of a private instance")
    parser.add_argument("--startup-timeout-s", type=float, default=900.0)
    args = parser.parse_args(argv)
    args.hostings = [h for h in args.hostings.split(",") if h]
    args.schedulings = [v for v in args.schedulings.split(",") if v]
    for variant in args.schedulings:
        _scheduling(variant)
    return asyncio.run(_bench(args))
