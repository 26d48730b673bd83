"""gRPC servicers of svc_ingest: document ingestion through a Ray Data pipeline."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mesh import context
from mesh.errors import FieldViolation, InvalidArgument, ResourceExhausted
from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc
from svc_ingest import convert
from svc_ingest.domain.guards import unsafe_name_problem
from svc_ingest.domain.sources import SourceFile
from svc_ingest.jobs import UPLOAD_SCHEME, JobManager, ProgressEvent

_EVENT_TYPES = {
    "progress": pb.INGEST_EVENT_TYPE_PROGRESS,
    "file_failed": pb.INGEST_EVENT_TYPE_FILE_FAILED,
    "finished": pb.INGEST_EVENT_TYPE_FINISHED,
}


class IngestServiceServicer(ingest_service_pb2_grpc.IngestServiceServicer):
    """``ragmesh.ingest.v1.IngestService``: one thin method per RPC (proto -> domain -> proto)."""

    def __init__(self, manager: JobManager) -> None:
        self._jobs = manager

    async def CreateIngestJob(self, request: pb.CreateIngestJobRequest, ctx: Any) -> pb.CreateIngestJobResponse:
        """Starts a job over local paths, file:// or s3:// sources."""
        options = self._options(request.options)
        job = await self._jobs.create(context.tenant(), list(request.sources), options)
        return pb.CreateIngestJobResponse(job=convert.job_to_proto(job))

    async def StreamIngestJob(
        self, request: pb.StreamIngestJobRequest, ctx: Any
    ) -> AsyncIterator[pb.StreamIngestJobResponse]:
        """Streams progress events until the job ends."""
        async for event in self._jobs.watch(context.tenant(), request.job_id):
            yield _event_to_proto(event)

    async def GetIngestJob(self, request: pb.GetIngestJobRequest, ctx: Any) -> pb.GetIngestJobResponse:
        """Returns a job's current state."""
        job = await self._jobs.get(context.tenant(), request.job_id)
        return pb.GetIngestJobResponse(job=convert.job_to_proto(job))

    async def CancelIngestJob(self, request: pb.CancelIngestJobRequest, ctx: Any) -> pb.CancelIngestJobResponse:
        """Asks a running job to stop."""
        job = await self._jobs.cancel(context.tenant(), request.job_id)
        return pb.CancelIngestJobResponse(job=convert.job_to_proto(job))

    async def ListDocuments(self, request: pb.ListDocumentsRequest, ctx: Any) -> pb.ListDocumentsResponse:
        """Lists the caller's documents, ordered by source URI."""
        records, token = await self._jobs.list_documents(
            context.tenant(),
            page_size=request.page_size,
            page_token=request.page_token,
            source_prefix=request.source_prefix,
        )
        return pb.ListDocumentsResponse(
            documents=[convert.document_to_proto(r) for r in records], next_page_token=token
        )

    async def DeleteDocument(self, request: pb.DeleteDocumentRequest, ctx: Any) -> pb.DeleteDocumentResponse:
        """Removes one document from the index, the graph and the caches."""
        points, nodes = await self._jobs.delete_document(context.tenant(), request.doc_id)
        return pb.DeleteDocumentResponse(points_deleted=points, nodes_deleted=nodes)

    async def UploadDocuments(
        self, requests: AsyncIterator[pb.UploadDocumentsRequest], ctx: Any
    ) -> pb.UploadDocumentsResponse:
        """Receives small files and starts a job over them."""
        tenant = context.tenant()
        cfg = self._jobs.config
        staged = cfg.upload_dir.resolve() / tenant / uuid.uuid4().hex
        staged.mkdir(parents=True, exist_ok=True)
        try:
            files, options = await self._receive(requests, staged)
            job = await self._jobs.create_from_uploads(tenant, files, staged, options)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return pb.UploadDocumentsResponse(job=convert.job_to_proto(job))

    async def _receive(
        self, requests: AsyncIterator[pb.UploadDocumentsRequest], staged: Path
    ) -> tuple[list[SourceFile], Any]:
        cfg = self._jobs.config
        files: list[SourceFile] = []
        options_proto: pb.IngestOptions | None = None
        current: str | None = None
        handle = None
        size = 0
        total = 0
        try:
            async for message in requests:
                if options_proto is None:
                    options_proto = message.options
                if message.filename != current:
                    if handle is not None:
                        handle.close()
                        files.append(_uploaded(staged, current, size))
                    if any(f.name == message.filename for f in files):
                        raise InvalidArgument(
                            f"file {message.filename!r} appears twice in the upload",
                            reason="DUPLICATE_UPLOAD",
                            violations=[FieldViolation("filename", "each file's pieces must be consecutive")],
                        )
                    if len(files) + 1 > cfg.max_upload_files:
                        raise ResourceExhausted(
                            f"an upload may carry at most {cfg.max_upload_files} files", reason="UPLOAD_TOO_MANY_FILES"
                        )
                    current = message.filename
                    # A name that is not one plain file name ("..", control characters) is never
                    # used as a path: its bytes are counted and dropped, and the job reports the
                    # file as UNSAFE_FILENAME. Path separators are refused by the contract itself.
                    target = Path(os.devnull) if unsafe_name_problem(current) else staged / current
                    handle = target.open("wb")
                    size = 0
                size += len(message.data)
                total += len(message.data)
                if size > cfg.max_upload_file_bytes:
                    raise ResourceExhausted(
                        f"{current!r} is larger than {cfg.max_upload_file_bytes:,} bytes; use CreateIngestJob "
                        "with a path or an s3:// source for large files",
                        reason="UPLOAD_FILE_TOO_LARGE",
                    )
                if total > cfg.max_upload_bytes:
                    raise ResourceExhausted(
                        f"an upload may carry at most {cfg.max_upload_bytes:,} bytes", reason="UPLOAD_TOO_LARGE"
                    )
                assert handle is not None
                handle.write(message.data)
        finally:
            if handle is not None and not handle.closed:
                handle.close()
        if current is not None:
            files.append(_uploaded(staged, current, size))
        if not files:
            raise InvalidArgument(
                "the upload carried no file",
                reason="EMPTY_UPLOAD",
                violations=[FieldViolation("filename", "send at least one message")],
            )
        return files, self._options(options_proto or pb.IngestOptions())

    def _options(self, options: pb.IngestOptions) -> Any:
        return self._jobs.resolve_options(
            options.chunk_size_tokens, options.chunk_overlap_tokens, options.skip_graph, options.sync
        )


def _uploaded(staged: Path, name: str | None, size: int) -> SourceFile:
    assert name is not None
    local = None if unsafe_name_problem(name) else staged / name
    return SourceFile(uri=UPLOAD_SCHEME + name, name=name, size=size, local_path=local)


def _event_to_proto(event: ProgressEvent) -> pb.StreamIngestJobResponse:
    message = pb.StreamIngestJobResponse(
        type=_EVENT_TYPES[event.kind],
        job=convert.job_to_proto(event.job),
        files_per_second=event.files_per_second,
        chunks_per_second=event.chunks_per_second,
        eta_seconds=event.eta_seconds,
    )
    if event.error is not None:
        message.error.CopyFrom(convert.error_to_proto(event.error))
    return message
