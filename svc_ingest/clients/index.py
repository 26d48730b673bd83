"""IndexService client: svc_ingest writes and deletes only through svc_retrieval.

The only module of svc_ingest that knows IndexService's messages: it implements
the ``IndexWriter`` port and answers in domain values. Calls run inside a job (or
an RPC) whose request context carries the tenant; the mesh channel passes it on
and caps every timeout at the caller's deadline. Failed calls raise the mesh's
domain errors (``mesh.downstream``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc

from mesh.channels import open_channel
from mesh.downstream import downstream_error
from mesh.errors import DeadlineExceeded, Unavailable
from mesh.validation import max_items
from ragmesh.common.v1 import common_pb2
from ragmesh.retrieval.v1 import index_service_pb2, index_service_pb2_grpc
from svc_ingest.domain.assembly import ChunkResult, DocumentResult
from svc_ingest.domain.ports import DocumentWrite, IndexRemoval, IndexWrite, PreparedWrite

SERVICE = "ragmesh.retrieval.v1.IndexService"
DELETE_BATCH = max_items(index_service_pb2.DeleteDocumentsRequest, "doc_ids")
"""Most doc ids one DeleteDocuments request may carry (the contract's rule)."""
CHUNKS_PER_MESSAGE = 128
#: Most entities, and most relations, one UpsertChunks message may carry (the proto's limit).
MAX_GRAPH_FACTS = max_items(index_service_pb2.UpsertChunksRequest, "entities")
#: Most mentions one indexed chunk may carry.
MAX_MENTIONS = max_items(index_service_pb2.IndexedChunk, "mentions")
"""Chunks per UpsertChunks message (the contract allows 512)."""


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

    def prepare(self, write: DocumentWrite) -> PreparedWrite:
        """The document's UpsertChunks messages; raises when they cannot be built."""
        messages = upsert_requests(
            write.document,
            source_uri=write.source_uri,
            content_hash=write.content_hash,
            doc_version=write.doc_version,
            links_to=write.links_to,
        )
        return PreparedWrite(write.document.doc_id, tuple(messages))

    async def upsert(self, prepared: Sequence[PreparedWrite]) -> IndexWrite:
        """Streams the prepared documents in one UpsertChunks call and returns its totals."""
        requests: list[index_service_pb2.UpsertChunksRequest] = []
        for document in prepared:
            for message in document.messages:
                if not isinstance(message, index_service_pb2.UpsertChunksRequest):
                    raise TypeError(f"document {document.doc_id} was not prepared by IndexClient.prepare")
                requests.append(message)
        try:
            response: index_service_pb2.UpsertChunksResponse = await self._stub.UpsertChunks(
                iter(requests), timeout=self._upsert_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise downstream_error(exc, "writing to the index") from exc
        return IndexWrite(points_written=int(response.points_written), nodes_created=int(response.nodes_created))

    async def delete(self, doc_ids: Sequence[str]) -> IndexRemoval:
        """Deletes documents (any number, in batches); returns the summed totals."""
        points = nodes = 0
        for start in range(0, len(doc_ids), DELETE_BATCH):
            request = index_service_pb2.DeleteDocumentsRequest(doc_ids=list(doc_ids[start : start + DELETE_BATCH]))
            try:
                response: index_service_pb2.DeleteDocumentsResponse = await self._stub.DeleteDocuments(
                    request, timeout=self._delete_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                raise downstream_error(exc, "deleting from the index") from exc
            points += int(response.points_deleted)
            nodes += int(response.nodes_deleted)
        return IndexRemoval(points_deleted=points, nodes_deleted=nodes)


def is_transient(exc: BaseException) -> bool:
    """True for index failures worth retrying later (the index restarting, a deadline)."""
    return isinstance(exc, (Unavailable, DeadlineExceeded))


def upsert_requests(
    doc: DocumentResult,
    *,
    source_uri: str,
    content_hash: str,
    doc_version: int,
    links_to: list[str],
) -> Iterator[index_service_pb2.UpsertChunksRequest]:
    """The UpsertChunks messages of one document; the last one says the document is complete."""
    document = index_service_pb2.IndexedDocument(
        doc_id=doc.doc_id,
        source_uri=source_uri,
        title=doc.title[:1024],
        document_type=doc.document_type[:32],
        doc_version=doc_version,
        content_hash=content_hash,
        links_to=links_to[:1000],
    )
    parts = _message_parts(doc.chunks)
    for number, part in enumerate(parts, start=1):
        entities: dict[tuple[str, str], index_service_pb2.GraphEntity] = {}
        relations: dict[tuple[str, str, str], index_service_pb2.GraphRelation] = {}
        chunks = []
        for chunk in part:
            for e in chunk.entities:
                entities.setdefault((e.name, e.label), index_service_pb2.GraphEntity(name=e.name, label=e.label))
            for r in chunk.relations:
                relations.setdefault(
                    (r.source, r.target, r.type),
                    index_service_pb2.GraphRelation(source=r.source, target=r.target, type=r.type),
                )
            chunks.append(
                index_service_pb2.IndexedChunk(
                    chunk_index=chunk.index,
                    text=chunk.text[:65536],
                    section=chunk.section[:2048],
                    dense=list(chunk.dense),
                    sparse=common_pb2.SparseVector(
                        indices=list(chunk.sparse_indices), values=list(chunk.sparse_values)
                    ),
                    mentions=list(dict.fromkeys(e.name for e in chunk.entities))[:MAX_MENTIONS],
                )
            )
        yield index_service_pb2.UpsertChunksRequest(
            document=document,
            chunks=chunks,
            entities=list(entities.values())[:MAX_GRAPH_FACTS],
            relations=list(relations.values())[:MAX_GRAPH_FACTS],
            document_complete=number == len(parts),
        )


def _message_parts(chunks: list[ChunkResult]) -> list[list[ChunkResult]]:
    """The chunks of a document cut into messages of at most CHUNKS_PER_MESSAGE chunks and
    MAX_GRAPH_FACTS entities and relations (counted before de-duplication, so never over)."""
    parts: list[list[ChunkResult]] = [[]]
    entities = relations = 0
    for chunk in chunks:
        n_ent, n_rel = len(chunk.entities), len(chunk.relations)
        current = parts[-1]
        if current and (
            len(current) >= CHUNKS_PER_MESSAGE
            or entities + n_ent > MAX_GRAPH_FACTS
            or relations + n_rel > MAX_GRAPH_FACTS
        ):
            parts.append([])
            entities = relations = 0
        parts[-1].append(chunk)
        entities += n_ent
        relations += n_rel
    return parts
