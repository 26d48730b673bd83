import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RetrievalLeg(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETRIEVAL_LEG_UNSPECIFIED: _ClassVar[RetrievalLeg]
    RETRIEVAL_LEG_DENSE: _ClassVar[RetrievalLeg]
    RETRIEVAL_LEG_SPARSE: _ClassVar[RetrievalLeg]
    RETRIEVAL_LEG_GRAPH: _ClassVar[RetrievalLeg]
RETRIEVAL_LEG_UNSPECIFIED: RetrievalLeg
RETRIEVAL_LEG_DENSE: RetrievalLeg
RETRIEVAL_LEG_SPARSE: RetrievalLeg
RETRIEVAL_LEG_GRAPH: RetrievalLeg

class SparseVector(_message.Message):
    __slots__ = ("indices", "values")
    INDICES_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    indices: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, indices: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("chunk_id", "doc_id", "source_uri", "title", "section", "chunk_index", "text", "document_type", "doc_version", "ingested_at")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOC_VERSION_FIELD_NUMBER: _ClassVar[int]
    INGESTED_AT_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    doc_id: str
    source_uri: str
    title: str
    section: str
    chunk_index: int
    text: str
    document_type: str
    doc_version: int
    ingested_at: _timestamp_pb2.Timestamp
    def __init__(self, chunk_id: _Optional[str] = ..., doc_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., title: _Optional[str] = ..., section: _Optional[str] = ..., chunk_index: _Optional[int] = ..., text: _Optional[str] = ..., document_type: _Optional[str] = ..., doc_version: _Optional[int] = ..., ingested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...
