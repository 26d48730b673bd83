"""Configuration of svc_ingest: the only module that reads its environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mesh.config import ConfigError
from mesh.server import ServerConfig
from svc_ingest.domain.graph import DEFAULT_LABELS, DEFAULT_RELATIONS

#: The knowledge-graph extractors a profile may choose.
GRAPH_EXTRACTORS = ("rules", "llm")


@dataclasses.dataclass(frozen=True)
class Config(ServerConfig):
    """Settings of svc_ingest; env prefix ``RAGMESH_INGEST``."""

    env_prefix = "RAGMESH_INGEST"

    port: int = 50053
    """Port of the gRPC server."""

    # --- chunking
    chunk_size_tokens: int = 240
    """Default chunk size in embedding-tokenizer tokens (used when a job leaves it 0)."""
    chunk_overlap_tokens: int = 32
    """Default overlap between split chunks, in tokens."""
    max_chunk_tokens: int = 254
    """Largest chunk size a job may ask for: the embedder's input limit minus its two special tokens."""
    min_chunk_tokens: int = 64
    """Smallest chunk size a job may ask for."""

    # --- parsing
    pdf_strategy: str = "fast"
    """unstructured strategy for PDFs: "fast" (text layer, OCR for pages without one) or "hi_res"."""
    ocr_enabled: bool = True
    """OCR PDF pages that have no text layer (Tesseract)."""
    ocr_languages: tuple[str, ...] = ("eng",)
    """Tesseract language packs to OCR with (installed ones only)."""
    ocr_dpi: int = 300
    """Resolution pages are rendered at for OCR."""
    max_ocr_pages: int = 100
    """Most pages of one document to OCR."""
    max_file_bytes: int = 32 * 1024 * 1024
    """Largest file a job ingests, in bytes; larger ones are reported as FILE_TOO_LARGE."""
    parse_timeout_s: float = 600.0
    """Longest time one file may take to parse."""
    max_decompressed_bytes: int = 256 * 1024 * 1024
    """Most bytes one compressed part of a file (a DOCX zip member, one PDF stream) may decompress to;
    past it the file is reported as FILE_TOO_LARGE_DECOMPRESSED."""
    max_total_decompressed_bytes: int = 1024 * 1024 * 1024
    """Most bytes all compressed parts of one file may decompress to together (PDF images aside)."""
    max_xml_part_bytes: int = 64 * 1024 * 1024
    """Largest XML part of a DOCX once decompressed (its parsed tree takes several times this)."""
    max_archive_members: int = 10_000
    """Most members a DOCX zip may have."""
    max_html_depth: int = 192
    """Deepest element nesting an HTML page may have; deeper pages are reported as DOCUMENT_TOO_DEEP
    (libxml2 stops reading at 256 levels and would drop the rest of the page silently)."""
    max_html_elements: int = 500_000
    """Most elements an HTML page may have; more are reported as TOO_MANY_ELEMENTS."""

    # --- pipeline
    ray_address: str = ""
    """Ray cluster: "" lets Ray decide (joins RAY_ADDRESS, else starts one here), "local" always starts one
    in this process, anything else is the GCS address to join."""
    ray_num_cpus: int = 0
    """CPUs of a Ray instance started in this process ("local"); 0 means all of the machine's."""
    ray_group_placement: str = "auto"
    """Send parse tasks to the ``ray_parse_group`` nodes and embedding actors to the ``ray_embed_group`` nodes
    (each asks one unit of the group's custom resource): "auto" when the cluster offers both when a job
    starts, "always" even when it does not yet (an autoscaler brings the nodes), "off" never."""
    ray_parse_group: str = "parse"
    """Worker group (custom resource) of the nodes that parse."""
    ray_embed_group: str = "embed"
    """Worker group (custom resource) of the nodes that embed."""
    ray_group_lost_timeout_s: float = 120.0
    """A job whose worker group had nodes and has none for this long (they died and nothing replaced them)
    fails, to be run again, instead of waiting for ever."""
    parse_concurrency: int = 2
    """Parse tasks running at once (CPU stage)."""
    embed_batch_size: int = 64
    """Chunks per Embed call."""
    embed_concurrency: int = 2
    """Embedding actors (each has one Embed call in flight)."""
    graph_enabled: bool = True
    """Run knowledge-graph extraction for jobs that do not skip it; false skips it for every job."""
    graph_extractor: str = "rules"
    """How entities and relations are found: "rules" (mesh.entities: code identifiers, API kinds, fields,
    commands and noun phrases by rule, in the parse stage at ingest speed on CPU) or "llm" (the configured
    model with schema-constrained output, one StreamGenerate per chunk: for profiles with a GPU)."""
    graph_concurrency: int = 1
    """LLM graph-extraction actors (each has one StreamGenerate call in flight)."""
    graph_batch_size: int = 4
    """Chunks per graph-extraction batch."""
    graph_labels: tuple[str, ...] = DEFAULT_LABELS
    """Entity labels extraction may use."""
    graph_relations: tuple[str, ...] = DEFAULT_RELATIONS
    """Relation types extraction may use (UPPER_SNAKE)."""
    graph_max_tokens: int = 384
    """Most tokens the model may generate per chunk."""
    torch_threads: int = 1
    """Threads torch may use inside a pipeline worker (Ray sets OMP_NUM_THREADS per task)."""
    embed_timeout_s: float = 120.0
    """Timeout of one Embed call."""
    generate_timeout_s: float = 300.0
    """Timeout of one graph-extraction call."""

    # --- writing and state
    write_batch_documents: int = 16
    """Documents per UpsertChunks stream (state is committed after each stream)."""
    write_batch_chunks: int = 512
    """Chunks per UpsertChunks stream (a stream closes at whichever limit comes first)."""
    upsert_timeout_s: float = 600.0
    """Timeout of one UpsertChunks stream."""
    store_timeout_s: float = 10.0
    """Timeout of one Postgres statement."""
    max_concurrent_jobs: int = 1
    """Jobs this instance runs at once; more wait QUEUED."""
    heartbeat_s: float = 5.0
    """How often a running job saves its progress; a job silent for 6x this is taken as dead."""
    progress_interval_s: float = 1.0
    """Longest gap between StreamIngestJob progress events."""
    migrate_on_start: bool = True
    """Apply missing Postgres migrations when the service starts."""
    instance_id: str = ""
    """Name of this instance in the jobs table; "" uses host name and port."""

    # --- sources
    local_roots: tuple[str, ...] = ()
    """Directories local sources must lie under; empty allows any path the service can read."""
    staging_dir: Path = Path(".ragmesh/ingest/staging")
    """Where S3 objects are downloaded for parsing."""
    upload_dir: Path = Path(".ragmesh/ingest/uploads")
    """Where uploaded files wait for their job."""
    max_upload_file_bytes: int = 8 * 1024 * 1024
    """Largest file UploadDocuments accepts."""
    max_upload_bytes: int = 64 * 1024 * 1024
    """Most bytes one UploadDocuments call may carry."""
    max_upload_files: int = 100
    """Most files one UploadDocuments call may carry."""
    s3_endpoint_url: str = ""
    """S3 endpoint; "" uses the AWS default for the region."""
    s3_region: str = ""
    """S3 region; "" uses the AWS default chain."""

    def __post_init__(self) -> None:
        if self.graph_extractor not in GRAPH_EXTRACTORS:
            raise ConfigError(f"RAGMESH_INGEST_GRAPH_EXTRACTOR: expected rules or llm, got {self.graph_extractor!r}")
        if self.ray_group_placement not in ("auto", "always", "off"):
            raise ConfigError(
                f"RAGMESH_INGEST_RAY_GROUP_PLACEMENT: expected auto, always or off, got {self.ray_group_placement!r}"
            )
        if self.ray_group_lost_timeout_s <= 0:
            raise ConfigError("RAGMESH_INGEST_RAY_GROUP_LOST_TIMEOUT_S: must be positive")
