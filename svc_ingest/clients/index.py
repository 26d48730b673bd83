"""IndexService client: svc_ingest writes and deletes only through svc_retrieval.

Calls run inside a job (or an RPC) whose request context carries the tenant;
the mesh channel passes it on and caps every timeout at the caller's deadline.
Failed calls raise the mesh's domain errors (``mesh.downstream``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import grpc

from mesh.channels import open_channel
from mesh.downstream import downstream_error
from mesh.errors import DeadlineExceeded, Unavailable
from mesh.validation import max_items
from ragmesh.retrieval.v1 import index_service_pb2, index_service_pb2_grpc

SERVICE = "ragmesh.retrieval.v1.IndexService"
DELETE_BATCH = max_items(index_service_pb2.DeleteDocumentsRequest, "doc_ids")
"""Most doc ids one DeleteDocuments request may carry (the contract's rule)."""


class IndexClient:
    """Upserts and deletes documents in the index."""

    def __init__(self, target: str, *, upsert_timeout_s: float = 600.0, delete_timeout_s: float = 60.0) -> None:
        self._channel = open_channel(target, [SERVICE])
        self._stub = index_service_pb2_grpc.IndexServiceStub(self._channel)
        self._upsert_timeout_s = upsert_timeout_s
        self._delete_timeout_s = delete_timeout_s

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close(None)

    async def upsert(
        self, requests: Iterable[index_service_pb2.UpsertChunksRequest]
    ) -> index_service_pb2.UpsertChunksResponse:
        """Streams the requests in one UpsertChunks call and returns its totals."""
        try:
            response: index_service_pb2.UpsertChunksResponse = await self._stub.UpsertChunks(
                iter(list(requests)), timeout=self._upsert_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "writing to the index") from exc
        return response

    async def delete(self, doc_ids: Sequence[str]) -> index_service_pb2.DeleteDocumentsResponse:
        """Deletes documents (any number, in batches); returns the summed totals."""
        total = index_service_pb2.DeleteDocumentsResponse()
        for start in range(0, len(doc_ids), DELETE_BATCH):
            request = index_service_pb2.DeleteDocumentsRequest(doc_ids=list(doc_ids[start : start + DELETE_BATCH]))
            try:
                response: index_service_pb2.DeleteDocumentsResponse = await self._stub.DeleteDocuments(
                    request, timeout=self._delete_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                raise downstream_error(exc, "deleting from the index") from exc
            total.points_deleted += response.points_deleted
            total.nodes_deleted += response.nodes_deleted
            total.corpus_version = response.corpus_version
        return total

    async def stats(self) -> index_service_pb2.GetIndexStatsResponse:
        """The caller tenant's index counts."""
        try:
            response: index_service_pb2.GetIndexStatsResponse = await self._stub.GetIndexStats(
                index_service_pb2.GetIndexStatsRequest(), timeout=10.0
            )
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "reading the index's counts") from exc
        return response


def is_transient(exc: BaseException) -> bool:
    """True for index failures worth retrying later (the index restarting, a deadline)."""
    return isinstance(exc, (Unavailable, DeadlineExceeded))
