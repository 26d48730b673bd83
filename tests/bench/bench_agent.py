"""The agent's cost over its parts, and its answers on the dev set.

``--mode ttft`` (default): for each question, StreamChat's time to first token
through the Envoy edge (caches bypassed), the same question's search time
(RetrievalService.Search called directly, as the agent calls it) and the LLM
backend's own time to first token for the very prompt the agent builds
(InferenceService.StreamGenerate called directly; the backend's figure from
the generation summary). The agent's overhead is StreamChat TTFT minus search
time minus backend TTFT. Before each measured generation the same short
"reset" prompt runs, so the agent's generation and the direct one start from
the same llama.cpp prompt cache. Also the TTFT of a cache hit.

``--mode devset``: every question of a dev set (one JSON object a line with
``question``, ``gold_paths``, ``kind``) through StreamChat: the share of
answerable questions with a gold page among the cited sources (a citation
matches when its source path ends with the gold path), and the share of
unanswerable ones declined.

Needs the local stack (``ragmesh up``) with the samples ingested for the
tenant; ``--ingest`` ingests them first (graph extraction skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from mesh.channels import open_channel
from mesh.settings import MeshSettings
from ragmesh.agent.v1 import agent_service_pb2 as apb
from ragmesh.agent.v1 import agent_service_pb2_grpc as apb_grpc
from ragmesh.inference.v1 import inference_service_pb2 as ipb
from ragmesh.inference.v1 import inference_service_pb2_grpc as ipb_grpc
from ragmesh.ingest.v1 import ingest_service_pb2 as gpb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc as gpb_grpc
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from ragmesh.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from svc_agent.clients.inference import generate_request
from svc_agent.clients.retrieval import source_from_hit
from svc_agent.config import Config as AgentConfig
from svc_agent.domain import prompts
from svc_agent.domain.ports import GenerationRequest
from tests.bench import DEV_QUESTIONS, JOB_ENDED, credentials
from tests.bench.machine import machine

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
SAMPLE_QUESTIONS = SAMPLES / "questions.jsonl"
SHARED_DEV_SET = DEV_QUESTIONS


def load_questions(path: Path) -> list[dict[str, Any]]:
    """The questions of a dev-set file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, mean and count, in milliseconds as given."""
    if not values:
        return {"n": 0}
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p90_ms": round(percentile(values, 90), 2),
        "mean_ms": round(statistics.fmean(values), 2),
        "n": len(values),
    }


def metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    """Request metadata carrying a token of a person of ``tenant``."""
    return credentials.person(tenant)


async def ingest_samples(settings: MeshSettings, tenant: str, timeout_s: float = 1800.0) -> gpb.IngestJob:
    """Ingests samples/ for ``tenant`` through the edge (unchanged files are skipped) and waits for the job."""
    async with open_channel(settings.edge_addr, ["ragmesh.ingest.v1.IngestService"], tracing=False) as channel:
        stub = gpb_grpc.IngestServiceStub(channel)
        created = await stub.CreateIngestJob(
            gpb.CreateIngestJobRequest(sources=[str(SAMPLES)], options=gpb.IngestOptions(skip_graph=True)),
            metadata=metadata(tenant),
            timeout=30,
        )
        job: gpb.IngestJob = created.job
        deadline = time.monotonic() + timeout_s
        while job.state not in JOB_ENDED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"ingest job {job.job_id} did not finish in {timeout_s:.0f} s")
            await asyncio.sleep(2.0)
            request = gpb.GetIngestJobRequest(job_id=job.job_id)
            job = (await stub.GetIngestJob(request, metadata=metadata(tenant), timeout=10)).job
        if job.state not in (gpb.JOB_STATE_SUCCEEDED, gpb.JOB_STATE_PARTIAL_SUCCESS):
            raise RuntimeError(f"ingest job {job.job_id} ended {gpb.JobState.Name(job.state)}: {job.failure}")
        return job


class Mesh:
    """Stubs to the agent through the edge, and to retrieval and inference directly."""

    def __init__(self, settings: MeshSettings, tenant: str) -> None:
        self.tenant = tenant
        self.md = metadata(tenant)
        self.service_md = credentials.service(tenant)
        self._channels = [
            open_channel(settings.edge_addr, ["ragmesh.agent.v1.AgentService"], tracing=False),
            open_channel(settings.retrieval_addr, ["ragmesh.retrieval.v1.RetrievalService"], tracing=False),
            open_channel(settings.inference_addr, ["ragmesh.inference.v1.InferenceService"], tracing=False),
        ]
        self.agent = apb_grpc.AgentServiceStub(self._channels[0])
        self.retrieval = rpb_grpc.RetrievalServiceStub(self._channels[1])
        self.inference = ipb_grpc.InferenceServiceStub(self._channels[2])

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)

    async def chat(self, question: str, *, bypass_cache: bool) -> tuple[float, list[apb.StreamChatResponse]]:
        """(client-side TTFT in ms, every event) of one StreamChat."""
        started = time.perf_counter()
        ttft = 0.0
        events: list[apb.StreamChatResponse] = []
        request = apb.StreamChatRequest(message=question, options=apb.ChatOptions(bypass_cache=bypass_cache))
        async for event in self.agent.StreamChat(request, metadata=self.md, timeout=600):
            if not ttft and event.WhichOneof("event") == "token":
                ttft = (time.perf_counter() - started) * 1000
            events.append(event)
        return ttft, events

    async def search(self, query: str, top_k: int) -> tuple[float, rpb.SearchResponse]:
        """(client-side ms, response) of one Search, called directly."""
        started = time.perf_counter()
        response = await self.retrieval.Search(rpb.SearchRequest(query=query, top_k=top_k), metadata=self.md)
        return (time.perf_counter() - started) * 1000, response

    async def generate(self, request: GenerationRequest, *, max_tokens: int | None = None) -> ipb.GenerationSummary:
        """The backend's summary of one generation, called directly; stops after ``max_tokens`` when given."""
        proto = generate_request(request)
        if max_tokens is not None:
            proto.sampling.max_tokens = max_tokens
        call: AsyncIterator[ipb.StreamGenerateResponse] = self.inference.StreamGenerate(proto, metadata=self.service_md)
        summary = ipb.GenerationSummary()
        async for response in call:
            if response.HasField("summary"):
                summary = response.summary
        return summary


def _steps(events: Sequence[apb.StreamChatResponse]) -> list[str]:
    return [e.step.detail for e in events if e.WhichOneof("event") == "step"]


async def measure_ttft(mesh: Mesh, questions: Sequence[str], rounds: int, config: AgentConfig) -> dict[str, Any]:
    """StreamChat TTFT against search time plus backend TTFT for the same prompt; and a cache hit's TTFT."""
    reset = GenerationRequest(
        prompt=prompts.answer_prompt("What is a Pod?", [], config.settings.source_chars), max_tokens=1, temperature=0.0
    )
    agent_ttft: list[float] = []
    search_ms: list[float] = []
    backend_ttft: list[float] = []
    overhead: list[float] = []
    skipped: list[str] = []
    agent_breakdown: dict[str, list[float]] = {"planning": [], "retrieval": []}
    for question in questions:  # warm-up: connections, model caches, Envoy clusters
        await mesh.chat(question, bypass_cache=True)
    for _ in range(rounds):
        for question in questions:
            await mesh.generate(reset)
            ttft, events = await mesh.chat(question, bypass_cache=True)
            final = events[-1].final
            if not final.answered_from_documents or any("corrective" in d for d in _steps(events)):
                # The direct replay below rebuilds the prompt from one search: only comparable without more searches.
                skipped.append(question)
                continue
            searched_ms, response = await mesh.search(final.rewritten_query, config.settings.default_top_k)
            sources = [source_from_hit(hit) for hit in response.hits]
            request = GenerationRequest(
                prompt=prompts.answer_prompt(final.rewritten_query, sources, config.settings.source_chars),
                max_tokens=config.settings.answer_max_tokens,
                temperature=config.settings.temperature,
                repeat_penalty=config.settings.repeat_penalty,
                stop=prompts.RESPONDER_STOPS,
            )
            await mesh.generate(reset)
            backend = (await mesh.generate(request, max_tokens=1)).time_to_first_token_ms
            agent_ttft.append(ttft)
            search_ms.append(searched_ms)
            backend_ttft.append(backend)
            overhead.append(ttft - searched_ms - backend)
            agent_breakdown["planning"].append(final.latency.planning_ms)
            agent_breakdown["retrieval"].append(final.latency.retrieval_ms)
    hits: list[float] = []
    for question in questions:
        await mesh.chat(question, bypass_cache=False)
        ttft, events = await mesh.chat(question, bypass_cache=False)
        if events[-1].final.cache_hit != apb.CACHE_HIT_NONE:
            hits.append(ttft)
    return {
        "streamchat_ttft_via_envoy": summary(agent_ttft),
        "search_direct": summary(search_ms),
        "backend_ttft_same_prompt": summary(backend_ttft),
        "overhead_ttft_minus_search_minus_backend": summary(overhead),
        "agent_reported_planning": summary(agent_breakdown["planning"]),
        "agent_reported_retrieval": summary(agent_breakdown["retrieval"]),
        "cache_hit_ttft_via_envoy": summary(hits),
        "not_comparable_runs": len(skipped),
        "questions": list(questions),
        "rounds": rounds,
    }


async def evaluate(mesh: Mesh, questions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Gold pages among the citations for answerable questions; declines for unanswerable ones."""
    answerable = gold_cited = declined_answerable = unanswerable = declined = 0
    citations_per_answer: list[int] = []
    ttfts: list[float] = []
    misses: list[str] = []
    for item in questions:
        ttft, events = await mesh.chat(item["question"], bypass_cache=True)
        final = events[-1].final
        ttfts.append(ttft)
        cited = [c.source_uri for c in final.citations]
        if item.get("kind") == "unanswerable" or not item.get("gold_paths"):
            unanswerable += 1
            declined += not final.answered_from_documents
            continue
        answerable += 1
        citations_per_answer.append(len(cited))
        declined_answerable += not final.answered_from_documents
        if any(uri.endswith(gold) for uri in cited for gold in item["gold_paths"]):
            gold_cited += 1
        else:
            misses.append(str(item.get("id", item["question"][:40])))
    return {
        "answerable": answerable,
        "gold_page_cited": gold_cited,
        "gold_page_cited_rate": round(gold_cited / answerable, 4) if answerable else None,
        "answerable_declined": declined_answerable,
        "unanswerable": unanswerable,
        "unanswerable_declined": declined,
        "mean_citations_per_answer": round(statistics.fmean(citations_per_answer), 2) if citations_per_answer else None,
        "ttft": summary([t for t in ttfts if t]),
        "missed": misses,
    }


def run(argv: list[str]) -> dict[str, Any]:
    """``ragmesh bench agent [--mode ttft|devset|all] ...``"""
    parser = argparse.ArgumentParser(prog="ragmesh bench agent")
    parser.add_argument("--mode", choices=("ttft", "devset", "all"), default="ttft")
    parser.add_argument("--tenant", default="default", help="tenant whose corpus holds the samples")
    parser.add_argument("--ingest", action="store_true", help="ingest samples/ for the tenant first")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds over the questions (ttft)")
    parser.add_argument("--question", action="append", default=[], help="a question to time (repeatable)")
    parser.add_argument(
        "--dev-set",
        type=Path,
        default=SHARED_DEV_SET if SHARED_DEV_SET.is_file() else SAMPLE_QUESTIONS,
        help="dev-set file for --mode devset",
    )
    parser.add_argument("--limit", type=int, default=0, help="use only the first N dev-set questions")
    args = parser.parse_args(argv)
    settings = MeshSettings.from_env()
    config = AgentConfig.from_env()

    async def main() -> dict[str, Any]:
        figures: dict[str, Any] = {
            "machine": machine(),
            "tenant": args.tenant,
        }
        if args.ingest:
            job = await ingest_samples(settings, args.tenant)
            figures["ingest"] = {"job_id": job.job_id, "documents_ingested": job.counts.documents_ingested}
        mesh = Mesh(settings, args.tenant)
        try:
            if args.mode in ("ttft", "all"):
                questions = (
                    args.question
                    or [q["question"] for q in load_questions(SAMPLE_QUESTIONS) if q.get("kind") != "unanswerable"][:3]
                )
                figures["ttft"] = await measure_ttft(mesh, questions, args.rounds, config)
            if args.mode in ("devset", "all"):
                questions_all = load_questions(args.dev_set)
                if args.limit:
                    questions_all = questions_all[: args.limit]
                figures["devset"] = {"file": str(args.dev_set), **await evaluate(mesh, questions_all)}
        except grpc.aio.AioRpcError as exc:
            raise SystemExit(
                f"bench agent: {exc.code().name}: {exc.details()} (is the stack up? ragmesh status)"
            ) from exc
        finally:
            await mesh.close()
        return figures

    return asyncio.run(main())
