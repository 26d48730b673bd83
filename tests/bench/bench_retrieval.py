"""Search latency and throughput: in-process, direct gRPC and through Envoy; ANN recall of the index.

Needs the local stack (``ragmesh up``) with a corpus ingested for ``--tenant``.

* latency: the same queries (the dev questions) as the domain call in this
  process (``Searcher.search`` over the same stores), as a gRPC call straight
  to svc_retrieval, and through the Envoy edge, each query down every path
  back to back in rotating order so drift affects all paths alike; p50/p90/p99,
  what Envoy adds over in-process, and the median of the per-query differences;
  per path, the search's own time (SearchTimings.total_ms) and the wall time
  around it (the hop, for the gRPC paths).
* throughput: Search requests per second through Envoy at ``--concurrency``
  (16), next to InferenceService.Embed requests per second (one query text)
  through Envoy at the same concurrency: the embedding is the floor of a search.
* hop floor: the same client, rotation and Envoy binary in front of a bare
  grpc.aio server whose handler only waits as long as the in-process search
  took (``tests/bench/hop_floor.py``): what any Python gRPC server behind Envoy
  adds on this machine, and how much of the measured difference is
  svc_retrieval's own (``mesh_over_floor_p50_ms``).
* ANN recall: recall@10 of the HNSW index against exact search, on real corpus
  embeddings (stored vectors sampled from the index) and the embedded dev
  questions, for each search ef in ``--ef``; ``--build-grid`` also rebuilds the
  index with other (m, ef_construct) pairs to show what they buy.

The embedded engine lets one process open a data folder, so the in-process
side opens a copy of svc_retrieval's shard (``--edge-path``, default
``<RAGMESH_HOME>/data/svc_retrieval/chunks``); run it when no ingest is writing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import qdrant_edge as qe

from mesh import context
from mesh.errors import DeadlineExceeded, Unavailable
from mesh.settings import MeshSettings
from mesh.sparse import default_encoder
from ragmesh.inference.v1 import inference_service_pb2 as ipb
from ragmesh.inference.v1 import inference_service_pb2_grpc as ipb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from svc_retrieval.app import make_graph, search_settings
from svc_retrieval.clients import payload as pl
from svc_retrieval.clients.edge_index import EdgeVectorIndex, HnswSettings
from svc_retrieval.clients.inference import InferenceClient
from svc_retrieval.config import Config
from svc_retrieval.domain.model import SearchQuery
from svc_retrieval.domain.search import Searcher
from svc_retrieval.domain.versions import KnownVersions
from tests.bench import DEV_QUESTIONS, credentials, hop_floor
from tests.bench.machine import machine

_REPO = Path(__file__).resolve().parents[2]
_DEV_QUESTIONS = DEV_QUESTIONS


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 3),
        "p90_ms": round(_percentile(values, 90), 3),
        "p99_ms": round(_percentile(values, 99), 3),
        "mean_ms": round(statistics.fmean(values), 3),
        "calls": len(values),
    }


def _questions(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(str(json.loads(line)["question"]))
    return out


async def _timed(calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[float]:
    out = []
    for call in calls:
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def _rps(make_call: Callable[[int], Awaitable[Any]], concurrency: int, duration_s: float) -> dict[str, float]:
    """Requests per second with ``concurrency`` callers for ``duration_s``."""
    done = 0
    errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + duration_s

    async def worker(worker_id: int) -> None:
        nonlocal done, errors
        i = worker_id
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await make_call(i)
            except grpc.aio.AioRpcError:
                errors += 1
            else:
                done += 1
                latencies.append((time.perf_counter() - started) * 1000)
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "rps": round(done / elapsed, 2),
        "ok": done,
        "errors": errors,
        "concurrency": concurrency,
        "duration_s": round(elapsed, 2),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "p99_ms": round(_percentile(latencies, 99), 2) if latencies else 0.0,
    }


def _copy_shard(source: Path) -> Path:
    if not source.is_dir():
        raise SystemExit(f"bench retrieval: no embedded shard at {source} (ingest a corpus first, or pass --edge-path)")
    target = Path(tempfile.mkdtemp(prefix="ragmesh-bench-shard-"))
    shutil.copytree(source, target / "shard")
    return target / "shard"


async def _latency_and_rps(args: argparse.Namespace, shard: Path) -> dict[str, Any]:
    settings = MeshSettings.from_env()
    config = Config.from_env()
    questions = _questions(Path(args.questions))
    metadata = credentials.person(args.tenant)
    credentials.use_service_identity()
    vectors = EdgeVectorIndex(
        shard, config.dense_dim, HnswSettings(), optimize_idle_s=3600.0, search_threads=config.edge_search_threads
    )
    await vectors.open()
    graph = make_graph(config, settings)
    await graph.open()
    inference = InferenceClient.connect(settings.inference_addr, dense_dim=config.dense_dim)
    searcher = Searcher(
        vectors, graph, inference, inference, default_encoder(), search_settings(config), KnownVersions()
    )
    edge = grpc.aio.insecure_channel(settings.edge_addr)
    direct = grpc.aio.insecure_channel(settings.retrieval_addr)
    edge_search = rpb_grpc.RetrievalServiceStub(edge)
    direct_search = rpb_grpc.RetrievalServiceStub(direct)
    # InferenceService is internal (not routed at the edge): Embed-only goes to svc_inference as a service would.
    direct_inference = grpc.aio.insecure_channel(settings.inference_addr)
    embed_stub = ipb_grpc.InferenceServiceStub(direct_inference)
    service_metadata = credentials.service(args.tenant)
    try:
        rng = random.Random(7)
        order = [questions[rng.randrange(len(questions))] for _ in range(args.calls)]
        top_k = args.top_k

        def in_process(q: str) -> Callable[[], Awaitable[Any]]:
            async def call() -> Any:
                ctx = context.RequestContext("bench", context.new_request_id(), context.Identity(args.tenant), None)
                with context.bind(ctx):
                    return await searcher.search(args.tenant, SearchQuery(text=q, top_k=top_k))

            return call

        def over(stub: rpb_grpc.RetrievalServiceStub, q: str) -> Callable[[], Awaitable[Any]]:
            request = rpb.SearchRequest(query=q, top_k=top_k)
            return lambda: stub.Search(request, metadata=metadata, timeout=30)

        paths: dict[str, Callable[[str], Callable[[], Awaitable[Any]]]] = {
            "in_process": in_process,
            "direct_grpc": lambda q: over(direct_search, q),
            "through_envoy": lambda q: over(edge_search, q),
        }
        # Warm-up: connections, Envoy clusters, caches of the engine and of Neo4j.
        for make in paths.values():
            await _timed([make(q) for q in questions[: args.warmup]])
        results: dict[str, list[float]] = {name: [] for name in paths}
        # The search's own time as the searcher measured it (SearchTimings.total_ms), per path:
        # wall time minus this is the hop; the in-process path's is its searcher's.
        searched: dict[str, list[float]] = {name: [] for name in paths}
        response_sizes: list[int] = []  # of the direct path's answers, for the hop floor
        names = list(paths)
        # Each query goes down every path back to back, in a rotating order, so load drift
        # (other processes on a shared machine) and cache warmth hit all paths alike.
        for i, q in enumerate(order):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                started = time.perf_counter()
                outcome = await paths[name](q)()
                results[name].append((time.perf_counter() - started) * 1000)
                searched[name].append(outcome.timings.total_ms)
                if name == "direct_grpc":
                    response_sizes.append(outcome.ByteSize())
        latency = {name: _summary(values) for name, values in results.items()}
        # The per-query difference is steadier than a difference of two medians.
        paired = {
            f"{name}_minus_in_process_p50_ms": round(
                statistics.median(a - b for a, b in zip(results[name], results["in_process"], strict=True)), 3
            )
            for name in ("direct_grpc", "through_envoy")
        }
        hop = {
            name: {
                "search_p50_ms": round(statistics.median(searched[name]), 3),
                "wall_minus_search_p50_ms": round(
                    statistics.median(w - t for w, t in zip(results[name], searched[name], strict=True)), 3
                ),
            }
            for name in names
        }
        response_bytes = round(statistics.median(response_sizes))

        embed_request = [ipb.EmbedRequest(texts=[q], mode=ipb.EMBED_MODE_QUERY) for q in questions]
        search_rps = await _rps(
            lambda i: edge_search.Search(
                rpb.SearchRequest(query=questions[i % len(questions)], top_k=top_k), metadata=metadata, timeout=60
            ),
            args.concurrency,
            args.duration_s,
        )
        embed_rps = await _rps(
            lambda i: embed_stub.Embed(embed_request[i % len(embed_request)], metadata=service_metadata, timeout=60),
            args.concurrency,
            args.duration_s,
        )
        floor: dict[str, Any] = {}
        if args.floor_calls > 0:
            floor = await hop_floor.measure(latency["in_process"]["p50_ms"], response_bytes, args.floor_calls)
            floor["mesh_over_floor_p50_ms"] = round(
                paired["through_envoy_minus_in_process_p50_ms"] - floor["through_envoy_minus_in_process_p50_ms"], 3
            )
            # The same bare hop with nothing to wait for: what it costs when nothing along it has gone idle.
            floor["no_wait"] = await hop_floor.measure(0.0, response_bytes, args.floor_calls)
        return {
            "latency": latency,
            "paired_differences": paired,
            "search_vs_hop": hop,
            "hop_floor": floor,
            "envoy_added_p50_ms_over_in_process": round(
                latency["through_envoy"]["p50_ms"] - latency["in_process"]["p50_ms"], 3
            ),
            "envoy_added_p50_ms_over_direct": round(
                latency["through_envoy"]["p50_ms"] - latency["direct_grpc"]["p50_ms"], 3
            ),
            "throughput_through_envoy": {"search": search_rps, "embed_only": embed_rps},
        }
    finally:
        await edge.close(None)
        await direct.close(None)
        await direct_inference.close(None)
        await inference.close()
        await graph.close()
        await vectors.close()


def _scroll_vectors(shard: qe.EdgeShard, limit: int) -> tuple[list[list[float]], list[dict[str, Any]]]:
    vectors: list[list[float]] = []
    payloads: list[dict[str, Any]] = []
    offset = None
    while len(vectors) < limit:
        records, offset = shard.scroll(
            qe.ScrollRequest(offset=offset, limit=min(1000, limit - len(vectors)), with_payload=[pl.TENANT_FIELD],
                             with_vector=[pl.DENSE_VECTOR])
        )  # fmt: skip
        for r in records:
            vector = r.vector
            if isinstance(vector, dict) and pl.DENSE_VECTOR in vector:
                vectors.append(list(vector[pl.DENSE_VECTOR]))  # type: ignore[arg-type]
                payloads.append(dict(r.payload or {}))
        if offset is None:
            break
    return vectors, payloads


def _recall(shard: qe.EdgeShard, queries: Sequence[list[float]], ef: int, k: int = 10) -> tuple[float, float, float]:
    """(recall@k, exact p50 ms, ANN p50 ms) over ``queries``.

    Ties count: a corpus holds identical chunks (boilerplate pages), so an ANN
    hit is right when it scores at least the exact k-th score; comparing ids
    alone would call an equally near duplicate a miss.
    """
    hits = 0
    exact_ms: list[float] = []
    ann_ms: list[float] = []
    for q in queries:
        started = time.perf_counter()
        exact = shard.query(
            qe.QueryRequest(
                limit=k, query=qe.Query.Nearest(q, using=pl.DENSE_VECTOR), params=qe.SearchParams(exact=True)
            )
        )
        exact_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        ann = shard.query(
            qe.QueryRequest(
                limit=k, query=qe.Query.Nearest(q, using=pl.DENSE_VECTOR), params=qe.SearchParams(hnsw_ef=ef)
            )
        )
        ann_ms.append((time.perf_counter() - started) * 1000)
        if exact:
            kth = exact[-1].score - 1e-6
            hits += min(len(exact), sum(1 for p in ann if p.score >= kth))
    return hits / max(1, k * len(queries)), statistics.median(exact_ms), statistics.median(ann_ms)


def _ann(args: argparse.Namespace, shard_path: Path, query_vectors: Sequence[list[float]]) -> dict[str, Any]:
    config = Config.from_env()
    shard = qe.EdgeShard.load(str(shard_path))
    try:
        info = shard.info()
        corpus, _ = _scroll_vectors(shard, info.points_count)
        rng = random.Random(11)
        sample = rng.sample(corpus, min(args.ann_queries, len(corpus)))
        queries = list(query_vectors) + sample
        by_ef: dict[str, dict[str, float]] = {}
        current: dict[str, Any] = {
            "m": config.hnsw_m,
            "ef_construct": config.hnsw_ef_construct,
            "points": info.points_count,
            "indexed_vectors": info.indexed_vectors_count,
            "queries": len(queries),
            "by_ef": by_ef,
        }
        for ef in args.ef:
            recall, exact_p50, ann_p50 = _recall(shard, queries, ef)
            by_ef[str(ef)] = {
                "recall_at_10": round(recall, 4),
                "exact_p50_ms": round(exact_p50, 3),
                "hnsw_p50_ms": round(ann_p50, 3),
            }
    finally:
        shard.close()
    out: dict[str, Any] = {"index": current}
    if args.build_grid:
        out["grid"] = _grid(corpus, queries, args)
    return out


def _grid(
    corpus: Sequence[list[float]], queries: Sequence[list[float]], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Rebuilds the dense index for each (m, ef_construct) and measures recall at each ef."""
    rows = []
    for spec in args.build_grid.split(","):
        m, ef_construct = (int(x) for x in spec.split(":"))
        folder = Path(tempfile.mkdtemp(prefix="ragmesh-ann-"))
        try:
            shard = qe.EdgeShard.create(
                str(folder),
                qe.EdgeConfig(
                    vectors={pl.DENSE_VECTOR: qe.EdgeVectorParams(size=len(corpus[0]), distance=qe.Distance.Cosine)},
                    hnsw_config=qe.HnswIndexConfig(m=m, ef_construct=ef_construct, full_scan_threshold=10_000),
                ),
            )
            for start in range(0, len(corpus), 1000):
                points = [qe.Point(start + i, {pl.DENSE_VECTOR: v}) for i, v in enumerate(corpus[start : start + 1000])]
                shard.update(qe.UpdateOperation.upsert_points(points))
            started = time.perf_counter()
            shard.optimize()
            build_s = time.perf_counter() - started
            for ef in args.ef:
                recall, exact_p50, ann_p50 = _recall(shard, queries, ef)
                rows.append(
                    {
                        "m": m,
                        "ef_construct": ef_construct,
                        "ef": ef,
                        "build_s": round(build_s, 1),
                        "recall_at_10": round(recall, 4),
                        "hnsw_p50_ms": round(ann_p50, 3),
                        "exact_p50_ms": round(exact_p50, 3),
                    }
                )
            shard.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return rows


async def _embed_questions(args: argparse.Namespace) -> list[list[float]]:
    """The questions' query vectors from InferenceService; none when it is not running."""
    settings = MeshSettings.from_env()
    config = Config.from_env()
    client = InferenceClient.connect(settings.inference_addr, dense_dim=config.dense_dim)
    try:
        return [await client.embed_query(q) for q in _questions(Path(args.questions))]
    except (Unavailable, DeadlineExceeded):
        return []
    finally:
        await client.close()


def run(argv: list[str]) -> dict[str, Any]:
    """Measures and returns the figures (see the module docstring)."""
    settings = MeshSettings.from_env()
    parser = argparse.ArgumentParser(prog="ragmesh bench retrieval")
    parser.add_argument("--tenant", default="default", help="tenant whose corpus is searched (default: default)")
    parser.add_argument("--questions", default=str(_DEV_QUESTIONS), help="JSONL questions used as queries")
    parser.add_argument(
        "--edge-path", default=str(settings.home / "data" / "svc_retrieval" / "chunks"), help="svc_retrieval's shard"
    )
    parser.add_argument("--calls", type=int, default=400, help="searches per path for latency")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up searches per path")
    parser.add_argument("--top-k", type=int, default=10, help="top_k of every search")
    parser.add_argument(
        "--floor-calls", type=int, default=200, help="calls per path for the bare-hop floor (0 skips it)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="callers in flight for the throughput runs")
    parser.add_argument("--duration-s", type=float, default=20.0, help="length of each throughput run")
    parser.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256], help="search ef values for ANN recall")
    parser.add_argument("--ann-queries", type=int, default=300, help="stored vectors sampled as ANN queries")
    parser.add_argument("--build-grid", default="", help="also rebuild with m:ef_construct pairs, e.g. 16:100,32:256")
    parser.add_argument("--skip-latency", action="store_true", help="only measure ANN recall")
    parser.add_argument("--skip-ann", action="store_true", help="only measure latency and throughput")
    args = parser.parse_args(argv)

    shard = _copy_shard(Path(args.edge_path))
    try:
        figures: dict[str, Any] = {"tenant": args.tenant}
        if not args.skip_latency:
            figures.update(asyncio.run(_latency_and_rps(args, shard)))
        if not args.skip_ann:
            query_vectors = asyncio.run(_embed_questions(args))
            figures["ann_recall"] = _ann(args, shard, query_vectors)
            figures["ann_recall"]["question_queries"] = len(query_vectors)
        figures["machine"] = machine()
        return figures
    finally:
        shutil.rmtree(shard.parent, ignore_errors=True)
