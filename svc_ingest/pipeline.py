"""The Ray Data pipeline of a job: read and parse files, chunk, embed, extract.

    work items (files that changed)
      -> parse + chunk + sparse-encode   CPU tasks, ``parse_concurrency`` at once
         (+ rule-based graph facts)      mesh.entities, when ``graph_rules``
      -> embed                           actor pool calling InferenceService.Embed in batches
      -> extract graph facts (LLM)       actor pool calling StreamGenerate, ``graph_concurrency`` at once
      -> driver                          reassembles documents and writes them through IndexService

The CPU stage and the model stages are separate operators with their own
concurrency, so each scales on its own.

Worker groups: when the cluster has nodes offering the custom resources named
after its worker groups (``parse`` and ``embed``: the groups of the ingest
RayCluster, and of ``ragmesh up --ray-workers N``), each parse task asks for one
unit of ``parse`` and each embedding actor for one unit of ``embed`` instead of
CPUs, so the stages land on their own nodes (``place``). Every row carries the
id of the node that parsed it and of the one that embedded it; the job counts
them per stage and node (``JobCounts.placement``). Each row is one chunk, or one per-document row that
carries the document's metadata or its parse failure; rows of a document may
arrive in any order, and the driver (``svc_ingest.jobs.feed``) waits for all of them.

Workers read files from paths, one file per task, so memory follows the
largest file, never the corpus. Each stage call opens a span under the job's
trace (``PipelineSettings.trace_context``), in the workers' own tracer
(service name ``svc_ingest.worker``), and exports it before it returns: a
worker may be gone before the next scheduled export. Ray sets ``OMP_NUM_THREADS`` to a task's CPU
count; torch and Tesseract threads are set here on purpose instead.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from mesh import telemetry
from mesh.errors import MeshError
from svc_ingest.domain.chunk import ChunkingOptions, chunk_elements
from svc_ingest.domain.failures import FailureCode, FileFailure
from svc_ingest.domain.graph import GraphSchema
from svc_ingest.domain.parse import ParseOptions, parse_file

log = logging.getLogger(__name__)

#: The service name the workers' spans carry.
WORKER_SERVICE = "svc_ingest.worker"

KIND_DOC = "doc"
KIND_CHUNK = "chunk"
KIND_ERROR = "error"

STAGE_PARSE = "parse"
STAGE_EMBED = "embed"
STAGE_GRAPH = "graph"
#: Row columns holding the id of the node that ran each stage.
NODE_COLUMNS = {STAGE_PARSE: "parse_node", STAGE_EMBED: "embed_node", STAGE_GRAPH: "graph_node"}
#: The node label naming a node's worker group (``ray start --labels``, KubeRay's group labels).
NODE_GROUP_LABEL = "ragmesh.io/group"

PLACEMENT_MODES = ("auto", "always", "off")

# Environment of every worker of an ingest job: one Tesseract thread per OCR call (parallelism
# comes from running several parse tasks), no tokenizer thread pools, no sales notice.
WORKER_ENV = {
    "OMP_THREAD_LIMIT": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
}


@dataclass(frozen=True)
class WorkItem:
    """A file to parse: where it is, which document and version it becomes."""

    doc_id: str
    uri: str
    name: str
    local_path: str
    content_hash: str
    doc_version: int
    format_name: str


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the stages need; pickled into the Ray tasks and actors."""

    inference_addr: str
    tenant: str
    parse: ParseOptions
    chunking: ChunkingOptions
    graph: GraphSchema | None
    """The LLM extractor's schema; None runs no LLM extraction."""
    graph_rules: bool = False
    """Extract graph facts by rule (mesh.entities) in the parse stage."""
    parse_concurrency: int = 2
    parse_cpus: float = 1.0
    service_token: str = field(default="", repr=False)
    """svc_ingest's own token: the workers call InferenceService (internal) with it, for the job's tenant."""
    embed_batch_size: int = 64
    embed_concurrency: int = 1
    embed_cpus: float = 0.25
    embed_timeout_s: float = 120.0
    embed_model: str = ""
    graph_batch_size: int = 4
    graph_concurrency: int = 1
    graph_cpus: float = 0.25
    graph_timeout_s: float = 300.0
    graph_max_tokens: int = 384
    llm_model: str = ""
    torch_threads: int = 1
    trace_context: dict[str, str] = field(default_factory=dict)
    """The job's trace context (W3C headers): every stage call's span joins the job's trace."""
    parse_resource: str = ""
    """Custom resource each parse task asks one unit of instead of ``parse_cpus`` ("": none; see ``place``)."""
    embed_resource: str = ""
    """Custom resource each embedding actor asks one unit of instead of ``embed_cpus`` ("": none)."""


def place(
    settings: PipelineSettings,
    mode: str,
    parse_group: str,
    embed_group: str,
    cluster_resources: dict[str, float],
) -> PipelineSettings:
    """The settings with the stages sent to their worker groups, as ``mode`` says.

    "auto": when the cluster offers both groups' resources now, each stage asks for its own and
    runs at most as many at once as its group has units; else nothing changes. "always": ask for
    them whatever the cluster has now (an autoscaler starts the nodes). "off": never.
    """
    if mode == "off" or not parse_group or not embed_group:
        return settings
    if mode == "always":
        return replace(settings, parse_resource=parse_group, embed_resource=embed_group)
    parse_units = int(cluster_resources.get(parse_group, 0))
    embed_units = int(cluster_resources.get(embed_group, 0))
    if parse_units < 1 or embed_units < 1:
        return settings
    return replace(
        settings,
        parse_resource=parse_group,
        embed_resource=embed_group,
        parse_concurrency=min(settings.parse_concurrency, parse_units),
        embed_concurrency=min(settings.embed_concurrency, embed_units),
    )


def placed_groups(settings: PipelineSettings) -> tuple[str, ...]:
    """The worker groups the stages ask for (none when unplaced)."""
    return tuple(g for g in (settings.parse_resource, settings.embed_resource) if g)


def _stage_resources(resource: str, cpus: float) -> dict[str, Any]:
    # A unit of the group's resource is the stage's share of a group node (nodes offer one per
    # slot), so it asks for no CPUs: group nodes may offer none, to keep other work off them.
    if resource:
        return {"num_cpus": 0, "resources": {resource: 1}}
    return {"num_cpus": cpus}


def _node_id() -> str:
    """The id of the Ray node running this task or actor ("" outside Ray)."""
    import ray

    return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else ""


def node_directory() -> dict[str, tuple[str, str]]:
    """Every node the cluster knows, dead ones too: node id -> (name, worker group)."""
    import ray

    nodes: dict[str, tuple[str, str]] = {}
    for node in ray.nodes():  # type: ignore[no-untyped-call]
        labels = node.get("Labels") or {}
        nodes[str(node.get("NodeID", ""))] = (str(node.get("NodeName", "")), str(labels.get(NODE_GROUP_LABEL, "")))
    return nodes


def cluster_resources() -> dict[str, float]:
    """The resources the cluster's alive nodes offer in all (blocking: asks the GCS)."""
    import ray

    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {str(k): float(v) for k, v in resources.items()}


def missing_groups(groups: tuple[str, ...]) -> list[str]:
    """The groups of ``groups`` no alive node offers now (blocking: asks the GCS)."""
    resources = cluster_resources()
    return [g for g in groups if resources.get(g, 0) < 1]


def _row(kind: str, doc_id: str, **values: Any) -> dict[str, Any]:
    """A pipeline row; every row has every column so blocks share one schema."""
    row: dict[str, Any] = {
        "kind": kind,
        "doc_id": doc_id,
        "chunk_index": -1,
        "chunk_count": 0,
        "text": "",
        "title": "",
        "section": "",
        "page": -1,
        "token_count": 0,
        "sparse_indices": [],
        "sparse_values": [],
        "info": "",
        "graph": "",
        "parse_node": "",
    }
    row.update(values)
    return row


def _limit_torch_threads(threads: int) -> None:
    # Ray sets OMP_NUM_THREADS to the task's CPU share (often 1, or 0 -> 1 for fractional CPUs);
    # torch, when a parser pulls it in, would otherwise size its pools from that by accident.
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a project dependency
        return
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def parse_stage(row: dict[str, Any], settings: PipelineSettings) -> list[dict[str, Any]]:
    """Parses, chunks and sparse-encodes one file; failures become one error row."""
    telemetry.configure(WORKER_SERVICE)
    item = WorkItem(**{k: row[k] for k in WorkItem.__dataclass_fields__})
    attributes = {"ragmesh.doc_id": item.doc_id, "ragmesh.format": item.format_name}
    try:
        with telemetry.remote_span("ingest parse", settings.trace_context, attributes) as span:
            rows = _parse(item, settings)
            span.set_attribute("ragmesh.chunks", sum(1 for r in rows if r["kind"] == KIND_CHUNK))
            return rows
    finally:
        telemetry.flush()


def _parse(item: WorkItem, settings: PipelineSettings) -> list[dict[str, Any]]:
    from mesh.sparse import default_encoder

    _limit_torch_threads(settings.torch_threads)
    node = _node_id()
    started = time.perf_counter()
    try:
        doc = parse_file(Path(item.local_path), item.name, settings.parse)
        chunks = chunk_elements(doc.elements, settings.chunking)
        if not chunks:
            raise FileFailure(FailureCode.NO_TEXT, "no text could be extracted")
    except FileFailure as failure:
        info: dict[str, Any] = {
            "code": failure.code.value,
            "reason": failure.reason,
            "seconds": time.perf_counter() - started,
        }
        return [_row(KIND_ERROR, item.doc_id, info=json.dumps(info), parse_node=node)]
    except Exception as exc:
        log.exception("unexpected error parsing %s", item.uri)
        info = {"code": FailureCode.PARSER_ERROR.value, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
        return [_row(KIND_ERROR, item.doc_id, info=json.dumps(info), parse_node=node)]
    encoder = default_encoder()
    info = {
        "title": doc.title[:1024],
        "document_type": doc.document_type.value,
        "links": doc.links[:5000],
        "ocr_pages": doc.ocr_pages,
        "metadata": doc.metadata,
        "seconds": time.perf_counter() - started,
    }
    rows = [_row(KIND_DOC, item.doc_id, chunk_count=len(chunks), info=json.dumps(info), parse_node=node)]
    for chunk in chunks:
        sparse = encoder.encode_document(chunk.text, title=doc.title, section=chunk.section)
        facts = _rule_facts(chunk.text, doc.title, chunk.section) if settings.graph_rules else ""
        rows.append(
            _row(
                KIND_CHUNK,
                item.doc_id,
                chunk_index=chunk.index,
                chunk_count=len(chunks),
                text=chunk.text,
                title=doc.title[:1024],
                section=chunk.section,
                page=chunk.page or -1,
                token_count=chunk.token_count,
                sparse_indices=list(sparse.indices),
                sparse_values=list(sparse.values),
                graph=facts,
                parse_node=node,
            )
        )
    return rows


def _rule_facts(text: str, title: str, section: str) -> str:
    """The chunk's graph facts by rule, as the JSON the driver reads (the LLM stage writes the same)."""
    from mesh.entities import extract

    found = extract(text, title=title, section=section)
    return json.dumps(
        {
            "entities": [{"name": e.name, "label": e.label} for e in found.entities],
            "relations": [{"source": r.source, "target": r.target, "type": r.type} for r in found.relations],
        }
    )


class EmbedStage:
    """Ray Data actor: embeds the chunk rows of a batch through InferenceService.Embed."""

    def __init__(self, settings: PipelineSettings) -> None:
        from svc_ingest.clients.inference import EmbedClient

        telemetry.configure(WORKER_SERVICE)
        self._trace_context = settings.trace_context
        _limit_torch_threads(settings.torch_threads)
        self._client = EmbedClient(
            settings.inference_addr,
            settings.tenant,
            timeout_s=settings.embed_timeout_s,
            model=settings.embed_model,
            token=settings.service_token,
        )
        self._node = _node_id()

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        dense: list[list[float]] = [[] for _ in range(len(batch))]
        positions = [i for i, kind in enumerate(batch["kind"]) if kind == KIND_CHUNK]
        try:
            with telemetry.remote_span("ingest embed", self._trace_context, {"ragmesh.chunks": len(positions)}):
                if positions:
                    vectors = self._client.embed([batch["text"].iat[i] for i in positions])
                    for i, vector in zip(positions, vectors, strict=True):
                        dense[i] = vector
        finally:
            telemetry.flush()
        batch = batch.copy()
        batch["dense"] = dense
        batch[NODE_COLUMNS[STAGE_EMBED]] = self._node
        return batch


class GraphStage:
    """Ray Data actor: extracts entities and relations of the chunk rows of a batch."""

    def __init__(self, settings: PipelineSettings) -> None:
        from svc_ingest.clients.inference import GenerateClient

        assert settings.graph is not None
        telemetry.configure(WORKER_SERVICE)
        self._trace_context = settings.trace_context
        self._schema = settings.graph
        self._json_schema = settings.graph.json_schema()
        self._client = GenerateClient(
            settings.inference_addr,
            settings.tenant,
            timeout_s=settings.graph_timeout_s,
            model=settings.llm_model,
            max_tokens=settings.graph_max_tokens,
            token=settings.service_token,
        )
        self._node = _node_id()

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        try:
            with telemetry.remote_span("ingest extract graph", self._trace_context):
                return self._extract(batch)
        finally:
            telemetry.flush()

    def _extract(self, batch: pd.DataFrame) -> pd.DataFrame:
        facts: list[str] = ["" for _ in range(len(batch))]
        for i, kind in enumerate(batch["kind"]):
            if kind != KIND_CHUNK:
                continue
            prompt = self._schema.prompt(batch["text"].iat[i], batch["title"].iat[i], batch["section"].iat[i])
            try:
                answer = self._client.generate_json(prompt, self._json_schema)
            except MeshError:
                # A chunk without graph facts is still searchable; the job reports the count.
                log.warning("graph extraction failed for a chunk of %s", batch["doc_id"].iat[i], exc_info=True)
                facts[i] = json.dumps({"failed": True})
                continue
            extraction = self._schema.parse(answer)
            facts[i] = json.dumps(
                {
                    "entities": [asdict(e) for e in extraction.entities],
                    "relations": [asdict(r) for r in extraction.relations],
                }
            )
        batch = batch.copy()
        batch["graph"] = facts
        batch[NODE_COLUMNS[STAGE_GRAPH]] = self._node
        return batch


_ray_lock = threading.Lock()
_ray_error: list[BaseException] = []


def ensure_ray(
    address: str, *, num_cpus: int | None = None, object_store_mb: int = 0, token_path: Path | None = None
) -> None:
    """Connects this process to Ray once (blocking; safe to call from any thread).

    ``address`` "local" starts a Ray instance in this process (with ``num_cpus``); "" lets Ray
    decide (it joins the cluster in RAY_ADDRESS, as the local stack and KubeRay set it, else
    starts one); anything else is the GCS address of the cluster to join.

    Token authentication stays on. Joining a cluster uses the RAY_AUTH_MODE and
    RAY_AUTH_TOKEN_PATH the process was given (the stack and KubeRay set both). An instance
    started here gets a random token in ``token_path`` (owner-only), created on first use.

    ``ray.init`` runs on a thread that lives as long as the process: Ray starts its GCS and
    raylet with a parent-death signal, which Linux delivers when the *thread* that started
    them exits, so initialising from a short-lived worker thread kills the cluster with it.
    """
    with _ray_lock:
        # Checked without importing Ray: Ray reads its auth settings when first imported, and
        # _init_ray sets them first.
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            return
        ready = threading.Event()
        _ray_error.clear()

        def own() -> None:
            try:
                _init_ray(address, num_cpus=num_cpus, object_store_mb=object_store_mb, token_path=token_path)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                _ray_error.append(exc)
                ready.set()
                return
            ready.set()
            threading.Event().wait()  # keep the thread (and so Ray's processes) alive

        threading.Thread(target=own, name="ray-owner", daemon=True).start()
        ready.wait()
        if _ray_error:
            raise _ray_error[0]


def _init_ray(address: str, *, num_cpus: int | None, object_store_mb: int, token_path: Path | None) -> None:
    # Ray turns a driver started by `uv run` into a runtime env that uploads the working
    # directory (the whole repo) to the cluster; workers already run this venv, where the
    # project is installed, so nothing needs shipping.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if address == "local":
        # Before Ray reads its auth settings (it caches them on first use).
        path = token_path or Path(tempfile.gettempdir()) / f"ragmesh-ray-token-{os.getuid()}"
        _ensure_token(path)
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
    import ray

    # The workers export their spans where this process does (mesh.telemetry.TracingSettings).
    env_vars = {**WORKER_ENV, **telemetry.TracingSettings.from_env().env_vars()}
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env_vars}, "log_to_driver": False}
    if address == "local":
        kwargs.update(address="local", num_cpus=num_cpus, include_dashboard=False)
        if object_store_mb > 0:
            kwargs["object_store_memory"] = object_store_mb * 1024 * 1024
    elif address:
        kwargs["address"] = address
    ray.init(**kwargs)
    _configure_data_context()


def _ensure_token(path: Path) -> None:
    """Creates an owner-only file holding a random Ray auth token, unless one is there."""
    if path.is_file() and path.stat().st_size > 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))


def _configure_data_context() -> None:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    # Progress is reported through StreamIngestJob; Ray's bars only draw on a terminal anyway.
    ctx.enable_progress_bars = False
    ctx.execution_options.preserve_order = False
    ctx.execution_options.verbose_progress = False


def build_dataset(items: list[WorkItem], settings: PipelineSettings) -> Any:
    """The lazy Ray dataset of a job's work items through every stage."""
    import ray

    ds: Any = ray.data.from_items([asdict(item) for item in items], override_num_blocks=max(1, len(items)))
    ds = ds.flat_map(
        parse_stage,
        fn_kwargs={"settings": settings},
        concurrency=settings.parse_concurrency,
        max_retries=1,
        **_stage_resources(settings.parse_resource, settings.parse_cpus),
    )
    ds = ds.map_batches(
        EmbedStage,
        fn_constructor_kwargs={"settings": settings},
        batch_size=settings.embed_batch_size,
        batch_format="pandas",
        concurrency=settings.embed_concurrency,
        **_stage_resources(settings.embed_resource, settings.embed_cpus),
    )
    if settings.graph is not None:
        ds = ds.map_batches(
            GraphStage,
            fn_constructor_kwargs={"settings": settings},
            batch_size=settings.graph_batch_size,
            batch_format="pandas",
            num_cpus=settings.graph_cpus,
            concurrency=settings.graph_concurrency,
        )
    return ds


def iterate(items: list[WorkItem], settings: PipelineSettings, cancelled: Callable[[], bool]) -> Iterator[pd.DataFrame]:
    """Runs the pipeline and yields result batches as they come; stops early when ``cancelled()``."""
    if not items:
        return
    ds = build_dataset(items, settings)
    iterator = ds.iter_batches(batch_size=None, batch_format="pandas", prefetch_batches=1)
    for batch in iterator:
        yield batch
        if cancelled():
            break
