from buf.validate import validate_pb2 as _validate_pb2
from ragmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IndexedDocument(_message.Message):
    __slots__ = ("doc_id", "source_uri", "title", "document_type", "doc_version", "content_hash", "links_to")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOC_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    LINKS_TO_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    source_uri: str
    title: str
    document_type: str
    doc_version: int
    content_hash: str
    links_to: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, doc_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., title: _Optional[str] = ..., document_type: _Optional[str] = ..., doc_version: _Optional[int] = ..., content_hash: _Optional[str] = ..., links_to: _Optional[_Iterable[str]] = ...) -> None: ...

class IndexedChunk(_message.Message):
    __slots__ = ("chunk_index", "text", "section", "dense", "sparse", "mentions")
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    DENSE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_FIELD_NUMBER: _ClassVar[int]
    MENTIONS_FIELD_NUMBER: _ClassVar[int]
    chunk_index: int
    text: str
    section: str
    dense: _containers.RepeatedScalarFieldContainer[float]
    sparse: _common_pb2.SparseVector
    mentions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, chunk_index: _Optional[int] = ..., text: _Optional[str] = ..., section: _Optional[str] = ..., dense: _Optional[_Iterable[float]] = ..., sparse: _Optional[_Union[_common_pb2.SparseVector, _Mapping]] = ..., mentions: _Optional[_Iterable[str]] = ...) -> None: ...

class GraphEntity(_message.Message):
    __slots__ = ("name", "label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    label: str
    def __init__(self, name: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class GraphRelation(_message.Message):
    __slots__ = ("source", "target", "type")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    type: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class UpsertChunksRequest(_message.Message):
    __slots__ = ("document", "chunks", "entities", "relations", "document_complete")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    RELATIONS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    document: IndexedDocument
    chunks: _containers.RepeatedCompositeFieldContainer[IndexedChunk]
    entities: _containers.RepeatedCompositeFieldContainer[GraphEntity]
    relations: _containers.RepeatedCompositeFieldContainer[GraphRelation]
    document_complete: bool
    def __init__(self, document: _Optional[_Union[IndexedDocument, _Mapping]] = ..., chunks: _Optional[_Iterable[_Union[IndexedChunk, _Mapping]]] = ..., entities: _Optional[_Iterable[_Union[GraphEntity, _Mapping]]] = ..., relations: _Optional[_Iterable[_Union[GraphRelation, _Mapping]]] = ..., document_complete: _Optional[bool] = ...) -> None: ...

class UpsertChunksResponse(_message.Message):
    __slots__ = ("documents", "points_written", "points_unchanged", "points_deleted", "nodes_created", "relationships_created", "corpus_version")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    POINTS_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    POINTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    NODES_CREATED_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_CREATED_FIELD_NUMBER: _ClassVar[int]
    CORPUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    documents: int
    points_written: int
    points_unchanged: int
    points_deleted: int
    nodes_created: int
    relationships_created: int
    corpus_version: int
    def __init__(self, documents: _Optional[int] = ..., points_written: _Optional[int] = ..., points_unchanged: _Optional[int] = ..., points_deleted: _Optional[int] = ..., nodes_created: _Optional[int] = ..., relationships_created: _Optional[int] = ..., corpus_version: _Optional[int] = ...) -> None: ...

class DeleteDocumentsRequest(_message.Message):
    __slots__ = ("doc_ids",)
    DOC_IDS_FIELD_NUMBER: _ClassVar[int]
    doc_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, doc_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteDocumentsResponse(_message.Message):
    __slots__ = ("points_deleted", "nodes_deleted", "corpus_version")
    POINTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    NODES_DELETED_FIELD_NUMBER: _ClassVar[int]
    CORPUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    points_deleted: int
    nodes_deleted: int
    corpus_version: int
    def __init__(self, points_deleted: _Optional[int] = ..., nodes_deleted: _Optional[int] = ..., corpus_version: _Optional[int] = ...) -> None: ...

class GetIndexStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetIndexStatsResponse(_message.Message):
    __slots__ = ("points", "documents", "chunk_nodes", "entity_nodes", "relationships", "corpus_version")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_NODES_FIELD_NUMBER: _ClassVar[int]
    ENTITY_NODES_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    CORPUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    points: int
    documents: int
    chunk_nodes: int
    entity_nodes: int
    relationships: int
    corpus_version: int
    def __init__(self, points: _Optional[int] = ..., documents: _Optional[int] = ..., chunk_nodes: _Optional[int] = ..., entity_nodes: _Optional[int] = ..., relationships: _Optional[int] = ..., corpus_version: _Optional[int] = ...) -> None: ...
