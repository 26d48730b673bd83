"""A job's pipeline settings, taken from the service config and the job's options, and their signature."""

from __future__ import annotations

from mesh import auth
from mesh.entities import EXTRACTOR_VERSION
from mesh.sparse import ENCODER_VERSION
from svc_ingest.config import Config
from svc_ingest.domain.chunk import ChunkingOptions
from svc_ingest.domain.graph import GraphSchema
from svc_ingest.domain.guards import ExpansionLimits
from svc_ingest.domain.model import JobOptions
from svc_ingest.domain.parse import ParseOptions
from svc_ingest.pipeline import PipelineSettings

# Version of the parsers' behaviour: part of every document's settings signature, so a parser
# improvement re-ingests documents on the next run.
PARSER_VERSION = "parse-v1"


def pipeline_settings(cfg: Config, inference_addr: str, tenant: str, options: JobOptions) -> PipelineSettings:
    """The pipeline's settings for one job."""
    graph = None
    rules = False
    if cfg.graph_enabled and not options.skip_graph:
        if cfg.graph_extractor == "llm":
            graph = GraphSchema(labels=cfg.graph_labels, relations=cfg.graph_relations)
        else:
            rules = True
    return PipelineSettings(
        inference_addr=inference_addr,
        tenant=tenant,
        service_token=auth.service_token() or "",
        parse=ParseOptions(
            pdf_strategy=cfg.pdf_strategy,
            ocr=cfg.ocr_enabled,
            ocr_languages=cfg.ocr_languages,
            ocr_dpi=cfg.ocr_dpi,
            max_ocr_pages=cfg.max_ocr_pages,
            max_file_bytes=cfg.max_file_bytes,
            timeout_s=cfg.parse_timeout_s,
            limits=ExpansionLimits(
                max_decompressed_bytes=cfg.max_decompressed_bytes,
                max_total_decompressed_bytes=cfg.max_total_decompressed_bytes,
                max_xml_part_bytes=cfg.max_xml_part_bytes,
                max_archive_members=cfg.max_archive_members,
                max_html_depth=cfg.max_html_depth,
                max_html_elements=cfg.max_html_elements,
            ),
        ),
        chunking=ChunkingOptions(
            max_tokens=options.chunk_size_tokens,
            overlap_tokens=options.chunk_overlap_tokens,
            combine_under_tokens=options.chunk_size_tokens // 2,
        ),
        graph=graph,
        graph_rules=rules,
        parse_concurrency=cfg.parse_concurrency,
        embed_batch_size=cfg.embed_batch_size,
        embed_concurrency=cfg.embed_concurrency,
        embed_timeout_s=cfg.embed_timeout_s,
        graph_batch_size=cfg.graph_batch_size,
        graph_concurrency=cfg.graph_concurrency,
        graph_timeout_s=cfg.generate_timeout_s,
        graph_max_tokens=cfg.graph_max_tokens,
        torch_threads=cfg.torch_threads,
    )


def settings_signature(settings: PipelineSettings) -> str:
    """What makes an indexed document current besides its content: chunking, sparse and graph settings."""
    graph = "graph-off"
    if settings.graph is not None:
        graph = "graph:" + ",".join(settings.graph.labels)
    elif settings.graph_rules:
        graph = "graph-rules:" + EXTRACTOR_VERSION
    return "|".join((PARSER_VERSION, settings.chunking.signature, ENCODER_VERSION, graph))
