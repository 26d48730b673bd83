"""svc_ingest's domain: parsing, chunking, document state and job values (no gRPC here)."""

from svc_ingest.domain.chunk import Chunk, ChunkingOptions, chunk_elements
from svc_ingest.domain.failures import FailureCode, FileFailure
from svc_ingest.domain.formats import DocumentFormat
from svc_ingest.domain.model import DocStatus, DocumentRecord, FileError, Job, JobCounts, JobOptions, JobState
from svc_ingest.domain.parse import ParsedDocument, ParseOptions, parse_file

__all__ = [
    "Chunk",
    "ChunkingOptions",
    "DocStatus",
    "DocumentFormat",
    "DocumentRecord",
    "FailureCode",
    "FileError",
    "FileFailure",
    "Job",
    "JobCounts",
    "JobOptions",
    "JobState",
    "ParseOptions",
    "ParsedDocument",
    "chunk_elements",
    "parse_file",
]
