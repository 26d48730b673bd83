"""``ragmesh bench contention``: interactive queries beside an ingest job, and the job beside them.

On the running stack (``ragmesh up``), through the Envoy edge, in one run:

1. **idle**: for ``--idle-s`` seconds, one Search caller (top 5, every leg) and
   one StreamChat caller (caches bypassed), each one call at a time with
   ``--pause-s`` between calls, as the ``bench`` tenant over its corpus (the
   samples, ingested first unless ``--corpus none``): Search latency, searches
   that came back with a degraded leg, StreamChat time to first token;
2. **ingest alone**: a job over ``--source`` for a fresh tenant, with no query
   running: chunks embedded per second of the job's own run time;
3. **ingest with queries**: the same folder for a second fresh tenant while the
   same two callers run as in step 1 until the job ends: the same figures as
   step 1 and the job's chunks/s;
4. **idle again** for ``--idle-s``: drift over the run shows as a gap between
   steps 1 and 4.

Judgements (issue 13): Search p50 during the ingest over idle (at most 2),
no degraded legs, StreamChat TTFT p50 during over idle (at most 1.5), and the
job's chunks/s with queries over alone. The idle figure is the median of steps
1 and 4 together. Every call is accounted for (answered, or ended with its
status code, or ``HUNG`` past its deadline plus ``--grace-s``).

Default source: ../shared/corpus/k8s-docs/concepts when present (said in the
output), else samples/. Graph extraction runs as the stack configures it (on
by default; ``--no-graph`` skips it). The two job tenants' documents stay in the
stack, each under its own tenant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.bench import DEV_QUESTIONS, JOB_ENDED, REPO, SHARED, credentials, ghz
from tests.bench.bench_soak import QUESTIONS, Ledger
from tests.bench.machine import machine

TENANT = "bench"
SHARED_CONCEPTS = SHARED / "corpus" / "k8s-docs" / "concepts"
MAX_SEARCH_RATIO = 2.0
MAX_TTFT_RATIO = 1.5


def questions(path: Path = DEV_QUESTIONS) -> list[str]:
    """The dev questions that have an answer (or the soak's questions when ../shared is absent)."""
    if not path.is_file():
        return list(QUESTIONS)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row["question"] for row in rows if row.get("gold_paths")] or list(QUESTIONS)


class Phase:
    """What one phase's callers saw."""

    def __init__(self) -> None:
        self.search_ms: list[float] = []
        self.degraded: list[str] = []
        self.ttft_ms: list[float] = []

    def report(self) -> dict[str, Any]:
        return {
            "searches": len(self.search_ms),
            "search_ms": ghz.latency_summary(self.search_ms),
            "searches_degraded": len(self.degraded),
            "degraded_legs": sorted(set(self.degraded)),
            "chats_with_a_token": len(self.ttft_ms),
            "ttft_ms": ghz.latency_summary(self.ttft_ms),
        }


class Callers:
    """One Search and one StreamChat caller through the edge, one call at a time each."""

    def __init__(self, channel: grpc.aio.Channel, ledger: Ledger, args: argparse.Namespace) -> None:
        self.search = rpb_grpc.RetrievalServiceStub(channel)
        self.agent = apb_grpc.AgentServiceStub(channel)
        self.md = credentials.person(TENANT)
        self.ledger = ledger
        self.args = args
        self.questions = questions()
        self._turn = 0

    def _next(self) -> str:
        self._turn += 1
        return self.questions[self._turn % len(self.questions)]

    async def _pause(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.args.pause_s)

    async def searcher(self, phase: Phase, stop: asyncio.Event) -> None:
        while not stop.is_set():
            request = rpb.SearchRequest(query=self._next(), top_k=5)
            started = time.perf_counter()
            response = await self.ledger.call(
                "Search",
                self.args.search_timeout_s,
                lambda t, r=request: self.search.Search(r, metadata=self.md, timeout=t),
            )
            if response is not None:
                phase.search_ms.append((time.perf_counter() - started) * 1000.0)
                phase.degraded.extend(str(leg) for leg in response.degraded_legs)
            await self._pause(stop)

    async def _chat(self, request: apb.StreamChatRequest, timeout_s: float, phase: Phase) -> None:
        started = time.perf_counter()
        first = True
        async for message in self.agent.StreamChat(request, metadata=self.md, timeout=timeout_s):
            if first and message.WhichOneof("event") == "token":
                phase.ttft_ms.append((time.perf_counter() - started) * 1000.0)
                first = False

    async def chatter(self, phase: Phase, stop: asyncio.Event) -> None:
        while not stop.is_set():
            request = apb.StreamChatRequest(message=self._next(), options=apb.ChatOptions(bypass_cache=True))
            await self.ledger.call("StreamChat", self.args.chat_timeout_s, lambda t, r=request: self._chat(r, t, phase))
            await self._pause(stop)

    async def run(self, phase: Phase, stop: asyncio.Event) -> None:
        await asyncio.gather(self.searcher(phase, stop), self.chatter(phase, stop))


def _seconds(stamp: Any) -> float:
    return float(stamp.seconds) + float(stamp.nanos) / 1e9


def job_figures(job: gpb.IngestJob) -> dict[str, Any]:
    """The job's outcome and chunks per second of its own run time (start to end, as the service records)."""
    run_s = _seconds(job.end_time) - _seconds(job.start_time) if job.HasField("end_time") else None
    chunks = job.counts.chunks_embedded
    return {
        "job_id": job.job_id,
        "state": gpb.JobState.Name(job.state),
        "documents_ingested": job.counts.documents_ingested,
        "documents_failed": job.counts.documents_failed,
        "chunks_embedded": chunks,
        "run_s": round(run_s, 1) if run_s is not None else None,
        "chunks_per_s": round(chunks / run_s, 2) if run_s else None,
        "failure": job.failure,
    }


async def ingest(
    channel: grpc.aio.Channel, ledger: Ledger, source: Path, tenant: str, graph: bool, timeout_s: float
) -> gpb.IngestJob:
    """A job over ``source`` for ``tenant``, followed until it ends (every call in the ledger)."""
    stub = gpb_grpc.IngestServiceStub(channel)
    md = credentials.person(tenant)
    request = gpb.CreateIngestJobRequest(sources=[str(source)], options=gpb.IngestOptions(skip_graph=not graph))
    created = await ledger.call(
        "CreateIngestJob", 30.0, lambda t: stub.CreateIngestJob(request, metadata=md, timeout=t)
    )
    if created is None:
        raise RuntimeError(f"bench contention: the ingest job for {tenant} could not be created ({ledger.report()})")
    job: gpb.IngestJob = created.job
    deadline = time.monotonic() + timeout_s
    while job.state not in JOB_ENDED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"ingest job {job.job_id} did not finish in {timeout_s:.0f} s")
        await asyncio.sleep(2.0)
        get = gpb.GetIngestJobRequest(job_id=job.job_id)
        got = await ledger.call(
            "GetIngestJob",
            10.0,
            lambda t, r=get: stub.GetIngestJob(r, metadata=md, timeout=t),
        )
        if got is not None:
            job = got.job
    return job


def ratio(during: Sequence[float], idle: Sequence[float]) -> float | None:
    if not during or not idle:
        return None
    return round(statistics.median(during) / statistics.median(idle), 3)


async def _timed(callers: Callers, phase: Phase, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(callers.run(phase, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    settings = MeshSettings.from_env()
    source = args.source or (SHARED_CONCEPTS if SHARED_CONCEPTS.is_dir() else REPO / "samples")
    if args.source is None and not SHARED_CONCEPTS.is_dir():
        print(f"bench contention: {SHARED_CONCEPTS} is absent; ingesting {source}", file=sys.stderr)
    if args.corpus == "samples":
        from tests.bench.bench_agent import ingest_samples

        print(
            "bench contention: ingesting the samples for the bench tenant (unchanged files are skipped)",
            file=sys.stderr,
        )
        await ingest_samples(settings, TENANT)
    stamp = uuid.uuid4().hex[:8]
    ledger = Ledger(args.grace_s)
    figures: dict[str, Any] = {
        "machine": {**machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "source": str(source),
            "graph": not args.no_graph,
            "idle_s": args.idle_s,
            "pause_s": args.pause_s,
            "query_tenant": TENANT,
            "job_tenants": [f"bench-alone-{stamp}", f"bench-busy-{stamp}"],
        },
    }
    idle_before, during, idle_after = Phase(), Phase(), Phase()
    async with grpc.aio.insecure_channel(settings.edge_addr) as channel:
        callers = Callers(channel, ledger, args)
        print(f"bench contention: {args.idle_s:g} s of queries with nothing else running", file=sys.stderr)
        await _timed(callers, idle_before, args.idle_s)
        print(f"bench contention: ingesting {source} with no queries", file=sys.stderr)
        alone = await ingest(channel, ledger, source, f"bench-alone-{stamp}", not args.no_graph, args.job_timeout_s)
        print("bench contention: ingesting it again (another tenant) while the queries run", file=sys.stderr)
        stop = asyncio.Event()
        queries = asyncio.create_task(callers.run(during, stop))
        try:
            busy = await ingest(channel, ledger, source, f"bench-busy-{stamp}", not args.no_graph, args.job_timeout_s)
        finally:
            stop.set()
            await queries
        print(f"bench contention: {args.idle_s:g} s of queries with nothing else running, again", file=sys.stderr)
        await _timed(callers, idle_after, args.idle_s)
    idle_search = idle_before.search_ms + idle_after.search_ms
    idle_ttft = idle_before.ttft_ms + idle_after.ttft_ms
    figures["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["idle_before"] = idle_before.report()
    figures["during_ingest"] = during.report()
    figures["idle_after"] = idle_after.report()
    figures["ingest_alone"] = job_figures(alone)
    figures["ingest_with_queries"] = job_figures(busy)
    figures["calls"] = ledger.report()
    search_ratio = ratio(during.search_ms, idle_search)
    ttft_ratio = ratio(during.ttft_ms, idle_ttft)
    rates = (figures["ingest_alone"]["chunks_per_s"], figures["ingest_with_queries"]["chunks_per_s"])
    figures["judgements"] = {
        "search_p50_idle_ms": round(statistics.median(idle_search), 1) if idle_search else None,
        "search_p50_during_ms": round(statistics.median(during.search_ms), 1) if during.search_ms else None,
        "search_p50_during_over_idle": search_ratio,
        "search_within_2x": search_ratio is not None and search_ratio <= MAX_SEARCH_RATIO,
        "searches_degraded_during": len(during.degraded),
        "ttft_p50_idle_ms": round(statistics.median(idle_ttft), 1) if idle_ttft else None,
        "ttft_p50_during_ms": round(statistics.median(during.ttft_ms), 1) if during.ttft_ms else None,
        "ttft_p50_during_over_idle": ttft_ratio,
        "ttft_within_1_5x": ttft_ratio is not None and ttft_ratio <= MAX_TTFT_RATIO,
        "ingest_chunks_alone": alone.counts.chunks_embedded,
        "ingest_chunks_with_queries": busy.counts.chunks_embedded,
        "ingest_chunks_per_s_with_queries_over_alone": round(rates[1] / rates[0], 3) if all(rates) else None,
        "every_call_accounted": figures["calls"]["every_call_accounted"],
    }
    print(f"bench contention: {json.dumps(figures['judgements'])}", file=sys.stderr)
    return figures


def run(argv: list[str]) -> dict[str, Any]:
    """Runs the benchmark; returns its figures (``ragmesh bench contention`` prints and saves them)."""
    parser = argparse.ArgumentParser(prog="ragmesh bench contention", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="folder each job ingests (default: see above)")
    parser.add_argument("--no-graph", action="store_true", help="skip graph extraction in both jobs")
    parser.add_argument("--idle-s", type=float, default=60.0, help="seconds of queries before and after the jobs")
    parser.add_argument("--pause-s", type=float, default=0.5, help="each caller's pause between its calls")
    parser.add_argument("--corpus", choices=("samples", "none"), default="samples", help="ingest first for bench")
    parser.add_argument("--search-timeout-s", type=float, default=10.0)
    parser.add_argument("--chat-timeout-s", type=float, default=60.0)
    parser.add_argument("--job-timeout-s", type=float, default=7200.0, help="longest wait for each job")
    parser.add_argument("--grace-s", type=float, default=10.0, help="past its deadline, a call with no end is hung")
    args = parser.parse_args(argv)
    return asyncio.run(_bench(args))
