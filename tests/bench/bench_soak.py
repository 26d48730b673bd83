"""``ragmesh bench soak``: mixed traffic through the edge for a while; memory and open files of every part.

For ``--duration-s`` (default 600), as the ``bench`` tenant through Envoy:
``--search-workers`` closed-loop Search callers, ``--chat-workers`` StreamChat
callers (caches bypassed), and one ingest job of ``--ingest-source`` (default
../shared/corpus when present, else samples/; graph extraction off unless
``--ingest-graph``) followed with GetIngestJob every ``--poll-s`` seconds beside
a ListDocuments; a job that is still running at the end is cancelled. Every call
is accounted for: started = answered OK + ended with each status code + ``HUNG``
(no end by its deadline plus ``--grace-s``); calls in flight at the end are
waited for. Calls are single attempts on a plain channel: nothing is retried
out of sight.

Every ``--sample-s`` seconds (default 10) the RSS and open file descriptors of
every part ``ragmesh status --json`` lists are read from /proc, for the part's
own process and for its whole process tree (tests/bench/procs.py), with the
tree's summed PSS beside its summed RSS (shared pages counted once: see procs)
and its process count, written to the JSON and plotted (``--chart``); the growth
of each between the first sample at or after ``--baseline-s`` (default 120: the
end of the second minute) and the last is reported per part. Parts whose pid changed during the run are listed.
Each sample also reads the tenant's index size from svc_retrieval (points,
documents, chunk and entity nodes), and ``store_growth`` says what the index took
in over the same window: svc_retrieval holds the embedded vector store in its own
process, so an ingest of new documents grows it with the data, not with a leak.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc

from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from ragmesh.retrieval.v1 import index_service_pb2 as ipb
from ragmesh.retrieval.v1 import index_service_pb2_grpc as ipb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from tests.bench import JOB_ENDED, credentials, ghz, procs
from tests.bench.machine import machine
from tests.support import edge_fuzz

TENANT = "bench"
#: Codes after which CreateIngestJob is not tried again (the same request would fail the same way).
_REFUSED_FOR_GOOD = frozenset({"INVALID_ARGUMENT", "NOT_FOUND", "PERMISSION_DENIED", "UNAUTHENTICATED"})
REPO = Path(__file__).resolve().parents[2]
SHARED_CORPUS = REPO.parent / "shared" / "corpus"
QUESTIONS = (
    "How does a Deployment roll out a new version of its Pods?",
    "What does a Kubernetes Service do for the Pods behind it?",
    "How are ConfigMaps mounted into a container?",
    "What is the difference between a StatefulSet and a Deployment?",
    "How does the scheduler pick a node for a Pod?",
)


def part_pids() -> dict[str, int | None]:
    """Part name -> pid, from ``ragmesh status --json``."""
    done = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "status", "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0 or not done.stdout:
        raise SystemExit(f"ragmesh status --json failed: {done.stderr.strip()}")
    return edge_fuzz.part_pids(json.loads(done.stdout))


class Ledger:
    """Every call started, and how each ended, per RPC."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.started: collections.Counter[str] = collections.Counter()
        self.ended: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.ok_ms: dict[str, list[float]] = collections.defaultdict(list)
        self.rejected_ms: dict[str, list[float]] = collections.defaultdict(list)
        self.client_errors: list[str] = []
        self.last_code = ""

    async def call(self, rpc: str, timeout_s: float, make: Callable[[float], Awaitable[Any]]) -> Any:
        """Runs one call (``make(timeout_s)``) and records its outcome; returns its result, or None.

        ``last_code`` holds the call's outcome afterwards (``OK``, a status code's name, ``HUNG``).
        """
        self.started[rpc] += 1
        started = time.perf_counter()
        result: Any = None
        try:
            async with asyncio.timeout(timeout_s + self.grace_s):
                result = await make(timeout_s)
            code = "OK"
        except TimeoutError:
            code = "HUNG"
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
        except Exception as exc:  # noqa: BLE001 - recorded: a call the bench could not make is still accounted
            code = "CLIENT_ERROR"
            self.client_errors.append(f"{rpc}: {type(exc).__name__}: {exc}"[:300])
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self.last_code = code
        self.ended[rpc][code] += 1
        if code == "OK":
            self.ok_ms[rpc].append(elapsed_ms)
        elif code == "RESOURCE_EXHAUSTED":
            self.rejected_ms[rpc].append(elapsed_ms)
        return result if code == "OK" else None

    def report(self) -> dict[str, Any]:
        calls: dict[str, Any] = {}
        for rpc in sorted(self.started):
            ended = self.ended[rpc]
            rejected = self.rejected_ms[rpc]
            calls[rpc] = {
                "started": self.started[rpc],
                "outcomes": dict(sorted(ended.items())),
                "unaccounted": self.started[rpc] - sum(ended.values()),
                "latency_ok": ghz.latency_summary(self.ok_ms[rpc]),
                "rejected": {
                    "count": len(rejected),
                    "within_100ms": sum(1 for ms in rejected if ms <= ghz.FAST_REJECTION_MS),
                    **ghz.latency_summary(rejected),
                },
            }
        totals: collections.Counter[str] = collections.Counter()
        for ended in self.ended.values():
            totals.update(ended)
        started = sum(self.started.values())
        return {
            "per_rpc": calls,
            "started": started,
            "outcomes": dict(sorted(totals.items())),
            "unaccounted": started - sum(totals.values()),
            "hung": totals["HUNG"],
            "every_call_accounted": started == sum(totals.values()),
            "first_client_errors": self.client_errors[:10],
        }


class Traffic:
    """The soak's callers, on one channel to the edge."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]], ledger: Ledger) -> None:
        self.search = rpb_grpc.RetrievalServiceStub(channel)
        self.agent = apb_grpc.AgentServiceStub(channel)
        self.ingest = gpb_grpc.IngestServiceStub(channel)
        self.md = tuple(metadata)
        self.ledger = ledger
        self.stop = asyncio.Event()
        self.ttft_ms: list[float] = []
        self.job: gpb.IngestJob | None = None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def searcher(self, worker: int, timeout_s: float, pause_s: float) -> None:
        i = 0
        while not self.stop.is_set():
            query = f"{QUESTIONS[i % len(QUESTIONS)]} (soak {worker}-{i})"
            request = rpb.SearchRequest(query=query, top_k=5)
            await self.ledger.call(
                "Search", timeout_s, lambda t, r=request: self.search.Search(r, metadata=self.md, timeout=t)
            )
            i += 1
            await self._pause(pause_s)

    async def _chat(self, request: apb.StreamChatRequest, timeout_s: float) -> None:
        started = time.perf_counter()
        first = True
        async for message in self.agent.StreamChat(request, metadata=self.md, timeout=timeout_s):
            if first and message.WhichOneof("event") == "token":
                self.ttft_ms.append((time.perf_counter() - started) * 1000.0)
                first = False

    async def chatter(self, worker: int, timeout_s: float, pause_s: float) -> None:
        i = 0
        while not self.stop.is_set():
            message = f"{QUESTIONS[(i + worker) % len(QUESTIONS)]} (soak {worker}-{i})"
            request = apb.StreamChatRequest(message=message, options=apb.ChatOptions(bypass_cache=True))
            await self.ledger.call("StreamChat", timeout_s, lambda t, r=request: self._chat(r, t))
            i += 1
            await self._pause(pause_s)

    async def ingester(self, source: Path, graph: bool, poll_s: float, timeout_s: float) -> None:
        request = gpb.CreateIngestJobRequest(sources=[str(source)], options=gpb.IngestOptions(skip_graph=not graph))
        while not self.stop.is_set() and self.job is None:
            created = await self.ledger.call(
                "CreateIngestJob",
                timeout_s,
                lambda t: self.ingest.CreateIngestJob(request, metadata=self.md, timeout=t),
            )
            if created is not None:
                self.job = created.job
            elif self.ledger.last_code in _REFUSED_FOR_GOOD:
                # The request itself was refused (a source the service cannot read, say): asking
                # again cannot help; the refusal is in the report and the soak goes on without it.
                print(f"bench soak: CreateIngestJob refused ({self.ledger.last_code}); no ingest", file=sys.stderr)
                return
            else:
                await self._pause(poll_s)
        while not self.stop.is_set():
            await self._pause(poll_s)
            assert self.job is not None
            if self.job.state not in JOB_ENDED:
                get = gpb.GetIngestJobRequest(job_id=self.job.job_id)
                got = await self.ledger.call(
                    "GetIngestJob", timeout_s, lambda t, r=get: self.ingest.GetIngestJob(r, metadata=self.md, timeout=t)
                )
                if got is not None:
                    self.job = got.job
            listing = gpb.ListDocumentsRequest(page_size=20)
            await self.ledger.call(
                "ListDocuments",
                timeout_s,
                lambda t, r=listing: self.ingest.ListDocuments(r, metadata=self.md, timeout=t),
            )

    async def finish_ingest(self, timeout_s: float) -> None:
        """Cancels the job if it still runs, then reads it once more (both calls accounted)."""
        if self.job is None:
            return
        job_id = self.job.job_id
        if self.job.state not in JOB_ENDED:
            cancel = gpb.CancelIngestJobRequest(job_id=job_id)
            await self.ledger.call(
                "CancelIngestJob", timeout_s, lambda t: self.ingest.CancelIngestJob(cancel, metadata=self.md, timeout=t)
            )
        get = gpb.GetIngestJobRequest(job_id=job_id)
        got = await self.ledger.call(
            "GetIngestJob", timeout_s, lambda t: self.ingest.GetIngestJob(get, metadata=self.md, timeout=t)
        )
        if got is not None:
            self.job = got.job


#: The figures whose growth is reported: the part's own process, and its whole tree (processes included).
GROWTH_KEYS = ("rss_bytes", "fds", "tree_rss_bytes", "tree_pss_bytes", "tree_fds", "tree_processes")
#: The ones the summary shows.
SUMMARY_KEYS = ("tree_rss_bytes", "tree_pss_bytes", "tree_fds")


def _baseline_sample(samples: Sequence[Mapping[str, Any]], baseline_s: float) -> Mapping[str, Any]:
    """The first sample at or after ``baseline_s`` (the first sample when none is that late); samples not empty."""
    return next((s for s in samples if s["t_s"] >= baseline_s), samples[0])


def growth(samples: Sequence[Mapping[str, Any]], baseline_s: float) -> dict[str, Any]:
    """Per part and figure: the value at the first sample at or after ``baseline_s``, the last, and the change."""
    if not samples:
        return {}
    base = _baseline_sample(samples, baseline_s)
    last = samples[-1]
    out: dict[str, Any] = {"baseline_t_s": base["t_s"], "last_t_s": last["t_s"], "parts": {}}
    for part, before in base["parts"].items():
        after = last["parts"].get(part)
        if before is None or after is None:
            out["parts"][part] = None
            continue
        out["parts"][part] = {
            key: {
                "baseline": before[key],
                "last": after[key],
                "growth_pct": round(100.0 * (after[key] - before[key]) / before[key], 2) if before[key] else None,
            }
            for key in GROWTH_KEYS
            # PSS is absent from older samples and None where the kernel does not give it.
            if before.get(key) is not None and after.get(key) is not None
        }
    return out


def chart(figures: Mapping[str, Any], path: Path) -> Path:
    """Tree RSS (MiB) and tree open fds of every part against time, the baseline marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = figures["samples"]
    fig, (rss_ax, fd_ax) = plt.subplots(2, 1, figsize=(12, 9), sharex=True)
    parts = sorted({p for s in samples for p in s["parts"]})
    for part in parts:
        points = [(s["t_s"] / 60.0, s["parts"].get(part)) for s in samples]
        xs = [t for t, u in points if u]
        rss_ax.plot(xs, [u["tree_rss_bytes"] / 2**20 for _, u in points if u], ".-", label=part)
        fd_ax.plot(xs, [u["tree_fds"] for _, u in points if u], ".-", label=part)
    baseline = figures.get("growth", {}).get("baseline_t_s")
    for ax in (rss_ax, fd_ax):
        if baseline is not None:
            ax.axvline(baseline / 60.0, color="grey", linestyle=":", label="baseline")
        ax.grid(True, alpha=0.3)
        ax.set_yscale("log")
    rss_ax.set_ylabel("RSS of the part's process tree, MiB")
    fd_ax.set_ylabel("open file descriptors (tree)")
    fd_ax.set_xlabel("minutes of traffic")
    rss_ax.legend(fontsize=7, ncol=3)
    host = figures["machine"]
    fig.suptitle(
        f"ragmesh bench soak: {figures['settings']['duration_s']:g} s, {host.get('cpus_usable', '?')} cores, "
        f"load {host.get('load_average_at_start', ['?'])[0]} at start"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class StoreSize:
    """What the tenant's index holds, read from svc_retrieval (IndexService is internal: a service token).

    A part that stores the corpus grows with it: svc_retrieval holds the embedded vector
    store in its own process. The size at each sample lets the report tell that growth
    (``store_growth``) from a leak.
    """

    def __init__(self, settings: MeshSettings, tenant: str) -> None:
        self._channel = grpc.aio.insecure_channel(settings.retrieval_addr)
        self._stub = ipb_grpc.IndexServiceStub(self._channel)
        self._md = credentials.service(tenant)

    async def read(self) -> dict[str, int] | None:
        """Points, documents, chunk and entity nodes; None when svc_retrieval did not answer."""
        try:
            stats = await self._stub.GetIndexStats(ipb.GetIndexStatsRequest(), metadata=self._md, timeout=5.0)
        except grpc.aio.AioRpcError:
            return None
        return {
            "points": stats.points,
            "documents": stats.documents,
            "chunk_nodes": stats.chunk_nodes,
            "entity_nodes": stats.entity_nodes,
        }

    async def close(self) -> None:
        await self._channel.close(None)


async def _sample(pids: dict[str, int | None], store: StoreSize | None, started: float) -> dict[str, Any]:
    parts = await asyncio.to_thread(procs.sample, pids)
    sample: dict[str, Any] = {"t_s": round(time.monotonic() - started, 1), "parts": parts}
    if store is not None:
        sample["store"] = await store.read()
    return sample


async def _sampler(
    pids: dict[str, int | None], traffic: Traffic, started: float, every_s: float, store: StoreSize | None = None
) -> list[Any]:
    samples: list[dict[str, Any]] = []
    while True:
        samples.append(await _sample(pids, store, started))
        try:
            await asyncio.wait_for(traffic.stop.wait(), every_s)
        except TimeoutError:
            continue
        samples.append(await _sample(pids, store, started))
        return samples


def store_growth(samples: Sequence[Mapping[str, Any]], baseline_s: float) -> dict[str, Any] | None:
    """The index's size at the growth baseline and at the last sample; None when it was not read then."""
    if not samples:
        return None
    base = _baseline_sample(samples, baseline_s)
    before, after = base.get("store"), samples[-1].get("store")
    if not before or not after:
        return None
    return {key: {"baseline": before[key], "last": after[key], "added": after[key] - before[key]} for key in before}


def _job_json(job: gpb.IngestJob | None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {
        "job_id": job.job_id,
        "state": gpb.JobState.Name(job.state),
        "files_discovered": job.counts.files_discovered,
        "files_processed": job.counts.files_processed,
        "documents_ingested": job.counts.documents_ingested,
        "documents_unchanged": job.counts.documents_unchanged,
        "documents_failed": job.counts.documents_failed,
        "chunks_embedded": job.counts.chunks_embedded,
    }


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    settings = MeshSettings.from_env()
    source = args.ingest_source or (SHARED_CORPUS if SHARED_CORPUS.is_dir() else REPO / "samples")
    metadata = credentials.person(TENANT)
    pids_before = part_pids()
    ledger = Ledger(args.grace_s)
    figures: dict[str, Any] = {
        "machine": {**machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "duration_s": args.duration_s,
            "sample_s": args.sample_s,
            "baseline_s": args.baseline_s,
            "search_workers": args.search_workers,
            "chat_workers": args.chat_workers,
            "search_pause_s": args.search_pause_s,
            "chat_pause_s": args.chat_pause_s,
            "ingest_source": str(source),
            "ingest_graph": args.ingest_graph,
            "deadlines_s": {
                "search": args.search_timeout_s,
                "chat": args.chat_timeout_s,
                "ingest": args.ingest_timeout_s,
            },
            "grace_s": args.grace_s,
            "tenant": TENANT,
        },
    }
    async with grpc.aio.insecure_channel(settings.edge_addr) as channel:
        traffic = Traffic(channel, metadata, ledger)
        started = time.monotonic()
        store = StoreSize(settings, TENANT)
        sampler = asyncio.create_task(_sampler(pids_before, traffic, started, args.sample_s, store))
        workers = [
            *(traffic.searcher(w, args.search_timeout_s, args.search_pause_s) for w in range(args.search_workers)),
            *(traffic.chatter(w, args.chat_timeout_s, args.chat_pause_s) for w in range(args.chat_workers)),
            traffic.ingester(source, args.ingest_graph, args.poll_s, args.ingest_timeout_s),
        ]
        tasks = [asyncio.create_task(w) for w in workers]
        print(f"bench soak: {args.duration_s:g} s of traffic; ingesting {source}", file=sys.stderr)
        await asyncio.sleep(args.duration_s)
        traffic.stop.set()
        # Each worker ends its call in flight (bounded by its deadline plus the grace) and stops.
        await asyncio.gather(*tasks)
        traffic_s = time.monotonic() - started
        await traffic.finish_ingest(args.ingest_timeout_s)
        samples = await sampler
        await store.close()
    pids_after = part_pids()
    figures["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["traffic_s"] = round(traffic_s, 1)
    figures["calls"] = ledger.report()
    figures["stream_chat_ttft"] = ghz.latency_summary(traffic.ttft_ms)
    figures["ingest_job"] = _job_json(traffic.job)
    figures["restarted_parts"] = edge_fuzz.restarted(pids_before, pids_after)
    figures["samples"] = samples
    figures["growth"] = growth(samples, args.baseline_s)
    # Beside the growth: how much the tenant's index took in over the same window.
    figures["store_growth"] = store_growth(samples, args.baseline_s)
    figures["growth_summary"] = {
        part: {key: g[key]["growth_pct"] for key in SUMMARY_KEYS if key in g} if g else None
        for part, g in figures["growth"].get("parts", {}).items()
    }
    if samples:
        figures["peak_tree_rss_mib"] = {
            part: round(max(s["parts"][part]["tree_rss_bytes"] for s in samples if s["parts"].get(part)) / 2**20, 1)
            for part in samples[0]["parts"]
            if any(s["parts"].get(part) for s in samples)
        }
    if args.chart:
        try:
            figures["chart"] = str(chart(figures, Path(args.chart)))
        except ImportError as exc:
            figures["chart"] = f"not drawn: {exc}"
    print(
        f"bench soak: {figures['calls']['started']} calls {figures['calls']['outcomes']}, "
        f"median sample gap {statistics.median(_gaps(samples)) if len(samples) > 1 else 0:.1f} s",
        file=sys.stderr,
    )
    return figures


def _gaps(samples: Sequence[Mapping[str, Any]]) -> list[float]:
    return [b["t_s"] - a["t_s"] for a, b in itertools.pairwise(samples)]


def run(argv: list[str]) -> dict[str, Any]:
    """Runs the soak; returns its figures (``ragmesh bench soak`` prints and saves them)."""
    parser = argparse.ArgumentParser(prog="ragmesh bench soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=600.0, help="seconds of traffic (default 600)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between RSS/fd samples")
    parser.add_argument("--baseline-s", type=float, default=120.0, help="growth is measured from here to the end")
    parser.add_argument("--search-workers", type=int, default=2)
    parser.add_argument("--chat-workers", type=int, default=1)
    parser.add_argument("--search-pause-s", type=float, default=0.2, help="pause after each Search")
    parser.add_argument("--chat-pause-s", type=float, default=1.0, help="pause after each StreamChat")
    parser.add_argument("--poll-s", type=float, default=5.0, help="seconds between GetIngestJob/ListDocuments")
    parser.add_argument(
        "--ingest-source",
        type=lambda raw: Path(raw).resolve(),
        default=None,
        help="folder to ingest, relative to this directory (default: see above)",
    )
    parser.add_argument(
        "--ingest-graph",
        action="store_true",
        help="build the knowledge graph too, with the extractor svc_ingest is configured with (rules locally)",
    )
    parser.add_argument("--search-timeout-s", type=float, default=10.0)
    parser.add_argument("--chat-timeout-s", type=float, default=120.0)
    parser.add_argument("--ingest-timeout-s", type=float, default=10.0)
    parser.add_argument("--grace-s", type=float, default=10.0, help="past its deadline, a call with no end is hung")
    parser.add_argument("--chart", default=str(REPO / ".bench" / "soak.png"), help="PNG path ('' for none)")
    args = parser.parse_args(argv)
    if args.duration_s <= 0 or args.sample_s <= 0:
        parser.error("--duration-s and --sample-s must be positive")
    return asyncio.run(_bench(args))
