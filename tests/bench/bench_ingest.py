"""``ragmesh bench ingest [PATH...]``: end-to-end ingest throughput against embedding alone.

Starts the real parts (PostgreSQL and Neo4j from the stack supervisor in a
throwaway home, svc_retrieval's IndexService over an embedded Qdrant folder,
svc_inference in-process with the packaged models (all-MiniLM-L6-v2 embeds),
svc_ingest with a local Ray instance), then:

1. startup: the time to bring those up, and a warm-up job over one file, which
   pays Ray's start and the first actors' cold start (reported apart);
2. end to end, graph extraction off: one job over the corpus; documents/s and
   chunks/s from the job's wall time;
3. embedding only: the very chunk texts the InferenceService received during
   step 2, embedded again through the same Embed RPC with the same batch size
   and concurrency; chunks/s, and the ratio end-to-end / embedding-only;
4. with ``--graph`` (the default extractor, ``rules``): the same corpus again, as a
   new tenant, with graph extraction on; its wall time over step 2's
   (``graph_on_over_off``: the issue asks for at most 1.3), and nodes written;
   with ``--graph --graph-extractor llm``: a job over ``--graph-files`` files;
   extraction chunks/s (StreamGenerate of the in-process svc_inference, or of the
   one at ``--inference-addr``).

Default corpus: ../shared/corpus/k8s-docs/concepts plus ../shared/corpus/noise
when present (said in the output), else the project's samples/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.bench import REPO, SHARED
from tests.bench.machine import machine
from tests.support.auth import auth_settings, use_service_token
from tests.support.tenants import new_tenant

SHARED_CONCEPTS = SHARED / "corpus" / "k8s-docs" / "concepts"
SHARED_NOISE = SHARED / "corpus" / "noise"


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ragmesh bench ingest", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="corpus folders or files (default: see above)")
    parser.add_argument("--max-files", type=int, default=0, help="use only the first N files (0: all)")
    parser.add_argument("--parse-concurrency", type=int, default=2)
    parser.add_argument("--embed-concurrency", type=int, default=2)
    parser.add_argument("--embed-batch-size", type=int, default=64)
    parser.add_argument("--graph", action="store_true", help="also measure graph extraction")
    parser.add_argument("--graph-extractor", choices=("rules", "llm"), default="rules")
    parser.add_argument("--graph-files", type=int, default=3, help="files of the llm extractor's job")
    parser.add_argument("--inference-addr", default="", help="a running svc_inference (default: serve it in-process)")
    return parser.parse_args(argv)


def _corpus(args: argparse.Namespace, target: Path) -> tuple[list[Path], str]:
    """Copies (links) the chosen files into one folder so a single job source covers them."""
    if args.paths:
        roots, note = list(args.paths), "paths given on the command line"
    elif SHARED_CONCEPTS.is_dir() and SHARED_NOISE.is_dir():
        roots, note = [SHARED_CONCEPTS, SHARED_NOISE], "shared corpus: k8s-docs/concepts + noise"
    else:
        roots, note = [REPO / "samples" / "k8s", REPO / "samples" / "noise"], "shared corpus absent: samples/"
    files: list[Path] = []
    for root in roots:
        files.extend(sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root])
    if args.max_files:
        files = files[: args.max_files]
    for i, f in enumerate(files):
        link = target / f"{i:05d}" / f.name
        link.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, link)
    return files, note


def _workdir() -> Path:
    work = Path(tempfile.mkdtemp(prefix="rmbench-ingest-", dir="/tmp"))
    work.chmod(0o755)  # the PostgreSQL OS user must reach its data folder inside
    return work


def _graph_subset(work: Path, corpus: Path, count: int) -> Path:
    subset = work / "graph-subset"
    subset.mkdir(exist_ok=True)
    for f in sorted(p for p in corpus.rglob("*.md"))[:count]:
        shutil.copyfile(f, subset / f.name)
    return subset


class _Recorder:
    """Keeps every text the in-process svc_inference embeds (to replay them embedding-only)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.lock = threading.Lock()
        self.enabled = False


def _embed_only(addr: str, texts: list[str], batch: int, concurrency: int) -> float:
    """Seconds to embed ``texts`` through InferenceService.Embed with the pipeline's client."""
    from svc_ingest.clients.inference import EmbedClient

    batches = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    clients = [EmbedClient(addr, "bench", timeout_s=300) for _ in range(concurrency)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda ib: clients[ib[0] % concurrency].embed(ib[1]), enumerate(batches)))
    elapsed = time.perf_counter() - started
    for c in clients:
        c.close()
    return elapsed


def _extraction_share(files: list[Path]) -> dict[str, Any]:
    """The rule extractor's cost beside the parse stage's own work, over the same chunks, in this process.

    What the parse stage does per file (parse, chunk, sparse-encode) is timed apart from what
    ``graph_rules`` adds (``mesh.entities.extract`` per chunk), file by file, so both share
    the machine's state; the ratio bounds what graph on adds to a job whose embedding is free.
    """
    from mesh.entities import extract
    from mesh.sparse import default_encoder
    from svc_ingest.domain.chunk import ChunkingOptions, chunk_elements
    from svc_ingest.domain.failures import FileFailure
    from svc_ingest.domain.parse import ParseOptions, parse_file

    encoder = default_encoder()
    parse_s = extract_s = 0.0
    chunks = entities = 0
    for path in files:
        t0 = time.perf_counter()
        try:
            doc = parse_file(path, path.name, ParseOptions())
        except FileFailure:
            continue
        pieces = chunk_elements(doc.elements, ChunkingOptions())
        for piece in pieces:
            encoder.encode_document(piece.text, title=doc.title, section=piece.section)
        t1 = time.perf_counter()
        for piece in pieces:
            entities += len(extract(piece.text, title=doc.title, section=piece.section).entities)
        parse_s += t1 - t0
        extract_s += time.perf_counter() - t1
        chunks += len(pieces)
    share = {
        "chunks": chunks,
        "parse_chunk_sparse_s": round(parse_s, 1),
        "extract_s": round(extract_s, 1),
        "extract_ms_per_chunk": round(1000 * extract_s / max(chunks, 1), 2),
        "entities_per_chunk": round(entities / max(chunks, 1), 1),
        "parse_stage_with_over_without": round((parse_s + extract_s) / max(parse_s, 1e-9), 3),
    }
    print(f"graph extraction in process: {share}", flush=True)
    return share


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    from mesh import migrations
    from mesh.server import ServerConfig, ServiceBinding, start_server
    from mesh.settings import MeshSettings
    from mesh.stack import StackConfig, Supervisor
    from ragmesh.inference.v1 import inference_service_pb2 as ipb
    from ragmesh.ingest.v1 import ingest_service_pb2 as pb
    from svc_inference.__main__ import bindings as inference_bindings
    from svc_inference.domain.runtime import ModelRuntime
    from svc_retrieval.__main__ import bindings as retrieval_bindings
    from svc_retrieval.app import open_components
    from svc_retrieval.config import Config as RetrievalConfig
    from tests.integration.local_inference import serve_local_inference
    from tests.support.ingest import Retrieval, ingest_config, serve_ingest
    from tests.support.stores import free_ports

    figures: dict[str, Any] = {"machine": machine()}
    # The pipeline's Ray workers call svc_inference with a service token, as under `ragmesh up`.
    use_service_token()
    work = _workdir()
    corpus = work / "corpus"
    files, note = _corpus(args, corpus)
    figures["corpus"] = {"note": note, "files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    print(f"corpus: {note}, {len(files)} files", flush=True)
    if args.graph and args.graph_extractor == "rules":
        figures["graph_extraction_in_process"] = _extraction_share(files)

    t0 = time.perf_counter()
    pg, bolt, http = free_ports(3)
    stack = StackConfig(home=work / "stack", postgres_port=pg, neo4j_bolt_port=bolt, neo4j_http_port=http)
    supervisor = Supervisor(stack)
    recorder = _Recorder()
    exits = contextlib.AsyncExitStack()
    try:
        supervisor.up(["postgres", "neo4j"], with_deps=False)
        dsn = f"postgresql://{stack.postgres_user}:{stack.postgres_password}@127.0.0.1:{pg}/{stack.postgres_database}"
        await migrations.apply_dsn(dsn)
        if args.inference_addr:
            inference_addr, embedder = args.inference_addr, "external svc_inference"
        else:

            def recording_bindings(runtime: ModelRuntime) -> list[ServiceBinding]:
                services = inference_bindings(runtime)
                servicer = services[0].servicer
                original = servicer.Embed

                async def recording_embed(request: ipb.EmbedRequest, context: Any) -> ipb.EmbedResponse:
                    if recorder.enabled:
                        with recorder.lock:
                            recorder.texts.extend(request.texts)
                    return await original(request, context)

                servicer.Embed = recording_embed
                return services

            inference_addr = (await exits.enter_async_context(serve_local_inference(recording_bindings))).addr
            embedder = "svc_inference in-process (local profile: all-minilm-l6-v2)"
        figures["embedder"] = embedder
        settings = MeshSettings(
            neo4j_uri=f"bolt://127.0.0.1:{bolt}", neo4j_password=stack.neo4j_password, inference_addr=inference_addr
        )
        rconfig = RetrievalConfig(vector_backend="edge", edge_path=work / "qdrant", optimize_idle_s=0.5)
        async with open_components(rconfig, settings) as parts:
            rserver = await start_server(retrieval_bindings(parts), ServerConfig(port=0), auth=auth_settings())
            import grpc

            from ragmesh.retrieval.v1 import index_service_pb2_grpc

            rchannel = grpc.aio.insecure_channel(f"127.0.0.1:{rserver.port}")
            retrieval = Retrieval(f"127.0.0.1:{rserver.port}", index_service_pb2_grpc.IndexServiceStub(rchannel))
            config = ingest_config(
                work,
                parse_concurrency=args.parse_concurrency,
                embed_concurrency=args.embed_concurrency,
                embed_batch_size=args.embed_batch_size,
                write_batch_documents=16,
                heartbeat_s=2.0,
                progress_interval_s=1.0,
                parse_timeout_s=600.0,
            )
            async with serve_ingest(config, dsn, retrieval, inference_addr) as ingest:
                figures["startup_s"] = round(time.perf_counter() - t0, 1)
                warm = work / "warmup"
                warm.mkdir()
                shutil.copyfile(REPO / "samples/k8s/concepts/policy/limit-range.md", warm / "limit-range.md")
                t1 = time.perf_counter()
                warmups: list[dict[str, Any]] = []
                # The measured job must not pay Ray's start: a warm-up job that did not succeed is run again.
                for _ in range(3):
                    warm_job = await ingest.run([str(warm)], skip_graph=True)
                    warmups.append({"state": pb.JobState.Name(warm_job.state), "failure": warm_job.failure})
                    if warm_job.state == pb.JOB_STATE_SUCCEEDED:
                        break
                figures["cold_start_job_s"] = round(time.perf_counter() - t1, 1)
                figures["cold_start_jobs"] = warmups
                print(
                    f"startup {figures['startup_s']} s, cold-start job {figures['cold_start_job_s']} s: {warmups}",
                    flush=True,
                )

                ingest.tenant = new_tenant("bench")
                recorder.enabled = True
                t2 = time.perf_counter()
                job = await ingest.run([str(corpus)], skip_graph=True)
                wall = time.perf_counter() - t2
                recorder.enabled = False
                c = job.counts
                figures["end_to_end"] = {
                    "state": pb.JobState.Name(job.state),
                    "wall_s": round(wall, 1),
                    "documents_ingested": c.documents_ingested,
                    "documents_failed": c.documents_failed,
                    "chunks": c.chunks_embedded,
                    "points_written": c.points_written,
                    "docs_per_s": round(c.documents_ingested / wall, 2),
                    "chunks_per_s": round(c.chunks_embedded / wall, 1),
                    "formats": {f.format: {"files": f.files, "failed": f.failed} for f in c.formats},
                    "failures": [{"path": e.path, "code": e.code, "reason": e.reason} for e in job.errors],
                    "job_failure": job.failure,
                }
                print(f"end to end: {figures['end_to_end']['chunks_per_s']} chunks/s over {wall:.0f} s", flush=True)

                if recorder.texts:
                    seconds = await asyncio.to_thread(
                        _embed_only, inference_addr, list(recorder.texts), args.embed_batch_size, args.embed_concurrency
                    )
                    embed_cps = len(recorder.texts) / seconds
                    figures["embedding_only"] = {
                        "chunks": len(recorder.texts),
                        "wall_s": round(seconds, 1),
                        "chunks_per_s": round(embed_cps, 1),
                    }
                    figures["ratio_end_to_end_over_embedding"] = round(
                        figures["end_to_end"]["chunks_per_s"] / embed_cps, 3
                    )
                else:
                    figures["embedding_only"] = "not measured: the InferenceService is external (no texts recorded)"

            if args.graph:
                figures["graph"] = await _graph(args, work, corpus, dsn, retrieval, inference_addr, config)
                off = figures["end_to_end"]["wall_s"]
                if args.graph_extractor == "rules" and off:
                    figures["graph"]["graph_on_over_off"] = round(figures["graph"]["wall_s"] / off, 3)
                    print(f"graph on / off: {figures['graph']['graph_on_over_off']}", flush=True)
            await rchannel.close(None)
            await rserver.stop(None)
    finally:
        await exits.aclose()
        supervisor.down(["postgres", "neo4j"], purge=True)
        shutil.rmtree(work, ignore_errors=True)
    return figures


async def _graph(
    args: argparse.Namespace, work: Path, corpus: Path, dsn: str, retrieval: Any, inference_addr: str, config: Any
) -> Any:
    from dataclasses import replace

    from ragmesh.ingest.v1 import ingest_service_pb2 as pb
    from tests.support.ingest import serve_ingest

    rules = args.graph_extractor == "rules"
    source = corpus if rules else _graph_subset(work, corpus, args.graph_files)
    graph_config = replace(config, graph_enabled=True, graph_extractor=args.graph_extractor)
    async with serve_ingest(graph_config, dsn, retrieval, inference_addr) as ingest:
        ingest.tenant = new_tenant("bench-graph")
        started = time.perf_counter()
        job = await ingest.run([str(source)], skip_graph=False)
        wall = time.perf_counter() - started
    return {
        "extractor": args.graph_extractor,
        "state": pb.JobState.Name(job.state),
        "documents_ingested": job.counts.documents_ingested,
        "files": job.counts.documents_ingested if rules else args.graph_files,
        "chunks": job.counts.chunks_embedded,
        "nodes_written": job.counts.nodes_written,
        "wall_s": round(wall, 1),
        "extraction_chunks_per_s": round(job.counts.chunks_embedded / wall, 3),
    }


def run(argv: list[str]) -> dict[str, Any]:
    """Measures and returns the figures (``ragmesh bench ingest`` prints them and writes the JSON)."""
    return asyncio.run(_bench(_parse_args(argv)))
