"""``ragmesh bench load``: ghz through the Envoy edge at several concurrencies; TTFT with our own client.

For each scenario (a ghz config in ``tests/load/``) and each concurrency
(``--concurrency``, default 1,4,16,64), ghz runs closed-loop callers for
``--duration-s`` seconds over one connection, as the ``bench`` tenant (whose
edge limits ``envoy/ratelimit/ragmesh.yaml`` sizes for benchmarks), and waits for
the calls in flight at the end, so every call has an outcome. Each step
records: calls, calls per status code (and whether ghz's tally and its per-call
details agree: ``accounted``), RPS and RPS of answered calls, p50/p95/p99 of
answered calls, the latency of refused calls per code (RESOURCE_EXHAUSTED: how
many came back within 100 ms), and the commonest error messages.

Scenarios: ``search`` (RetrievalService/Search), ``stream_chat``
(AgentService/StreamChat, server streaming, caches bypassed: ghz times whole
streams), ``create_ingest_job`` (a job on a two-file folder, at most
``--ingest-rps`` a second and only at concurrencies up to 4: each call queues a
job; the queue is drained before the next step and the drain time recorded),
``get_ingest_job`` and ``list_documents``, and ``embed``: InferenceService/Embed
of one query, which the edge does not route, called on svc_inference's own port
with a mesh service token, so "Search RPS at concurrency 16 against Embed-only
RPS" can be read (``judgements``).

Beside ghz, after each StreamChat step, the same number of concurrent streams
through the SDK (``ragmesh_client.AsyncClient``, one attempt per call) for the
same duration: time to first token, whole stream, and every call's outcome
(``HUNG`` when it did not end by its deadline plus ``--grace-s``).

Before measuring, the samples are ingested for the ``bench`` tenant (unchanged
files are skipped; ``--corpus none`` skips this), and each scenario that is not
rate-capped runs for ``--warmup-s`` seconds (default 10) at concurrency 4 (or the
highest asked, if lower) before its steps: Neo4j's JIT and the services' caches
warm up, so a step measures the running service rather than its first seconds
(a graph leg search cost Neo4j 5.8 ms of CPU right after a restart and 3.3 ms
warm). The warm-up's own calls and codes are kept under ``warmup``. Writes a PNG chart of latency
and throughput against concurrency (``--chart``). Needs the stack
(``ragmesh up``) and ghz, which ``scripts/install-go-tools.sh ghz`` builds into
the stack's Go cache; this benchmark builds it there the first time.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import yaml

from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2
from ragmesh.inference.v1 import inference_service_pb2
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2
from tests.bench import JOB_ENDED, credentials, ghz
from tests.bench.machine import machine
from tests.support.edge_limits import within_limits

TENANT = "bench"
#: Concurrency of each scenario's warm-up (lower when the steps ask for less).
_WARMUP_CONCURRENCY = 4
REPO = Path(__file__).resolve().parents[2]
_TINY_DOCS = {
    "load-a.md": "# Load test A\n\nA Deployment manages a ReplicaSet, which keeps Pods running.\n",
    "load-b.md": "# Load test B\n\nA Service gives a stable address to the Pods selected by its labels.\n",
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One ghz config and how the bench drives it."""

    config: str
    """The config's name in tests/load/ (without .json)."""

    target: str = "edge"
    """``edge`` (through Envoy as a person) or ``inference`` (svc_inference's port as a mesh service)."""

    max_concurrency: int = 0
    """Concurrencies above this are skipped (0: none are)."""

    rps_option: str = ""
    """The option capping this scenario's calls per second, if any."""


SCENARIOS: dict[str, Scenario] = {
    "search": Scenario("search"),
    "stream_chat": Scenario("stream_chat"),
    "create_ingest_job": Scenario("create_ingest_job", max_concurrency=4, rps_option="ingest_rps"),
    "get_ingest_job": Scenario("get_ingest_job"),
    "list_documents": Scenario("list_documents"),
    "embed": Scenario("embed", target="inference"),
}


def _ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated positive integers")
    return values


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    return names


def bench_limits() -> dict[str, str]:
    """The ``bench`` tenant's edge limits per family, as the stack's rate limit config sets them."""
    doc = yaml.safe_load((REPO / "envoy" / "ratelimit" / "ragmesh.yaml").read_text())
    for entry in doc.get("descriptors", []):
        if entry.get("value") == TENANT:
            return {
                d["value"]: f"{d['rate_limit']['requests_per_unit']}/{d['rate_limit']['unit']}"
                for d in entry.get("descriptors", [])
            }
    return {}


def tiny_folder() -> Path:
    """A two-file folder for CreateIngestJob (a fixed path, so re-ingesting it writes nothing new)."""
    folder = REPO / ".bench" / "load-ingest"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in _TINY_DOCS.items():
        path = folder / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    return folder


def run_ingest_job(
    edge: str, metadata: Sequence[tuple[str, str]], folder: Path, timeout_s: float
) -> tuple[gpb.IngestJob, float]:
    """Creates a job for ``folder`` and waits until it ends; returns it and the seconds that took.

    Jobs run one after another in creation order, so when this one ends every job
    created before it has ended too: this is how a step's queued jobs are drained.
    Each call waits out the tenant's edge limit (a step may have spent the minute's).
    """
    started = time.monotonic()
    with grpc.insecure_channel(edge) as channel:
        stub = gpb_grpc.IngestServiceStub(channel)
        request = gpb.CreateIngestJobRequest(sources=[str(folder)], options=gpb.IngestOptions(skip_graph=True))
        job: gpb.IngestJob = within_limits(stub.CreateIngestJob, request, metadata=tuple(metadata), timeout=30).job
        while job.state not in JOB_ENDED:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"ingest job {job.job_id} did not end in {timeout_s:.0f} s")
            time.sleep(1.0)
            get = gpb.GetIngestJobRequest(job_id=job.job_id)
            job = within_limits(stub.GetIngestJob, get, metadata=tuple(metadata), timeout=10).job
    return job, time.monotonic() - started


# -- StreamChat through the SDK -------------------------------------------------------------


async def _one_stream(client: Any, question: str, timeout_s: float, grace_s: float) -> dict[str, Any]:
    from ragmesh_client import RagmeshError, events

    started = time.perf_counter()
    first: float | None = None
    code = "OK"
    try:
        async with asyncio.timeout(timeout_s + grace_s):
            async for event in client.ask(question, bypass_cache=True, timeout_s=timeout_s):
                if first is None and isinstance(event, events.Token):
                    first = time.perf_counter()
    except TimeoutError:
        code = "HUNG"
    except RagmeshError as exc:
        code = exc.code.name
    ended = time.perf_counter()
    return {
        "code": code,
        "ttft_ms": (first - started) * 1000.0 if first is not None else None,
        "total_ms": (ended - started) * 1000.0,
    }


async def sdk_chat_step(
    edge: str, token: str, concurrency: int, duration_s: float, timeout_s: float, grace_s: float
) -> dict[str, Any]:
    """``concurrency`` closed-loop SDK streams for ``duration_s``; calls in flight at the end are waited for."""
    from ragmesh_client import AsyncClient

    results: list[dict[str, Any]] = []
    stop_at = time.monotonic() + duration_s
    started = time.perf_counter()
    async with AsyncClient(edge, token, max_attempts=1) as client:

        async def worker(w: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                question = f"What does a Kubernetes Service do for the Pods behind it? (sdk {w}-{i})"
                results.append(await _one_stream(client, question, timeout_s, grace_s))
                i += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    codes: dict[str, int] = {}
    for result in results:
        codes[result["code"]] = codes.get(result["code"], 0) + 1
    ok = [r for r in results if r["code"] == "OK"]
    rejected = [r["total_ms"] for r in results if r["code"] == "RESOURCE_EXHAUSTED"]
    return {
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 2),
        "calls": len(results),
        "codes": dict(sorted(codes.items())),
        "accounted": sum(codes.values()) == len(results),
        "ok_streams_per_s": round(len(ok) / elapsed, 3) if elapsed else 0.0,
        "ttft": ghz.latency_summary(r["ttft_ms"] for r in ok if r["ttft_ms"] is not None),
        "ok_without_token": sum(1 for r in ok if r["ttft_ms"] is None),
        "stream": ghz.latency_summary(r["total_ms"] for r in ok),
        "rejected": {
            "count": len(rejected),
            "within_100ms": sum(1 for ms in rejected if ms <= ghz.FAST_REJECTION_MS),
            **ghz.latency_summary(rejected),
        },
    }


# -- the run -------------------------------------------------------------------------------


def _judgements(scenarios: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The figures issue 13's acceptance lines are read from (nothing is asserted here)."""
    out: dict[str, Any] = {}

    def at(name: str, concurrency: int) -> dict[str, Any] | None:
        return next((s for s in scenarios.get(name, []) if s["concurrency"] == concurrency), None)

    search16, embed16 = at("search", 16), at("embed", 16)
    if search16 and embed16:
        out["search_ok_rps_c16"] = search16["ok_rps"]
        out["embed_ok_rps_c16"] = embed16["ok_rps"]
        out["search_vs_embed_rps_c16"] = round(search16["ok_rps"] / embed16["ok_rps"], 3) if embed16["ok_rps"] else None
    out["errors_other_than_resource_exhausted"] = {
        name: sum(s["errors_other_than_resource_exhausted"] for s in steps) for name, steps in scenarios.items()
    }
    out["rejected_at_highest_concurrency"] = {
        name: {"concurrency": steps[-1]["concurrency"], **steps[-1]["rejected"]}
        for name, steps in scenarios.items()
        if steps
    }
    out["every_call_accounted"] = all(s["accounted"] for steps in scenarios.values() for s in steps)
    return out


def chart(figures: Mapping[str, Any], path: Path) -> Path:
    """Latency (p50 solid, p99 dashed) and answered RPS against concurrency, one line per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat_ax, rps_ax) = plt.subplots(1, 2, figsize=(13, 5))
    series: dict[str, list[dict[str, Any]]] = dict(figures["scenarios"])
    for name, steps in series.items():
        xs = [s["concurrency"] for s in steps if s["latency_ok"]]
        if xs:
            (line,) = lat_ax.plot(xs, [s["latency_ok"]["p50_ms"] for s in steps if s["latency_ok"]], "o-", label=name)
            lat_ax.plot(xs, [s["latency_ok"]["p99_ms"] for s in steps if s["latency_ok"]], "--", color=line.get_color())
        rps_ax.plot([s["concurrency"] for s in steps], [s["ok_rps"] for s in steps], "o-", label=name)
    ttft = [s for s in figures.get("stream_chat_sdk", []) if s["ttft"]]
    if ttft:
        lat_ax.plot(
            [s["concurrency"] for s in ttft], [s["ttft"]["p50_ms"] for s in ttft], "s-", label="StreamChat TTFT (SDK)"
        )
        lat_ax.plot([s["concurrency"] for s in ttft], [s["ttft"]["p99_ms"] for s in ttft], "s--")
    for ax in (lat_ax, rps_ax):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency (closed-loop callers)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    lat_ax.set_yscale("log")
    lat_ax.set_ylabel("latency of answered calls, ms (p50 solid, p99 dashed)")
    rps_ax.set_ylabel("answered calls per second")
    host = figures["machine"]
    fig.suptitle(
        f"ragmesh bench load: {host.get('cpu_model', '?')}, {host.get('cpus_usable', '?')} cores, "
        f"load {host.get('load_average_at_start', ['?'])[0]} at start"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    settings = MeshSettings.from_env()
    person = dict(credentials.person(TENANT))
    token = person["authorization"].removeprefix("Bearer ")
    service = dict(credentials.service(TENANT))
    ghz_bin = ghz.binary()
    figures: dict[str, Any] = {
        "machine": {**machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "concurrency": args.concurrency,
            "duration_s": args.duration_s,
            "scenarios": args.scenarios,
            "ingest_rps": args.ingest_rps,
            "sdk_ttft": args.sdk_ttft,
            "corpus": args.corpus,
            "tenant": TENANT,
            "tenant_limits": bench_limits(),
            "connections_per_step": 1,
            "warmup_s": args.warmup_s,
        },
        "warmup": {},
        "scenarios": {},
    }
    folder = tiny_folder()
    ingest_md = tuple(credentials.person(TENANT))
    if args.corpus == "samples":
        from tests.bench.bench_agent import ingest_samples

        print("bench load: ingesting the samples for the bench tenant (unchanged files are skipped)", file=sys.stderr)
        await ingest_samples(settings, TENANT)
    job, _ = await asyncio.to_thread(run_ingest_job, settings.edge_addr, ingest_md, folder, args.drain_timeout_s)
    values = {"job_id": job.job_id, "folder": str(folder)}
    with tempfile.TemporaryDirectory(prefix="ragmesh-bench-load-") as tmp:
        protoset = ghz.write_protoset(
            Path(tmp) / "ragmesh.protoset",
            [retrieval_service_pb2, agent_service_pb2, gpb, inference_service_pb2],
        )
        for name in args.scenarios:
            scenario = SCENARIOS[name]
            config = ghz.load_config(scenario.config)
            host, metadata = (
                (settings.inference_addr, service) if scenario.target == "inference" else (settings.edge_addr, person)
            )
            step = functools.partial(
                ghz.step, ghz_bin, config, host=host, protoset=protoset, metadata=metadata, values=values
            )
            if args.warmup_s > 0 and not scenario.rps_option:
                warm_concurrency = min(_WARMUP_CONCURRENCY, max(args.concurrency))
                print(
                    f"bench load: {name} warm-up at concurrency {warm_concurrency} for {args.warmup_s:g} s",
                    file=sys.stderr,
                )
                warm = await asyncio.to_thread(step, concurrency=warm_concurrency, duration_s=args.warmup_s, rps=0)
                figures["warmup"][name] = {
                    k: warm[k] for k in ("concurrency", "elapsed_s", "calls", "codes", "accounted")
                }
            steps: list[dict[str, Any]] = []
            for concurrency in args.concurrency:
                if scenario.max_concurrency and concurrency > scenario.max_concurrency:
                    continue
                rps = getattr(args, scenario.rps_option) if scenario.rps_option else 0
                # A rate-capped step runs long enough for two calls at its cap: ghz at 1 call/s for 1 s
                # may send none before the duration ends.
                duration_s = max(args.duration_s, 2.0 / rps + 0.5) if rps else args.duration_s
                print(f"bench load: {name} at concurrency {concurrency} for {duration_s:g} s", file=sys.stderr)
                result = await asyncio.to_thread(step, concurrency=concurrency, duration_s=duration_s, rps=rps)
                if rps:
                    result["rps_cap"] = rps
                if name == "create_ingest_job":
                    _, drained_s = await asyncio.to_thread(
                        run_ingest_job, settings.edge_addr, ingest_md, folder, args.drain_timeout_s
                    )
                    result["queued_jobs_drained_s"] = round(drained_s, 1)
                print(f"  {result['codes']} ok_rps={result['ok_rps']} {result['latency_ok']}", file=sys.stderr)
                steps.append(result)
                if name == "stream_chat" and args.sdk_ttft:
                    print(f"bench load: StreamChat through the SDK, {concurrency} streams", file=sys.stderr)
                    sdk = await sdk_chat_step(
                        settings.edge_addr, token, concurrency, args.duration_s, args.chat_timeout_s, args.grace_s
                    )
                    print(f"  {sdk['codes']} ttft={sdk['ttft']}", file=sys.stderr)
                    figures.setdefault("stream_chat_sdk", []).append(sdk)
            figures["scenarios"][name] = steps
    figures["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["judgements"] = _judgements(figures["scenarios"])
    if figures.get("stream_chat_sdk"):
        figures["judgements"]["every_call_accounted"] = figures["judgements"]["every_call_accounted"] and all(
            s["accounted"] for s in figures["stream_chat_sdk"]
        )
        figures["judgements"]["sdk_streams_hung"] = sum(s["codes"].get("HUNG", 0) for s in figures["stream_chat_sdk"])
    if args.chart:
        try:
            figures["chart"] = str(chart(figures, Path(args.chart)))
        except ImportError as exc:
            figures["chart"] = f"not drawn: {exc}"
    return figures


def run(argv: list[str]) -> dict[str, Any]:
    """Runs the benchmark; returns its figures (``ragmesh bench load`` prints and saves them)."""
    parser = argparse.ArgumentParser(prog="ragmesh bench load", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=_ints, default=[1, 4, 16, 64], help="comma-separated (default 1,4,16,64)")
    parser.add_argument("--duration-s", type=float, default=10.0, help="seconds per step (default 10)")
    parser.add_argument(
        "--warmup-s", type=float, default=10.0, help="seconds of unmeasured calls before each scenario (default 10)"
    )
    parser.add_argument(
        "--scenarios", type=_names, default=list(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--ingest-rps", type=int, default=1, help="CreateIngestJob calls per second at most")
    parser.add_argument("--chat-timeout-s", type=float, default=60.0, help="deadline of each SDK StreamChat call")
    parser.add_argument("--grace-s", type=float, default=10.0, help="past its deadline, a call with no end is hung")
    parser.add_argument("--drain-timeout-s", type=float, default=600.0, help="longest wait for queued ingest jobs")
    parser.add_argument(
        "--sdk-ttft", action=argparse.BooleanOptionalAction, default=True, help="StreamChat TTFT with the SDK"
    )
    parser.add_argument("--corpus", choices=("samples", "none"), default="samples", help="ingest first for bench")
    parser.add_argument("--chart", default=str(REPO / ".bench" / "load.png"), help="PNG path ('' for none)")
    args = parser.parse_args(argv)
    return asyncio.run(_bench(args))
