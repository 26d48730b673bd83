"""gRPC servicers of svc_ingest: document ingestion through a Ray Data pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from mesh import context
from ragmesh.ingest.v1 import ingest_service_pb2 as pb
from ragmesh.ingest.v1 import ingest_service_pb2_grpc
from svc_ingest import convert
from svc_ingest.jobs import JobManager


class IngestServiceServicer(ingest_service_pb2_grpc.IngestServiceServicer):
    """``ragmesh.ingest.v1.IngestService``: one thin method per RPC (proto -> domain -> proto)."""

    def __init__(self, manager: JobManager) -> None:
        self._manager = manager

    async def CreateIngestJob(self, request: pb.CreateIngestJobRequest, ctx: Any) -> pb.CreateIngestJobResponse:
        """Starts a job over local paths, file:// or s3:// sources."""
        options = convert.options_from_proto(request.options)
        job = await self._manager.create(context.tenant(), list(request.sources), options)
        return pb.CreateIngestJobResponse(job=convert.job_to_proto(job))

    async def StreamIngestJob(
        self, request: pb.StreamIngestJobRequest, ctx: Any
    ) -> AsyncIterator[pb.StreamIngestJobResponse]:
        """Streams progress events until the job ends."""
        async for event in self._manager.watch(context.tenant(), request.job_id):
            yield convert.event_to_proto(event)

    async def GetIngestJob(self, request: pb.GetIngestJobRequest, ctx: Any) -> pb.GetIngestJobResponse:
        """Returns a job's current state."""
        job = await self._manager.get(context.tenant(), request.job_id)
        return pb.GetIngestJobResponse(job=convert.job_to_proto(job))

    async def CancelIngestJob(self, request: pb.CancelIngestJobRequest, ctx: Any) -> pb.CancelIngestJobResponse:
        """Asks a running job to stop."""
        job = await self._manager.cancel(context.tenant(), request.job_id)
        return pb.CancelIngestJobResponse(job=convert.job_to_proto(job))

    async def ListDocuments(self, request: pb.ListDocumentsRequest, ctx: Any) -> pb.ListDocumentsResponse:
        """Lists the caller's documents, ordered by source URI."""
        records, token = await self._manager.list_documents(
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
        points, nodes = await self._manager.delete_document(context.tenant(), request.doc_id)
        return pb.DeleteDocumentResponse(points_deleted=points, nodes_deleted=nodes)

    async def UploadDocuments(
        self, requests: AsyncIterator[pb.UploadDocumentsRequest], ctx: Any
    ) -> pb.UploadDocumentsResponse:
        """Receives small files and starts a job over them."""
        job = await self._manager.upload(context.tenant(), convert.upload_pieces(requests))
        return pb.UploadDocumentsResponse(job=convert.job_to_proto(job))
